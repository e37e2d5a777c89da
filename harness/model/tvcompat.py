"""Import torchvision even where its compiled ops do not match the installed torch.

The torchvision wheels that pair with a CPU-only torch on some hosts are CUDA builds whose C
extension fails to load; torchvision then dies at import with ``operator torchvision::nms does not
exist``. Defining the two op schemas it registers fake kernels for lets the pure-Python model code
import: classification and backbone models work, detection post-processing ops raise when called.
The schemas are defined only when the real ops are missing, so a healthy install is untouched.
"""

import importlib
import sys
from types import ModuleType

import torch

_MISSING_OPS_MESSAGE = "torchvision::nms does not exist"
_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor qdets, Tensor qscores, Tensor dets_scale, Tensor dets_zero_point, "
    "Tensor scores_scale, Tensor scores_zero_point, float iou_threshold) -> Tensor",
)
# The schemas live as long as this Library object: it is kept here for the life of the process.
_library: torch.library.Library | None = None


def import_torchvision() -> ModuleType:
    """Return the torchvision module, defining its missing op schemas first if it needs them."""
    global _library
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as error:
        if _MISSING_OPS_MESSAGE not in str(error):
            raise
    for name in [name for name in sys.modules if name.split(".")[0] == "torchvision"]:
        del sys.modules[name]
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
    return importlib.import_module("torchvision")


def compiled_ops_loaded() -> bool:
    """Whether torchvision's own compiled ops are in use (False when the schemas were stubbed)."""
    import_torchvision()
    return _library is None
