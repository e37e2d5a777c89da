"""YAML read with its aliases' expansion bounded, so a few hundred hostile bytes cannot take minutes.

An alias costs nothing to parse: the loader hands back the anchored value again. Everything after
the loader walks the values, though (the duplicate-key check, pydantic, Jinja printing a ``--set``
value), and aliases nested in aliases multiply: nine lists each naming the previous one nine times
are 387 million values. So the composer counts, at each alias, how many values it stands for, and
refuses the document once aliases have added more than ``MAX_ALIASED_VALUES``, naming the alias and
its line. Aliases within that bound (a shared ``link:`` mapping, say) work as YAML says.
"""

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_ALIASED_VALUES = 100_000
"""Far above what any real manifest repeats through aliases, far below what takes a second to check."""


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a document whose aliases stand for too many values."""

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._aliased = 0
        self._open_anchors: set[str] = set()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if not isinstance(event, AliasEvent):
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                self._open_anchors.add(anchor)
            try:
                return super().compose_node(parent, index)
            finally:
                self._open_anchors.discard(anchor)
        if event.anchor in self._open_anchors:
            raise ComposerError(None, None, f"alias *{event.anchor} refers to a value that holds it", event.start_mark)
        node = super().compose_node(parent, index)
        self._aliased += self._size(node)
        if self._aliased > MAX_ALIASED_VALUES:
            raise ComposerError(
                None,
                None,
                f"alias *{event.anchor} brings the values that aliases stand for to {self._aliased:,}, more than "
                f"the {MAX_ALIASED_VALUES:,} a manifest may have (aliases nested in aliases multiply)",
                event.start_mark,
            )
        return node

    def _size(self, node: Node) -> int:
        """How many values ``node`` stands for, worked out once per node however often it is aliased."""
        known = self._sizes.get(id(node))
        if known is None:
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            known = self._sizes[id(node)] = 1 + sum(self._size(child) for child in children)
        return known


def load_bounded(text: str) -> Any:
    """``yaml.safe_load`` with the alias bound above."""
    return yaml.load(text, Loader=BoundedLoader)
