"""Cut codecs through the frames: every codec within its stated error at every AlexNet cut, payloads
of exactly the size their header implies, and frames that lie about them refused by field."""

import math
from pathlib import Path

import msgspec
import pytest
import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import BadInput
from harness.manifest import load_manifest
from harness.model import Granularity, build_split_graph, load_model
from harness.partition.situation import Link, situation_from_profiles
from harness.wire.codecs import Coded, CutCodec, channel_axis
from harness.wire.compression import Compression
from harness.wire.frames import FrameError, Infer, Limits, ModelSpec, decode_request, encode
from harness.wire.tensors import decode_values, dtype_name, pack, unpack
from harness.worker.segments import ModelPolicy

CODECS = ("fp16", "bf16", "int8", "int8-channel", "int4-channel", "topk:0.25")
SPEC = ModelSpec(name="alexnet", granularity="module", input_shape=(1, 3, 224, 224))


def _cross(values: list, names: list[str], codec: CutCodec, compression: Compression | None = None):
    """``values`` encoded, framed, checked as a worker checks them, and decoded; with the specs sent."""
    coded = [
        codec.encode(value, dtype_name(value, name)) if isinstance(value, torch.Tensor) else value
        for value, name in zip(values, names, strict=True)
    ]
    specs, buffers, raw = pack(coded, names, compression or Compression())
    frames = [bytes(frame) for frame in encode(Infer(id=7, model=SPEC, cut=3, values=specs), buffers)]
    message, received = decode_request(frames, Limits())
    return decode_values(unpack(message.values, received, message.id), message.id), message.values, raw, frames


@pytest.fixture(scope="module")
def alexnet_cuts():
    """Every AlexNet cut's live tensors for one input (random weights: what matters is the values' spread)."""
    torch.manual_seed(0)
    split = build_split_graph(load_model("alexnet"), Granularity.MODULE, (1, 3, 224, 224))
    example = torch.randn(1, 3, 224, 224)
    found = []
    for cut in split.cuts[:-1]:
        with torch.inference_mode():
            live = split.head(cut.index)(example)
        found.append((cut.index, [crossing.name for crossing in split.live(cut.index)], list(live)))
    return found


def _step(value: torch.Tensor, levels: int, axis: int | None) -> torch.Tensor:
    """The quantisation step of each value's channel: the range (holding 0) over the levels."""
    dims = [dim for dim in range(value.dim()) if dim != axis] if axis is not None else list(range(value.dim()))
    low = value.amin(dim=dims, keepdim=True).clamp(max=0)
    high = value.amax(dim=dims, keepdim=True).clamp(min=0)
    return (high - low) / levels


@pytest.mark.parametrize("name", CODECS)
def test_every_codec_round_trips_within_its_bound_and_its_size_at_every_alexnet_cut(alexnet_cuts, name):
    codec = CutCodec.parse(name)
    for cut, names, live in alexnet_cuts:
        decoded, specs, raw, frames = _cross(live, names, codec)
        assert raw == sum(value.numel() * 4 for value in live), "raw bytes are the tensors' own, before the codec"
        for value, back, spec, buffer in zip(live, decoded, specs, frames[1:], strict=True):
            where = f"cut {cut} {spec.name} {name}"
            assert back.dtype == value.dtype and back.shape == value.shape, where
            error = (back - value).abs()
            elements = value.numel()
            axis = channel_axis(tuple(value.shape))
            channels = value.shape[axis] if axis is not None else 1
            expected = {
                "fp16": 2 * elements,
                "bf16": 2 * elements,
                "int8": elements,
                "int8-channel": 8 * channels + elements,
                "int4-channel": 8 * channels + math.ceil(elements / 2),
                "topk:0.25": math.ceil(0.25 * elements) * 8,
            }[name]
            assert spec.nbytes == len(buffer) == expected, where
            if name == "fp16":
                assert (error <= 1e-3 * value.abs() + 2**-24).all(), where
            elif name == "bf16":
                assert (error <= 2**-8 * value.abs() + 1e-38).all(), where
            elif name == "int8":
                assert spec.cut.scale == pytest.approx(float(_step(value, 255, None)), rel=1e-6)
                assert (error <= spec.cut.scale / 2 * (1 + 1e-4)).all(), where
            elif name.endswith("-channel"):
                levels = 255 if name == "int8-channel" else 15
                assert spec.cut.axis == axis
                assert (error <= _step(value, levels, axis) / 2 * (1 + 1e-4) + 1e-12).all(), where
            else:
                kept = back != 0
                assert (back[kept] == value[kept]).all(), "top-k values cross exactly"
                assert int(kept.sum()) <= spec.cut.kept == math.ceil(0.25 * elements)
                assert value[~kept].abs().max() <= value[kept].abs().min(), "the dropped are the smallest"


def test_a_codec_composes_with_compression_and_leaves_integers_and_numbers_alone():
    activation = torch.relu(torch.randn(1, 64, 27, 27, generator=torch.Generator().manual_seed(1)))
    indices = torch.arange(10)
    decoded, specs, raw, _ = _cross(
        [activation, indices, 3], ["a", "i", "n"], CutCodec.parse("int8"), Compression.parse("lz4")
    )
    assert specs[0].cut.codec == "int8" and specs[0].codec == "lz4" and specs[0].wire < specs[0].nbytes
    assert specs[1].cut is None and torch.equal(decoded[1], indices) and decoded[2] == 3
    assert raw == activation.numel() * 4 + indices.numel() * 8
    assert (decoded[0] - activation).abs().max() <= specs[0].cut.scale / 2 * (1 + 1e-4)
    assert (decoded[0][activation == 0] == 0).all(), "zeros after a ReLU come back exact"


def test_a_message_without_codecs_is_unchanged_on_the_wire():
    specs, _, _ = pack([torch.ones(2, 3)], ["x"], Compression())
    header = encode(Infer(id=1, model=SPEC, cut=3, values=specs))[0]
    assert b'"codec":"none","nbytes":24,"wire":24}' in header, "no cut codec field in a plain tensor's header"


def test_a_user_codec_is_imported_from_the_workers_packages_only():
    value = torch.randn(1, 8, 4, 4)
    user = CutCodec.parse("experiments.codecs:float16_halves")
    coded = user.encode(value, "float32")
    assert torch.equal(coded.payload, CutCodec.parse("fp16").encode(value, "float32").payload)
    specs, buffers, _ = pack([coded], ["x"], Compression())
    frames = [bytes(frame) for frame in encode(Infer(id=2, model=SPEC, cut=3, values=specs), buffers)]
    message, received = decode_request(frames, Limits())
    values = unpack(message.values, received, message.id)
    policy = ModelPolicy()
    (back,) = decode_values(values, message.id, lambda name: policy.codec(name, request_id=message.id))
    assert torch.equal(back, value.to(torch.float16).to(torch.float32))
    with pytest.raises(FrameError, match=r"codec 'os\.path:join': user codecs are served from experiments only"):
        ModelPolicy().codec("os.path:join", 2)


def _tampered(codec: str, value: torch.Tensor, **changes) -> list:
    coded = CutCodec.parse(codec).encode(value, "float32")
    specs, buffers, _ = pack([coded], ["x"], Compression())
    spec = specs[0]
    if "cut" in changes:
        changes["cut"] = msgspec.structs.replace(spec.cut, **changes["cut"])
    payload = changes.pop("payload", buffers[0])
    tampered = msgspec.structs.replace(spec, **changes)
    return [bytes(frame) for frame in encode(Infer(id=3, model=SPEC, cut=3, values=(tampered,)), [payload])]


@pytest.mark.parametrize(
    ("codec", "changes", "message"),
    [
        (
            "int8",
            {"nbytes": 10, "wire": 10},
            "tensor 'x': 10 bytes declared, shape [2, 4, 3, 3] of float32 as int8 holds 72",
        ),
        ("int8", {"cut": {"scale": None}}, "tensor 'x': codec int8 needs scale and zero"),
        ("int8-channel", {"cut": {"axis": 6}}, "tensor 'x': codec int8-channel: axis 6 of a tensor of 4 dimensions"),
        ("topk:0.5", {"cut": {"kept": 1000}}, "tensor 'x': codec topk: kept 1000 of 72 values"),
        ("fp16", {"dtype": "int32", "nbytes": 144, "wire": 144}, "codec fp16 on a int32 tensor: codecs apply to"),
        ("fp16", {"cut": {"codec": "zip"}}, "header field values[0].cut.codec: Expected `str` matching regex"),
    ],
)
def test_a_frame_that_lies_about_its_codec_is_refused_by_field(codec, changes, message):
    frames = _tampered(codec, torch.randn(2, 4, 3, 3), **changes)
    with pytest.raises(FrameError, match=None) as caught:
        decode_request(frames, Limits())
    assert caught.value.code == "bad-frame" and caught.value.request_id == 3
    assert str(caught.value).startswith(message) or message in str(caught.value)


def test_a_top_k_position_outside_the_tensor_is_refused_not_written():
    value = torch.randn(2, 4, 3, 3)
    coded = CutCodec.parse("topk:0.5").encode(value, "float32")
    payload = coded.payload.clone()
    payload[:4] = torch.tensor([10_000], dtype=torch.int32).view(torch.uint8)
    with pytest.raises(FrameError, match="codec topk: topk position outside the tensor's 72 values"):
        decode_values([Coded(payload, "float32", (2, 4, 3, 3), coded.header)], 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zip", "codec 'zip': expected none, fp16, bf16, int8, int8-channel, int4-channel, topk:FRACTION"),
        ("topk:0", "codec 'topk:0': the top-k fraction must be in (0, 1], like topk:0.1"),
        ("topk:1.5", "codec 'topk:1.5': the top-k fraction must be in (0, 1], like topk:0.1"),
        ("topk:half", "codec 'topk:half': expected topk:FRACTION with FRACTION in (0, 1]"),
        ("experiments.codecs:", "codec 'experiments.codecs:': expected none, fp16"),
    ],
)
def test_a_codec_name_that_means_nothing_is_refused(text, message):
    with pytest.raises(BadInput) as caught:
        CutCodec.parse(text)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("sets", "field", "expected"),
    [
        (["codec=zip"], "codec", "expected none, fp16, bf16, int8, int8-channel, int4-channel, topk:FRACTION"),
        (
            ["codec=topk:2"],
            "codec",
            "expected none, fp16, bf16, int8, int8-channel, int4-channel, topk:FRACTION with FRACTION in (0, 1] "
            "or package.module:function (got 'topk:2')",
        ),
    ],
)
def test_a_bad_codec_in_a_manifest_names_file_line_and_field_and_starts_nothing(sets, field, expected):
    result = CliRunner().invoke(
        cli, ["sweep", "manifests/alexnet.yml", *[f"--set={item}" for item in sets], "--dry-run"]
    )
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"harness: error: manifests/alexnet.yml:67: field {field}: {expected}")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("manifests/tiers.yml", "expected none over tiers: a cut codec encodes what one edge sends one worker"),
        ("manifests/ionn.yml", "expected none beside upload: its queries and chunks travel as they are"),
    ],
)
def test_a_codec_is_refused_over_tiers_and_beside_an_upload(tmp_path, manifest, expected):
    path = tmp_path / "with-codec.yml"
    path.write_text(Path(manifest).read_text() + "codec: int8\n")
    with pytest.raises(BadInput) as caught:
        load_manifest(path, [])
    assert str(caught.value).endswith(f"field codec: {expected}")


TO_CHOOSE = (
    "manifests/codecs.yml:55: field codec: expected none and at least one codec beside choose_codec, to choose among"
)


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (
            ["codecs=[int8, fp16]"],
            TO_CHOOSE,
        ),
        (
            ["codecs=[none]"],
            TO_CHOOSE,
        ),
    ],
)
def test_choosing_the_codec_needs_codecs_to_choose_among(sets, expected):
    with pytest.raises(BadInput) as caught:
        load_manifest(Path("manifests/codecs.yml"), sets)
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("evaluate: [neurosurgeon, oracle]", "evaluate: []"), "expected evaluate beside it"),
        (("  name: digits\n", "  name: synthetic\n"), "expected a labelled dataset to measure accuracy on"),
    ],
)
def test_choosing_the_codec_needs_partitioners_and_labels(tmp_path, change, expected):
    text = Path("manifests/codecs.yml").read_text().replace("  part: test\n", "")
    path = tmp_path / "codecs.yml"
    path.write_text(text.replace(*change))
    with pytest.raises(BadInput) as caught:
        load_manifest(path, [])
    assert "field choose_codec: " + expected in str(caught.value)


def test_a_partitioner_charges_a_cut_its_codecs_payload_and_time():
    """AlexNet's pool1 under int8: a quarter of the bytes at the link's rate, plus the codec's time."""
    split = build_split_graph(load_model("alexnet"), Granularity.MODULE, (1, 3, 224, 224))
    zeros = [0.0] * len(split.layers)
    plain = situation_from_profiles(split, zeros, zeros, Link(1e6))
    int8 = CutCodec.parse("int8")
    quantised = situation_from_profiles(split, zeros, zeros, Link(1e6), codec=int8, codec_ns={3: 2e6})
    assert quantised.cut_bytes[3] == plain.cut_bytes[3] // 4 == 46_656
    assert quantised.profiled_ms[3] == pytest.approx(plain.profiled_ms[3] - 0.75 * 186.624 + 2.0)
    assert quantised.cut_bytes[0] == 3 * 224 * 224, "the input, float32, is a quarter too"
