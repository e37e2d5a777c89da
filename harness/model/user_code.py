"""Resolving a user's ``package.module:function`` (a model or a dataset from experiments/).

The current directory is importable, so ``experiments.models:tiny_skipnet`` works from the
repository root on the controller and from each host's harness directory.
"""

import importlib
import os
import sys
from collections.abc import Callable

from harness.errors import BadInput


def user_function(what: str, name: str) -> Callable:
    """The function ``name`` points at; ``what`` (model, dataset) names it in errors."""
    module_name, _, function_name = name.partition(":")
    if not module_name or not function_name.isidentifier():
        raise BadInput(f"{what} '{name}': expected 'package.module:function'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BadInput(f"{what} '{name}': cannot import module '{module_name}' ({error})") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise BadInput(f"{what} '{name}': module '{module_name}' has no function '{function_name}'")
    return function
