"""Terminal output shared by every command: tables and progress go through one rich console.

When stdout is not a terminal (CI logs, pipes) rich would squeeze tables into 80 columns; a fixed
wide console keeps rows on one line so logs stay greppable.
"""

import sys

from rich.console import Console
from rich.table import Table

_PIPED_WIDTH = 160


def stdout_console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=_PIPED_WIDTH)


def stderr_console() -> Console:
    return Console(stderr=True)


def make_table(title: str, columns: list[str], caption: str | None = None) -> Table:
    """A table whose columns are named in ``columns``; a name ending in ``>`` is right-aligned."""
    table = Table(title=title, caption=caption)
    for column in columns:
        right = column.endswith(">")
        table.add_column(column.removesuffix(">"), justify="right" if right else "left")
    return table
