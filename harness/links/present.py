"""What ``harness links measure`` prints: one row per ordered pair, gaps with their reason."""

import math

from rich.table import Table

from harness.console import make_table
from harness.links.measure import Measured


def matrix_table(measured: Measured) -> Table:
    matrix = measured.matrix
    table = make_table(
        f"link matrix of {len(matrix.hosts)} hosts: {measured.rounds} rounds in {measured.seconds:.1f} s",
        ["from", "to", "MB/s>", "rtt ms>", "source", "note"],
        caption="payload throughput of one bulk transfer (its round trip taken out); best of the echoes' round trips",
    )
    for src, dst in matrix.pairs():
        i, j = matrix.index(src), matrix.index(dst)
        rate, rtt = matrix.rate[i, j], matrix.rtt_s[i, j]
        table.add_row(
            src,
            dst,
            "-" if math.isnan(rate) else f"{rate / 1e6:,.2f}",
            "-" if math.isnan(rtt) else f"{rtt * 1e3:,.3f}",
            matrix.source.get((src, dst), "gap"),
            matrix.note.get((src, dst), ""),
        )
    return table
