"""Exit classifiers from templates: the seed's "code rendering", so any exit a user can write in
PyTorch can be placed.

A template is Python source with Jinja2 placeholders, rendered with the attach point's
``in_shape`` (channels, height, width), ``channels`` and ``num_classes``; the rendered module must
define ``build()`` returning the exit. The built-in ones (``linear``, ``conv-linear``) are such
templates themselves (``templates/``), so what a results folder keeps of an exit is always the
Python that built it. A ``package.module:function`` from experiments/ is called with the same three
values instead. Either way the exit is checked by running a zero input through it: it must give
one row of ``num_classes`` logits, or the template is refused in one line.

Rendered templates run as the user's own code, as experiments/ does: they are the user's, and
nothing here comes from the network.
"""

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


def built_in_templates() -> list[str]:
    return sorted(path.name.removesuffix(SUFFIX) for path in BUILT_IN.glob(f"*{SUFFIX}"))


def build_exit(template: str, in_shape: tuple[int, ...], num_classes: int) -> ExitHead:
    """The exit ``template`` makes for a feature map of ``in_shape`` (without the batch)."""
    values = {"in_shape": list(in_shape), "channels": in_shape[0], "num_classes": num_classes}
    if ":" in template:
        factory = user_function("exit template", template)
        head = ExitHead(factory(**values), template)
    else:
        path = BUILT_IN / f"{template}{SUFFIX}" if template in built_in_templates() else Path(template)
        head = _render(template, path, values)
    _check_output(template, head.module, in_shape, num_classes)
    return head


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
