"""The inputs a sweep feeds to a model's head on the edge host, by dataset name.

Each dataset is one function registered here under its name; adding one means registering a
function, not editing a switch. A user's own is named ``package.module:function`` (see
``experiments/datasets.py``). Every dataset returns the same tensors on every host for the same
request, so runs on different machines measure the same inputs. Images are prepared as torchvision's
ImageNet models expect them: resized to cover the input, centre-cropped, normalised.
"""

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from harness.errors import BadInput
from harness.model.user_code import user_function

SEED = 0
"""``synthetic`` inputs come from this seed, as the worker's own synthetic inputs do."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SAMPLE_FILES = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
"""Photographs shipped inside matplotlib's package data: real images on a host with no network."""


class DatasetRequest(Protocol):
    """What a manifest's ``dataset`` says; the manifest's ``DatasetSpec`` is one."""

    @property
    def name(self) -> str: ...

    @property
    def count(self) -> int: ...

    @property
    def path(self) -> str | None: ...


Loader = Callable[[DatasetRequest, tuple[int, ...]], list[torch.Tensor]]
_DATASETS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    """Make ``loader`` the dataset called ``name``."""

    def add(loader: Loader) -> Loader:
        _DATASETS[name] = loader
        return loader

    return add


def dataset_names() -> list[str]:
    """Every registered dataset name (besides module:function)."""
    return sorted(_DATASETS)


def load_inputs(spec: DatasetRequest, input_shape: Sequence[int]) -> list[torch.Tensor]:
    """``spec.count`` float32 tensors of ``input_shape`` (batch included)."""
    shape = tuple(input_shape)
    if ":" in spec.name:
        return _user_dataset(spec, shape)
    loader = _DATASETS.get(spec.name)
    if loader is None:
        known = ", ".join(dataset_names())
        raise BadInput(f"unknown dataset '{spec.name}': expected one of {known} or module:function")
    return loader(spec, shape)


@register("synthetic")
def synthetic(spec: DatasetRequest, shape: tuple[int, ...]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    return [torch.randn(shape, generator=generator) for _ in range(spec.count)]


@register("images")
def images(spec: DatasetRequest, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Every image in a folder of the edge host, in name order, cycled through to make ``count`` inputs."""
    folder = Path(spec.path or "").expanduser()
    if not spec.path or not folder.is_dir():
        raise BadInput(f"dataset 'images': folder '{spec.path}' does not exist on this host")
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    if not files:
        raise BadInput(f"dataset 'images': no {', '.join(IMAGE_SUFFIXES)} files in {folder}")
    return _from_files("images", files, spec.count, shape)


@register("samples")
def samples(spec: DatasetRequest, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Real photographs with nothing to download, for a first run that is not random noise."""
    from matplotlib import cbook

    files = [Path(cbook.get_sample_data(name, asfileobj=False)) for name in SAMPLE_FILES]
    present = [path for path in files if path.is_file()]
    if not present:
        raise BadInput(f"dataset 'samples': this matplotlib ships none of {', '.join(SAMPLE_FILES)}")
    return _from_files("samples", present, spec.count, shape)


@register("digits")
def digits(spec: DatasetRequest, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """scikit-learn's bundled handwritten digits, resized to the input, in the set's own order."""
    return _labelled("digits", spec.count, shape)


@register("easy-hard")
def easy_hard(spec: DatasetRequest, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """The seeded synthetic set of known easy and hard samples (every other one hard)."""
    return _labelled("easy-hard", spec.count, shape)


def _labelled(name: str, count: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """``count`` batches of a labelled set's samples in turn (a sweep reads the labels beside them)."""
    from harness.exits.data import batches, labelled_set

    return batches(labelled_set(name, shape[1:]), count, shape[0]).inputs


def _from_files(name: str, files: list[Path], count: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """``count`` batches filled with the images in turn, each image decoded once."""
    if len(shape) != 4 or shape[1] != 3:
        raise BadInput(f"dataset '{name}' gives RGB images: expected an input shape (N, 3, H, W), got {shape}")
    batch, _, height, width = shape
    decoded = [_prepare(name, path, height, width) for path in files[: count * batch]]
    cycle = itertools.cycle(decoded)
    return [torch.stack([next(cycle) for _ in range(batch)]) for _ in range(count)]


def _prepare(name: str, path: Path, height: int, width: int) -> torch.Tensor:
    """Decode, flatten transparency onto white, resize to cover ``height`` x ``width``, centre-crop, normalise."""
    try:
        with Image.open(path) as opened:
            rgba = opened.convert("RGBA")
    except OSError as error:
        raise BadInput(f"dataset '{name}': cannot read image {path} ({error})") from None
    rgb = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    scale = max(height / rgb.height, width / rgb.width)
    size = (max(width, round(rgb.width * scale)), max(height, round(rgb.height * scale)))
    resized = rgb.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    cropped = resized.crop((left, top, left + width, top + height))
    pixels = torch.from_numpy(np.asarray(cropped, dtype=np.float32) / 255).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((pixels - mean) / std).contiguous()


def _user_dataset(spec: DatasetRequest, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Call the user's ``function(count, input_shape)``, importable from the current directory, and check it."""
    function = user_function("dataset", spec.name)
    function_name = function.__name__
    try:
        inputs = list(function(spec.count, shape))
    except Exception as error:
        raise BadInput(f"dataset '{spec.name}': {function_name}() raised {type(error).__name__}: {error}") from error
    if len(inputs) != spec.count:
        raise BadInput(f"dataset '{spec.name}': {function_name}() returned {len(inputs)} inputs, expected {spec.count}")
    for tensor in inputs:
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape or tensor.dtype != torch.float32:
            got = f"{tuple(tensor.shape)} {tensor.dtype}" if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise BadInput(
                f"dataset '{spec.name}': {function_name}() returned {got}, expected float32 tensors of shape {shape}"
            )
    return inputs
