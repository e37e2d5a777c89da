"""torchvision's model zoo by builder name (``alexnet``, ``resnet18``, ``vit_b_16``, ...).

Named weight sets (``IMAGENET1K_V1``, ``DEFAULT``) download on first use, which real labs can do;
offline hosts pass a local file instead.
"""

from collections.abc import Iterable
from urllib.error import URLError

from harness.errors import BadInput
from harness.model.sources import LoadedModel, register
from harness.model.sources.weights import is_none, is_weight_file, load_weight_file
from harness.model.tvcompat import import_torchvision

_INPUT_SIZE = {"inception_v3": 299}


def _detection_names(torchvision) -> set[str]:
    return set(torchvision.models.list_models(module=torchvision.models.detection))


class TorchvisionZoo:
    """Every builder ``torchvision.models.list_models()`` names, detection models excepted."""

    def claims(self, name: str) -> bool:
        return name in self.known_names()

    def known_names(self) -> Iterable[str]:
        torchvision = import_torchvision()
        return [name for name in torchvision.models.list_models() if name not in _detection_names(torchvision)]

    def load(self, name: str, weights: str | None, classes: int | None = None) -> LoadedModel:
        torchvision = import_torchvision()
        named = None if is_none(weights) or is_weight_file(weights) else weights
        if classes is not None and named is not None:
            raise BadInput(
                f"model '{name}': weight set '{named}' has its own classes; give classes {classes} with "
                "weights none or a local file"
            )
        extra = {} if classes is None else {"num_classes": classes}
        module = build_with_named_weights(torchvision, name, named, **extra)
        if not is_none(weights) and is_weight_file(weights):
            load_weight_file(module, weights, name)
        size = _INPUT_SIZE.get(name, 224)
        return LoadedModel(name=name, module=module, input_shape=(1, 3, size, size))


def build_with_named_weights(torchvision, name: str, weights: str | None, **kwargs):
    """Call torchvision's builder, turning its weight-name and download failures into one line."""
    try:
        return torchvision.models.get_model(name, weights=weights, **kwargs)
    except (KeyError, ValueError) as error:
        if weights is None:
            raise
        choices = [entry.name for entry in torchvision.models.get_model_weights(name)]
        raise BadInput(
            f"model '{name}' has no weight set '{weights}'; expected one of {', '.join(choices)}, "
            "DEFAULT, none, or a local file"
        ) from error
    except (URLError, OSError) as error:
        raise BadInput(
            f"cannot download weights '{weights}' for model '{name}' ({error}); pass a local state-dict file instead"
        ) from error


register(TorchvisionZoo())
