"""A manifest is a Jinja2 template of YAML: ``--set key=value`` fills its variables, then it is rendered.

Rendering is strict: an undefined variable is an error at its line rather than an empty string in
the YAML, and a ``--set`` the template never reads is refused (a typo would otherwise silently leave
the default in place). Block tags keep their newline, so a rendered line has the same number as its
template line unless a loop or an include adds lines.
"""

import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta

from harness.errors import BadInput
from harness.manifest.aliases import load_bounded

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


@dataclass(frozen=True)
class Rendered:
    """The YAML text a manifest rendered to, and the ``--set`` values that went into it."""

    path: Path
    text: str
    variables: dict[str, Any] = field(default_factory=dict)


def parse_sets(sets: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs, each value read as YAML so that ``cuts=[0,3,13]`` is a list and ``repeats=2`` an int."""
    variables: dict[str, Any] = {}
    for item in sets:
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not _KEY.match(key):
            raise BadInput(f"--set '{item}': expected key=value, like repeats=2")
        try:
            variables[key] = load_bounded(value)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise BadInput(f"--set '{item}': value is not valid YAML ({problem})") from None
    return variables


def render(path: Path, sets: list[str] | tuple[str, ...] = ()) -> Rendered:
    """Render the manifest at ``path`` with the ``--set`` values in ``sets``."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"manifest {path} does not exist")
    variables = parse_sets(sets)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    try:
        template = environment.get_template(path.name)
        ast = environment.parse(path.read_text(), path.name, str(path))
    except jinja2.TemplateSyntaxError as error:
        raise BadInput(f"{path}:{error.lineno}: Jinja syntax error: {error.message}") from None
    except UnicodeDecodeError:
        raise BadInput(f"manifest {path} is not UTF-8 text") from None
    used = meta.find_undeclared_variables(ast) - set(environment.globals)
    unused = sorted(set(variables) - used)
    if unused:
        names = ", ".join(sorted(used)) or "none"
        raise BadInput(f"--set '{unused[0]}': {path} has no variable of that name (its variables: {names})")
    try:
        text = template.render(variables)
    except Exception as error:
        raise BadInput(f"{path}:{_template_line(error, template.filename)}: {_describe(error)}") from None
    return Rendered(path=path, text=text, variables=variables)


def _template_line(error: BaseException, filename: str | None) -> int | str:
    """The line of the template being evaluated when ``error`` was raised (Jinja rewrites the frames)."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    return lines[-1] if lines and lines[-1] is not None else "?"


def _describe(error: Exception) -> str:
    if isinstance(error, jinja2.UndefinedError):
        match = _UNDEFINED.match(str(error.message))
        return f"undefined variable '{match.group(1)}'" if match else f"undefined value: {error.message}"
    if isinstance(error, jinja2.TemplateNotFound):
        return f"included template '{error.name}' not found next to the manifest"
    if isinstance(error, jinja2.TemplateError):
        return f"Jinja error: {error.message}"
    return f"{type(error).__name__} while rendering: {error}"
