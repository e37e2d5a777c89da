"""The wire format: what goes in comes out bit for bit, and every malformed frame is named."""

import json
import math

import pytest
import torch

from harness.errors import BadInput
from harness.wire.compression import Compression
from harness.wire.frames import FrameError, Infer, Limits, ModelSpec, Ping, decode_request, encode
from harness.wire.link import EmulatedLink, parse_delay, parse_rate
from harness.wire.tensors import pack, unpack

MODEL = ModelSpec(name="alexnet", granularity="module", input_shape=(1, 3, 224, 224))


def _round_trip(values, compression="none"):
    specs, buffers, raw = pack(values, [f"v{i}" for i in range(len(values))], Compression.parse(compression))
    frames = encode(Infer(id=7, model=MODEL, cut=3, values=specs), buffers)
    message, received = decode_request([bytes(frame) for frame in frames], Limits())
    return unpack(message.values, received, message.id), raw, frames


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd:3:bit", "blosclz:1:none"])
@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.uint8, torch.bool]
)
def test_tensors_come_back_bit_exact(dtype, compression):
    tensor = (torch.randn(2, 3, 5, 7) * 10).to(dtype)
    (back,), raw, frames = _round_trip([tensor], compression)
    assert back.dtype == dtype and back.shape == tensor.shape
    assert torch.equal(back, tensor)
    assert raw == tensor.numel() * tensor.element_size()
    assert len(frames) == 2


def test_scalars_travel_in_the_header_and_keep_their_type():
    tensor = torch.relu(torch.randn(4, 4))
    values, raw, frames = _round_trip([7, tensor, 0.5, True])
    assert values[0] == 7 and type(values[0]) is int
    assert values[2] == 0.5 and values[3] is True
    assert torch.equal(values[1], tensor)
    assert len(frames) == 2 and raw == 64


def test_empty_and_non_contiguous_tensors():
    wide = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    values, _, _ = _round_trip([torch.empty(0, 3), wide.t()])
    assert values[0].shape == (0, 3)
    assert torch.equal(values[1], wide.t())


def test_compression_shrinks_activations_after_relu():
    tensor = torch.relu(torch.randn(256, 1024))
    _, raw, frames = _round_trip([tensor], "zstd:5:byte")
    assert len(frames[1]) < 0.75 * raw


def _frames(**changes) -> list[bytes]:
    specs, buffers, _ = pack([torch.ones(2, 2)], ["x"], Compression())
    header = json.loads(encode(Infer(id=9, model=MODEL, cut=3, values=specs))[0])
    header.update(changes.pop("header", {}))
    header["values"][0].update(changes.pop("tensor", {}))
    return [json.dumps(header).encode(), *changes.pop("buffers", [bytes(buffers[0])])]


BAD = [
    (
        {"header": {"kind": "launch"}},
        "bad-frame",
        "header field kind: Invalid value 'launch' "
        "(expected ping or prepare or infer or profile or probe or sink or open or chunk or commit or close)",
    ),
    ({"header": {"v": 2}}, "bad-frame", "header field v: Invalid enum value 2"),
    ({"header": {"cut": "3"}}, "bad-frame", "header field cut: Expected `int`, got `str`"),
    ({"header": {"extra": 1}}, "bad-frame", "header: Object contains unknown field `extra`"),
    ({"tensor": {"dtype": "complex64"}}, "bad-frame", "header field values[0].dtype: Invalid enum value 'complex64'"),
    ({"tensor": {"shape": [-2, 2]}}, "bad-frame", "header field values[0].shape[0]: Expected `int` >= 0"),
    (
        {"tensor": {"kind": "blob"}},
        "bad-frame",
        "header field values[0].kind: Invalid value 'blob' (expected tensor or scalar)",
    ),
    ({"tensor": {"nbytes": 15}}, "bad-frame", "tensor 'x': 15 bytes declared, shape [2, 2] of float32 holds 16"),
    ({"tensor": {"wire": 12}}, "bad-frame", "tensor 'x': 12 bytes declared, 16 received"),
    ({"buffers": []}, "bad-frame", "header lists 1 tensors but 0 buffers follow"),
    ({"buffers": [b"a" * 16, b"b"]}, "bad-frame", "header lists 1 tensors but 2 buffers follow"),
    (
        {"tensor": {"shape": [4096, 4096], "nbytes": 4096 * 4096 * 4}},
        "too-large",
        "tensors exceed the limit of 1048576 bytes per message",
    ),
    ({"tensor": {"codec": "lz4"}}, "bad-frame", "tensor 'x': 16 bytes is shorter than a blosc2 header (32)"),
    (
        {"header": {"model": {"name": "x; rm -rf", "granularity": "module", "input_shape": [1]}}},
        "bad-frame",
        "header field model.name: Expected `str` matching regex",
    ),
    (
        {"header": {"end": 5, "route": [{"endpoint": "http://10.0.0.1/", "end": None}]}},
        "bad-frame",
        "header field route[0].endpoint: Expected `str` matching regex",
    ),
    (
        {"header": {"end": 5, "route": [{"endpoint": "tcp://127.0.0.1:5"}] * 17}},
        "bad-frame",
        "header field route: Expected `array` of length <= 16",
    ),
    ({"header": {"reply_to": "edge"}}, "bad-frame", "header field reply_to: Expected `str` matching regex"),
]


@pytest.mark.parametrize(("changes", "code", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_frames_are_named(changes, code, message):
    limits = Limits(message_bytes=1024 * 1024)
    with pytest.raises(FrameError) as raised:
        message_, buffers = decode_request(_frames(**changes), limits)
        unpack(message_.values, buffers, message_.id)
    assert raised.value.code == code
    assert str(raised.value).startswith(message), str(raised.value)


def test_request_id_is_kept_when_the_header_parses_as_json():
    with pytest.raises(FrameError) as raised:
        decode_request(_frames(header={"cut": -1}), Limits())
    assert raised.value.request_id == 9
    with pytest.raises(FrameError) as raised:
        decode_request([b"\xff{not json"], Limits())
    assert raised.value.request_id == 0


def test_oversized_header_is_refused_before_parsing():
    with pytest.raises(FrameError, match="header of 70000 bytes exceeds the limit of 65536"):
        decode_request([b" " * 70000], Limits())


def test_corrupt_compressed_buffer_and_invalid_bool_are_refused():
    specs, buffers, _ = pack([torch.ones(64, 64)], ["x"], Compression.parse("lz4"))
    frames = encode(Infer(id=1, model=MODEL, cut=0, values=specs), buffers)
    forged = bytearray(frames[1])
    forged[4:8] = (1 << 30).to_bytes(4, "little")
    message, received = decode_request([frames[0], bytes(forged)], Limits())
    with pytest.raises(FrameError, match="blosc2 header says 1073741824 bytes"):
        unpack(message.values, received, message.id)
    specs, buffers, _ = pack([torch.ones(4, dtype=torch.bool)], ["flags"], Compression())
    frames = encode(Infer(id=1, model=MODEL, cut=0, values=specs), [b"\x01\x02\x00\x01"])
    message, received = decode_request(frames, Limits())
    with pytest.raises(FrameError, match="bool values other than 0 and 1"):
        unpack(message.values, received, message.id)


def test_ping_has_no_buffers():
    message, buffers = decode_request(encode(Ping(id=3)), Limits())
    assert message.kind == "ping" and message.id == 3 and buffers == []
    with pytest.raises(FrameError, match="header lists 0 tensors but 1 buffers follow"):
        decode_request([*encode(Ping(id=3)), b"x"], Limits())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("none", "none"), ("lz4", "lz4:5:byte"), ("ZSTD:3", "zstd:3:byte"), ("lz4:9:bit", "lz4:9:bit")],
)
def test_compression_parse(text, expected):
    assert str(Compression.parse(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("snappy", "compression codec 'snappy': expected one of none, blosclz, lz4, lz4hc, zlib, zstd"),
        ("lz4:x", "compression 'lz4:x': level 'x' is not a number from 0 to 9"),
        ("lz4:12", "compression level 12: expected 0 to 9"),
        ("lz4:5:word", "compression shuffle 'word': expected one of none, byte, bit"),
    ],
)
def test_compression_parse_errors(text, message):
    with pytest.raises(BadInput) as raised:
        Compression.parse(text)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("text", "rate"),
    [("4MB/s", 4e6), ("4 MB/s", 4e6), ("32mbit", 4e6), ("500kB/s", 5e5), ("1MiB/s", 1048576), ("2e6", 2e6)],
)
def test_parse_rate(text, rate):
    assert parse_rate(text) == pytest.approx(rate)


def test_parse_rate_and_delay_errors():
    with pytest.raises(BadInput, match=r"rate '4 parsecs': expected a number with a unit \(b/s, kb/s"):
        parse_rate("4 parsecs")
    assert parse_delay("20ms") == 20_000_000
    assert parse_delay("0") == 0
    with pytest.raises(BadInput, match="delay 'soon'"):
        parse_delay("soon")


def test_emulated_link_crossing_time():
    link = EmulatedLink(4e6, parse_delay("10ms"))
    assert link.crossing_ns(4_000_000) == 1_010_000_000
    assert EmulatedLink(math.inf, 5).crossing_ns(10**9) == 5, "an unlimited link adds its delay alone"
    with pytest.raises(BadInput, match="expected a rate > 0"):
        EmulatedLink(0)


def test_a_rate_is_positive_or_unlimited():
    assert parse_rate("unlimited") == math.inf
    with pytest.raises(BadInput) as error:
        parse_rate("0MB/s")
    assert str(error.value) == "rate '0MB/s': expected a rate above 0, like 4MB/s; an unshaped link is 'unlimited'"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64])
def test_a_buffer_at_an_odd_address_becomes_an_aligned_tensor(dtype):
    tensor = torch.arange(6).to(dtype).reshape(2, 3)
    specs, buffers, _ = pack([tensor], ["x"], Compression())
    shifted = bytearray(1 + tensor.nbytes)
    shifted[1:] = bytes(buffers[0])
    (back,) = unpack(specs, [memoryview(shifted)[1:]])
    assert back.data_ptr() % back.element_size() == 0
    assert torch.equal(back, tensor)


def test_a_value_that_cannot_be_sent_is_named():
    with pytest.raises(TypeError) as raised:
        pack([torch.zeros(2, dtype=torch.complex64)], ["z"], Compression())
    assert str(raised.value) == (
        "tensor 'z' of dtype complex64 cannot be sent (expected one of float32, float16, bfloat16, float64, "
        "uint8, int8, int16, int32, int64, bool)"
    )
    with pytest.raises(TypeError, match="value 'n' of type str cannot be sent"):
        pack(["seven"], ["n"], Compression())
