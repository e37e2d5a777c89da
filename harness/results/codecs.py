"""What each cut codec costs and saves: one row per model, blosc2 compression, cut and codec
(``codecs.csv``). Compression is a key because it is swept as a matrix with the codec and changes
the bytes on the wire; runs that differ only in their link share a row (the link changes neither
the bytes nor the answers).

A codec is lossy, so its bytes mean nothing without what it does to the answers. With a labelled
dataset every record holds the predicted and true class, and a row gives the codec's top-1
accuracy beside the uncompressed model's at the same cut (the runs with codec ``none``: the split
is exact, so that is the model's own accuracy), and their agreement: the share of samples whose
top-1 is the one the uncompressed model gives the same input. Without labels the accuracy columns
are empty. Bytes and codec times are medians per inference; ``ratio`` is raw bytes over wire bytes.
"""

import pandas as pd

from harness.errors import BadInput
from harness.results.summary import RunInfo

COLUMNS = (
    "model",
    "compression",
    "cut",
    "layer",
    "codec",
    "n",
    "bytes_raw",
    "bytes_wire",
    "ratio",
    "codec_encode_ms",
    "codec_decode_ms",
    "accuracy",
    "uncompressed_accuracy",
    "agreement",
)
UNCOMPRESSED = "none"
_KEYS = ["model", "compression", "cut"]


def codec_table(records: pd.DataFrame) -> pd.DataFrame | None:
    """The codecs' rows, ordered by model, compression, cut and bytes on the wire; None where every
    record was sent as it was (no codec column, or only ``none``)."""
    if "codec" not in records.columns or records["codec"].eq(UNCOMPRESSED).all():
        return None
    missing = [column for column in (*_KEYS, "layer", "bytes_raw", "bytes_wire") if column not in records]
    if missing:
        raise BadInput(f"records lack {', '.join(missing)}; expected the InferenceRecord fields")
    sent = records[records["bytes_wire"] > 0]
    grouped = sent.groupby([*_KEYS, "codec"], sort=True)
    table = grouped.agg(
        layer=("layer", "first"),
        n=("layer", "size"),
        bytes_raw=("bytes_raw", "median"),
        bytes_wire=("bytes_wire", "median"),
        codec_encode_ms=("codec_encode_ns", "median"),
        codec_decode_ms=("cloud_codec_ns", "median"),
    ).reset_index()
    table["bytes_raw"] = table["bytes_raw"].round().astype("int64")
    table["bytes_wire"] = table["bytes_wire"].round().astype("int64")
    table["ratio"] = table["bytes_raw"] / table["bytes_wire"]
    table[["codec_encode_ms", "codec_decode_ms"]] /= 1e6
    table = table.merge(_answers(sent), on=[*_KEYS, "codec"], how="left")
    return table.sort_values([*_KEYS, "bytes_wire", "codec"], kind="stable").reset_index(drop=True)[list(COLUMNS)]


def _answers(records: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, the uncompressed model's at the same cut, and agreement with it, per model, cut and
    codec; empty columns where the records hold no labels or no uncompressed run."""
    keys = [*_KEYS, "codec"]
    labelled = records.dropna(subset=["predicted", "label"]) if "label" in records.columns else records.iloc[:0]
    if labelled.empty:
        frame = records[keys].drop_duplicates()
        return frame.assign(accuracy=float("nan"), uncompressed_accuracy=float("nan"), agreement=float("nan"))
    correct = labelled.assign(correct=labelled["predicted"] == labelled["label"])
    accuracy = correct.groupby(keys)["correct"].mean().rename("accuracy").reset_index()
    plain = correct[correct["codec"] == UNCOMPRESSED]
    baseline = plain.groupby(_KEYS)["correct"].mean().rename("uncompressed_accuracy").reset_index()
    answers = plain.groupby([*_KEYS, "input"])["predicted"].first().rename("plain").reset_index()
    paired = correct.merge(answers, on=[*_KEYS, "input"], how="inner")
    agreement = (
        paired.assign(same=paired["predicted"] == paired["plain"])
        .groupby(keys)["same"]
        .mean()
        .rename("agreement")
        .reset_index()
    )
    return accuracy.merge(baseline, on=_KEYS, how="left").merge(agreement, on=keys, how="left")


def codec_times(records: pd.DataFrame, summary: pd.DataFrame, infos: list[RunInfo]) -> pd.DataFrame | None:
    """Each codec's median end-to-end time per cut beside the other codecs of its group (runs alike
    but for their codec: the same model, link and compression, named by ``RunInfo.caption``), the
    comparison the per-run charts leave to the reader; None where no group has two codecs."""
    if "codec" not in records.columns:
        return None
    captions = {info.run: info.caption() for info in infos}
    codecs = records.groupby("run", sort=False)["codec"].first()
    rows = summary[summary["pipeline"] == ""][["run", "cut", "layer", "total_ms_median"]]
    rows = rows.assign(group=rows["run"].map(captions), codec=rows["run"].map(codecs))
    rows = rows[rows.groupby("group")["codec"].transform("nunique") > 1]
    if rows.empty:
        return None
    return rows.sort_values(["group", "codec", "cut"], kind="stable").reset_index(drop=True)
