"""The backbone of a torchvision detection model, addressed as ``NAME.backbone``.

A whole detection model does not trace (its post-processing is data dependent), and in split
computing the backbone is what is cut anyway; its output is the FPN's dict of feature maps.
"""

from collections.abc import Iterable

from harness.errors import BadInput
from harness.model.sources import LoadedModel, refuse_classes, register
from harness.model.sources.torchvision_zoo import build_with_named_weights
from harness.model.sources.weights import is_none, is_weight_file, load_weight_file
from harness.model.tvcompat import import_torchvision

_SUFFIX = ".backbone"


class DetectionBackbone:
    """``fasterrcnn_resnet50_fpn.backbone`` and friends; a bare detection name gets advice."""

    def claims(self, name: str) -> bool:
        torchvision = import_torchvision()
        names = torchvision.models.list_models(module=torchvision.models.detection)
        return name.removesuffix(_SUFFIX) in names

    def known_names(self) -> Iterable[str]:
        torchvision = import_torchvision()
        return [name + _SUFFIX for name in torchvision.models.list_models(module=torchvision.models.detection)]

    def load(self, name: str, weights: str | None, classes: int | None = None) -> LoadedModel:
        refuse_classes(name, classes)
        if not name.endswith(_SUFFIX):
            raise BadInput(
                f"detection model '{name}' cannot be cut whole (its post-processing depends on the data); "
                f"cut its backbone instead: '{name}{_SUFFIX}'"
            )
        torchvision = import_torchvision()
        detector_name = name.removesuffix(_SUFFIX)
        named = None if is_none(weights) or is_weight_file(weights) else weights
        detector = build_with_named_weights(torchvision, detector_name, named, weights_backbone=None)
        module = detector.backbone
        if not is_none(weights) and is_weight_file(weights):
            load_weight_file(module, weights, name)
        return LoadedModel(name=name, module=module, input_shape=(1, 3, 320, 320))


register(DetectionBackbone())
