"""Rendered YAML to a ``Manifest``, every problem reported as one line: file, line, field, what was expected.

pydantic knows which field is wrong but not where it was written; the YAML node tree knows where.
An error's location is followed down that tree (a key to its line, a list index to its item's line),
so a missing field points at the mapping that lacks it.
"""

import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harness.errors import BadInput
from harness.exits.data import LABELLED_CLASSES
from harness.manifest.aliases import BoundedLoader
from harness.manifest.render import Rendered
from harness.manifest.schema import Manifest, judged_names, shown

_EXPECTED = {
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "model_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "too_short": "expected at least one item",
}


def parse_manifest(rendered: Rendered) -> Manifest:
    """Parse and validate the rendered text of a manifest."""
    root, data = _load_yaml(rendered)
    if not isinstance(root, MappingNode):
        what = "nothing" if root is None else type(data).__name__
        line = root.start_mark.line + 1 if root is not None else 1
        raise BadInput(f"{rendered.path}:{line}: expected a mapping of manifest fields (got {what})")
    _refuse_duplicate_keys(rendered, root, ())
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as error:
        raise BadInput(_first_problem(rendered, root, error.errors())) from None
    problem = _pipeline_problem(manifest)
    if problem is not None:
        loc, message = problem
        line, field = _locate(root, loc)
        raise BadInput(f"{rendered.path}:{line}: field {field}: {message}")
    return manifest


def _pipeline_problem(manifest: Manifest) -> tuple[tuple[int | str, ...], str] | None:
    """Where ``cuts`` does not fit ``hosts``: a pipeline names one cut per worker tier, more than
    two tiers need pipelines or a placement, and a placement chooses the cuts itself."""
    judged = (
        _judged_problem(manifest) or _adapt_problem(manifest) or _upload_problem(manifest) or _codec_problem(manifest)
    )
    if judged is not None:
        return judged
    pipeline = manifest.hosts.pipeline
    workers = len(pipeline) - 1
    after = f"one per tier after {pipeline[0]} ({', '.join(pipeline[1:])})"
    if manifest.placement is not None and manifest.cuts != "all":
        return ("cuts",), f"expected 'all' beside placement, which chooses the cuts (got {shown(manifest.cuts)})"
    if isinstance(manifest.cuts, list) and isinstance(manifest.cuts[0], list):
        for number, plan in enumerate(manifest.cuts):
            if len(plan) != workers:
                cuts = f"{workers} cut{'s' * (workers > 1)}"
                return ("cuts", number), f"expected {cuts} per pipeline, {after} (got {plan})"
    elif workers > 1 and manifest.placement is None:
        example = ", ".join(str(3 * (number + 1)) for number in range(workers))
        return ("cuts",), (
            f"expected pipelines for {workers + 1} tiers, {after}, like [[{example}]], or a placement "
            f"(got {shown(manifest.cuts)})"
        )
    return None


def _judged_problem(manifest: Manifest) -> tuple[tuple[int | str, ...], str] | None:
    """``evaluate`` names deciders of one cut in the edge and cloud form, placement strategies
    (with ``options``) in a sweep over tiers; each kind's own fields only."""
    pipelined = manifest.pipelined
    known = judged_names(pipelined)
    for index, spec in enumerate(manifest.evaluate):
        if ":" not in spec.name and spec.name not in known:
            return ("evaluate", index, "name"), (
                f"expected one of {', '.join(sorted(known))} or package.module:function (got {shown(spec.name)})"
            )
        fields = ("cut", "single_tensor", "criterion", "objective", "edge_watts", "radio_watts")
        foreign = fields if pipelined else ("options",)
        given = next((name for name in foreign if getattr(spec, name) is not None), None)
        if given is not None:
            kind = (
                "a placement strategy over tiers takes options, not partitioner fields"
                if pipelined
                else "options are for placement strategies over tiers; partitioners take cut, single_tensor, "
                "criterion, objective, edge_watts, radio_watts"
            )
            return ("evaluate", index, given), f"expected no {given}: {kind}"
        if spec.objective == "energy" and (spec.edge_watts is None or spec.radio_watts is None):
            return ("evaluate", index, "objective"), "expected edge_watts and radio_watts beside objective energy"
    return None


def _upload_problem(manifest: Manifest) -> tuple[tuple[int | str, ...], str] | None:
    """An incremental upload runs between one edge and one cloud, places its queries itself (so no
    cuts, exits or evaluated partitioners), and sends its tensors as they are."""
    if manifest.upload is None:
        return None
    if manifest.pipelined:
        return ("hosts",), "expected edge and cloud beside upload: an upload goes from one edge to one worker"
    if manifest.exits is not None:
        return ("exits",), "expected either exits or an upload, not both"
    if manifest.cuts != "all":
        return ("cuts",), f"expected no cuts beside upload, whose plans place the queries (got {shown(manifest.cuts)})"
    if manifest.evaluate:
        return ("evaluate",), "expected no evaluate beside upload: its plans are judged by the queries they serve"
    if any(codec != "none" for codec in manifest.compression):
        return ("compression",), "expected none beside upload: its queries and chunks travel uncompressed"
    return None


def _codec_problem(manifest: Manifest) -> tuple[tuple[int | str, ...], str] | None:
    """A cut codec encodes what the edge sends its worker; the workers of a pipeline forward what
    they compute as it is, so over tiers a codec would shrink one link of several. Choosing the
    codec needs codecs to choose among, partitioners to choose, and labels to hold accuracy to."""
    if manifest.choose_codec is not None:
        if "none" not in manifest.codec or len(manifest.codec) < 2:
            return ("codec",), "expected none and at least one codec beside choose_codec, to choose among"
        if not manifest.evaluate:
            return ("choose_codec",), "expected evaluate beside it: the partitioners that choose the codec"
        unlabelled = [dataset.name for dataset in manifest.dataset if dataset.name not in LABELLED_CLASSES]
        if unlabelled:
            return ("choose_codec",), f"expected a labelled dataset to measure accuracy on (got {unlabelled[0]})"
    if all(codec == "none" for codec in manifest.codec):
        return None
    if manifest.pipelined:
        return ("codec",), "expected none over tiers: a cut codec encodes what one edge sends one worker"
    if manifest.upload is not None:
        return ("codec",), "expected none beside upload: its queries and chunks travel as they are"
    return None


def _adapt_problem(manifest: Manifest) -> tuple[tuple[int | str, ...], str] | None:
    """Re-planning solves the manifest's placement again, alone; link events change links between
    two tier groups of a sweep over tiers, paced by the harness itself."""
    if manifest.adapt is not None:
        if manifest.placement is None:
            return ("adapt",), "expected a placement beside adapt: re-planning solves the placement again"
        if manifest.evaluate:
            return ("evaluate",), "expected no evaluate beside adapt: a run that re-plans measures its own placement"
    tiers = manifest.hosts.pipeline
    for index, event in enumerate(manifest.link_events):
        if not manifest.pipelined:
            return (
                "link_events",
            ), "expected hosts.tiers and a placement or pipelines: link events change a tier's link"
        unknown = [group for group in event.pair if group not in tiers]
        if unknown or event.pair[0] == event.pair[1]:
            return ("link_events", index, "pair"), (
                f"expected two different tier groups of {', '.join(tiers)} (got {shown(event.pair)})"
            )
    if manifest.link_events and any(link.shaping != "emulated" for link in manifest.link):
        return ("link",), "expected shaping: emulated beside link_events, which change the pace the harness sets"
    return None


def field_line(rendered: Rendered, loc: tuple[int | str, ...]) -> tuple[int, str]:
    """Where a field of a valid manifest was written (``loc`` as pydantic gives it), for checks made
    after validation: its line, and the field as the user wrote it."""
    root, _ = _load_yaml(rendered)
    if not isinstance(root, MappingNode):
        raise BadInput(f"{rendered.path}: expected a mapping of manifest fields")
    return _locate(root, loc)


def _load_yaml(rendered: Rendered) -> tuple[Node | None, Any]:
    loader = BoundedLoader(rendered.text)
    try:
        root = loader.get_single_node()
        return root, loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else "?"
        detail = error.problem or error.context
        if error.problem and error.context and error.context_mark:
            detail += f" ({error.context} at line {error.context_mark.line + 1})"
        raise BadInput(f"{rendered.path}:{line}: YAML error: {detail}") from None
    except yaml.YAMLError as error:
        raise BadInput(f"{rendered.path}: YAML error: {error}") from None
    finally:
        loader.dispose()


def _refuse_duplicate_keys(rendered: Rendered, node: Node, path: tuple[str, ...]) -> None:
    """YAML keeps the last of two equal keys; in a manifest the first was then silently ignored."""
    if isinstance(node, SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(rendered, item, path)
    if not isinstance(node, MappingNode):
        return
    seen: dict[str, int] = {}
    for key, value in node.value:
        name = str(key.value) if isinstance(key, ScalarNode) else "?"
        line = key.start_mark.line + 1
        if name in seen:
            field = ".".join((*path, name))
            raise BadInput(f"{rendered.path}:{line}: field {field}: given twice (first at line {seen[name]})")
        seen[name] = line
        _refuse_duplicate_keys(rendered, value, (*path, name))


def _first_problem(rendered: Rendered, root: MappingNode, errors: list[ErrorDetails]) -> str:
    """The earliest problem in the file, and how many others there are.

    Unknown fields come first: a misspelt field also makes the field it was meant to be missing.
    """
    located = [
        (error["type"] != "extra_forbidden", *_locate(root, error["loc"]), index) for index, error in enumerate(errors)
    ]
    _, line, field, index = min(located, key=lambda entry: (entry[0], entry[1], entry[3]))
    message = f"{rendered.path}:{line}: field {field}: {_explain(errors[index])}"
    others = len(errors) - 1
    return message + (f" (and {others} more problem{'s' if others > 1 else ''})" if others else "")


def _locate(root: MappingNode, loc: tuple[int | str, ...]) -> tuple[int, str]:
    """The line an error location was written at, and the location as the user wrote it (``model[1].name``).

    An index into a matrix axis given as a single value has no YAML of its own and is skipped.
    """
    node: Node | None = root
    line = root.start_mark.line + 1
    field = ""
    for part in loc:
        if isinstance(part, int):
            if isinstance(node, SequenceNode) and part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
                field += f"[{part}]"
            elif node is None:
                field += f"[{part}]"
            continue
        field += f".{part}" if field else str(part)
        child = _key(node, str(part)) if isinstance(node, MappingNode) else None
        node = None
        if child is not None:
            key, node = child
            line = key.start_mark.line + 1
    return line, field or "(top level)"


def _key(node: MappingNode, name: str) -> tuple[Node, Node] | None:
    return next(((key, value) for key, value in node.value if str(key.value) == name), None)


def _explain(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown field (expected one of: {', '.join(_fields_at(error['loc'][:-1]))})"
    ctx = error.get("ctx", {})
    if kind == "literal_error":
        expected = f"expected {ctx['expected']}"
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        expected = f"expected a number {'>=' if kind == 'greater_than_equal' else '<='} {bound}"
    else:
        expected = _EXPECTED.get(kind, error["msg"][0].lower() + error["msg"][1:])
    return f"{expected} (got {shown(error['input'])})"


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found at ``loc``, following annotations down from ``Manifest``."""
    model: type[BaseModel] = Manifest
    for part in loc:
        if isinstance(part, str):
            model = _model_in(model.model_fields[part].annotation) or model
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``list[X]``, ``Annotated[...]``, ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Annotated, list, typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None
