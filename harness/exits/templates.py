"""Exit classifiers from templates: the seed's "code rendering", so any exit a user can write in
PyTorch can be placed.

A template is Python source with Jinja2 placeholders, rendered with the attach point's
``in_shape`` (channels, height, width), ``channels`` and ``num_classes``; the rendered module must
define ``build()`` returning the exit. The built-in ones (``linear``, ``conv-linear``) are such
templates themselves (``templates/``), so what a results folder keeps of an exit is always the
Python that built it. ``replicate`` is the seed's exit: the network's own classifier, copied with
fresh weights and re-sized to the channels at the attach point (what it keeps is the copy's
structure). A ``package.module:function`` from experiments/ is called with the same three values
instead. Either way the exit is checked by running a zero input through it: it must give one row
of ``num_classes`` logits, or the template is refused in one line.

Rendered templates run as the user's own code, as experiments/ does: they are the user's, and
nothing here comes from the network.
"""

import copy
from dataclasses import dataclass
from pathlib import Path

import jinja2
import torch
from torch import nn

from harness.errors import BadInput
from harness.model.user_code import user_function

BUILT_IN = Path(__file__).parent / "templates"
SUFFIX = ".py.j2"


@dataclass(frozen=True)
class ExitHead:
    module: nn.Module
    source: str
    """The rendered Python, or the factory's name for a ``module:function``."""


REPLICATE = "replicate"


def built_in_templates() -> list[str]:
    return sorted([REPLICATE, *(path.name.removesuffix(SUFFIX) for path in BUILT_IN.glob(f"*{SUFFIX}"))])


def build_exit(template: str, in_shape: tuple[int, ...], num_classes: int, model: nn.Module | None = None) -> ExitHead:
    """The exit ``template`` makes for a feature map of ``in_shape`` (without the batch); ``model``:
    the network the exit attaches to, whose classifier ``replicate`` copies."""
    values = {"in_shape": list(in_shape), "channels": in_shape[0], "num_classes": num_classes}
    if template == REPLICATE:
        head = _replicate(model, in_shape)
    elif ":" in template:
        factory = user_function("exit template", template)
        head = ExitHead(factory(**values), template)
    else:
        path = BUILT_IN / f"{template}{SUFFIX}" if template in built_in_templates() else Path(template)
        head = _render(template, path, values)
    _check_output(template, head.module, in_shape, num_classes)
    return head


def _replicate(model: nn.Module | None, in_shape: tuple[int, ...]) -> ExitHead:
    """The network's classifier (the layers of its last top-level part that holds a Linear, in
    order), copied with fresh weights, its first Linear taking the attach point's channels, after
    global average pooling. Only the layers are copied, not their container, so a traced model's
    classifier (whose containers hold no ``forward``) copies as well as the network's own."""
    if model is None:
        raise BadInput(f"exit template {REPLICATE!r} copies the network's classifier: expected the model beside it")
    found = [name for name, child in model.named_children() if _holds_linear(child)]
    if not found:
        raise BadInput(f"exit template {REPLICATE!r}: the model has no Linear classifier to copy")
    container = model.get_submodule(found[-1])
    layers = [copy.deepcopy(module) for _, module in container.named_modules() if not list(module.children())]
    first = next(index for index, layer in enumerate(layers) if isinstance(layer, nn.Linear))
    layers[first] = nn.Linear(in_shape[0], layers[first].out_features, bias=layers[first].bias is not None)
    for layer in layers:
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    pooling = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if len(in_shape) > 1 else []
    exit_head = nn.Sequential(*pooling, *layers)
    source = (
        f"# {REPLICATE}: the network's {found[-1]!r}, fresh weights, its first Linear taking {in_shape[0]} channels\n"
    )
    return ExitHead(exit_head, source + repr(exit_head) + "\n")


def _holds_linear(module: nn.Module) -> bool:
    return any(isinstance(child, nn.Linear) for child in module.modules())


def _render(template: str, path: Path, values: dict) -> ExitHead:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        known = ", ".join(built_in_templates())
        raise BadInput(
            f"exit template {template!r}: expected one of {known}, a Jinja2 file of Python source, or "
            "package.module:function"
        ) from None
    try:
        source = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(text)
        rendered = source.render(**values)
    except jinja2.TemplateError as error:
        raise BadInput(f"exit template {path}: cannot be rendered ({error})") from None
    namespace: dict = {"__name__": f"exit_template_{path.stem.replace('-', '_').replace('.', '_')}"}
    try:
        exec(compile(rendered, str(path), "exec"), namespace)
    except SyntaxError as error:
        raise BadInput(f"exit template {path}:{error.lineno}: renders invalid Python ({error.msg})") from None
    build = namespace.get("build")
    if not callable(build):
        raise BadInput(f"exit template {path}: expected the rendered source to define build(), returning the exit")
    return ExitHead(build(), rendered)


def _check_output(template: str, module, in_shape: tuple[int, ...], num_classes: int) -> None:
    if not isinstance(module, nn.Module):
        raise BadInput(f"exit template {template!r}: made a {type(module).__name__}, expected a torch.nn.Module")
    module.eval()
    try:
        with torch.no_grad():
            output = module(torch.zeros(1, *in_shape))
    except Exception as error:
        raise BadInput(
            f"exit template {template!r}: fails on an input of {list(in_shape)} ({type(error).__name__}: {error})"
        ) from None
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
    if shape != (1, num_classes):
        raise BadInput(
            f"exit template {template!r}: gives {list(shape) if shape else type(output).__name__} for an input of "
            f"{list(in_shape)}; expected [1, {num_classes}] logits"
        )
