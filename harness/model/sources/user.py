"""A user's model given as ``package.module:function`` (for example from experiments/).

The function takes no arguments and returns an ``nn.Module``. An optional attribute
``input_shape`` on the function sets the default example input.
"""

from collections.abc import Iterable

from torch import nn

from harness.errors import BadInput
from harness.model.sources import LoadedModel, refuse_classes, register
from harness.model.sources.weights import is_none, is_weight_file, load_weight_file
from harness.model.user_code import user_function

_DEFAULT_INPUT = (1, 3, 224, 224)


class UserFunction:
    """Models built by calling ``module:function``."""

    def claims(self, name: str) -> bool:
        return ":" in name

    def known_names(self) -> Iterable[str]:
        return ()

    def load(self, name: str, weights: str | None, classes: int | None = None) -> LoadedModel:
        refuse_classes(name, classes)
        function = user_function("model", name)
        function_name = function.__name__
        try:
            module = function()
        except Exception as error:
            raise BadInput(f"model '{name}': {function_name}() raised {type(error).__name__}: {error}") from error
        if not isinstance(module, nn.Module):
            raise BadInput(f"model '{name}': {function_name}() returned {type(module).__name__}, expected nn.Module")
        if not is_none(weights):
            if not is_weight_file(weights):
                raise BadInput(f"model '{name}': weights must be 'none' or a local file, got '{weights}'")
            load_weight_file(module, weights, name)
        input_shape = tuple(getattr(function, "input_shape", _DEFAULT_INPUT))
        return LoadedModel(name=name, module=module, input_shape=input_shape)


register(UserFunction())
