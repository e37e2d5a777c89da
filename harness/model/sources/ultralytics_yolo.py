"""Ultralytics YOLO detectors built from their yaml (``yolov8n``), an optional extra (``.[yolo]``).

YOLO's forward loops over a layer list, keeping the outputs later layers read (each layer's ``f``
and the model's ``save``). ``YoloLayers`` restates that loop over the same layers so that fx traces
the wiring and treats each layer as a block: a cut then sends exactly the kept outputs still read.
"""

import os
import re
from collections.abc import Iterable

from torch import nn

from harness.errors import BadInput
from harness.model.sources import LoadedModel, refuse_classes, register
from harness.model.sources.weights import is_none, is_weight_file, load_weight_file

_NAME = re.compile(r"^yolo(v?\d+)[a-z0-9-]*$")


class YoloLayers(nn.Module):
    """YOLO's layer list as top-level children named by index, run as ultralytics runs them."""

    def __init__(self, layers: nn.Sequential, save: list[int]):
        super().__init__()
        for index, layer in enumerate(layers):
            self.add_module(str(index), layer)
        self.save = frozenset(save)

    def forward(self, x):
        kept = []
        for layer in self.children():
            if layer.f != -1:
                x = kept[layer.f] if isinstance(layer.f, int) else [x if j == -1 else kept[j] for j in layer.f]
            x = layer(x)
            kept.append(x if layer.i in self.save else None)
        return x


class UltralyticsYolo:
    """Names such as ``yolov8n``; the yaml of that name ships inside the ultralytics package."""

    def claims(self, name: str) -> bool:
        return bool(_NAME.match(name))

    def known_names(self) -> Iterable[str]:
        return ("yolov8n", "yolov8s", "yolo11n")

    def load(self, name: str, weights: str | None, classes: int | None = None) -> LoadedModel:
        refuse_classes(name, classes)
        os.environ.setdefault("YOLO_VERBOSE", "False")
        try:
            from ultralytics.nn.tasks import DetectionModel
        except ImportError as error:
            raise BadInput(f"model '{name}' needs the yolo extra: pip install -e '.[yolo]' ({error})") from error
        try:
            detector = DetectionModel(f"{name}.yaml", verbose=False)
        except FileNotFoundError as error:
            raise BadInput(f"model '{name}': ultralytics has no {name}.yaml") from error
        module = YoloLayers(detector.model, detector.save)
        if not is_none(weights):
            if not is_weight_file(weights):
                raise BadInput(f"model '{name}': weights must be 'none' or a local state-dict file")
            load_weight_file(module, weights, name)
        return LoadedModel(name=name, module=module, input_shape=(1, 3, 640, 640), blocks_are_leaves=True)


register(UltralyticsYolo())
