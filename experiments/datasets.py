"""Example user datasets, referenced in a manifest as ``dataset: {name: experiments.datasets:FUNCTION}``.

Copy this file to add your own: a function ``(count, input_shape)`` that returns ``count`` float32
tensors of ``input_shape`` (batch included). It runs on the edge host, so it must give the same
inputs there as on your machine: derive them from the arguments, not from the clock or the network.
"""

import torch


def ramps(count: int, input_shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Smooth horizontal gradients, one phase per input: structured like images, unlike noise."""
    width = input_shape[-1]
    positions = torch.linspace(0, 2 * torch.pi, width)
    return [torch.sin(positions + index).expand(input_shape).contiguous() for index in range(count)]
