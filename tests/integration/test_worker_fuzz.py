"""Ten thousand malformed requests: each gets an error reply, and the worker goes on serving.

The frames are generated from a seeded random source in seven families (garbage, truncated,
oversized, mismatched against the model's cut, valid headers with one field made wrong, upload
requests that break a session's rules, and tensors whose cut codec's header and payload disagree),
so a failure is reproducible from its index.
"""

import json
import random
import secrets

import torch
import zmq

from harness.wire import Compression, CutCodec, Limits, ModelSpec
from harness.wire.frames import Chunk, Commit, Infer, Open, TensorSpec, decode_reply, encode
from harness.wire.tensors import pack, unpack
from harness.worker import WorkerClient

BAD_FRAMES = 10_000
LIMIT_MB = 1
SPEC = ModelSpec(name="experiments.models:tiny_skipnet", granularity="node", input_shape=(1, 3, 32, 32))
INVALID_JSON_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x80, 0x100)])


class Requests:
    """Valid requests for one cut of the skip network, and ways of breaking them."""

    def __init__(self, split, cut: int, rng: random.Random):
        self.rng = rng
        self.cut = cut
        self.session = secrets.token_hex(16)
        self.params = {name: split.facts.param_bytes[name] for name in split.tensor_names}
        self.names = [crossing.name for crossing in split.live(cut)]
        self.live = split.head(cut)(torch.randn(SPEC.input_shape))
        self.expected = split.tail(cut)(*self.live)

    def valid(self, request_id: int, compression: str = "none", codec: str = "none") -> list[bytes]:
        coded = [CutCodec.parse(codec).encode(value, "float32") for value in self.live]
        specs, buffers, _ = pack(coded, self.names, Compression.parse(compression))
        frames = encode(Infer(id=request_id, model=SPEC, cut=self.cut, values=specs), buffers)
        return [bytes(frame) for frame in frames]

    def garbage(self) -> list[bytes]:
        rng = self.rng
        return [rng.randbytes(rng.randrange(0, 2000)) for _ in range(rng.randrange(1, 4))]

    def truncated(self) -> list[bytes]:
        frames = self.valid(self.rng.randrange(1, 10**6))
        index = self.rng.randrange(len(frames))
        frames[index] = frames[index][: self.rng.randrange(len(frames[index]))]
        return frames if index else frames[: self.rng.randrange(1, len(frames) + 1)]

    def oversized(self) -> list[bytes]:
        header = json.loads(self.valid(1)[0])
        choice = self.rng.randrange(3)
        if choice == 0:
            return [b"{" + b" " * (Limits().header_bytes + self.rng.randrange(1, 5000)) + b"}"]
        side = self.rng.randrange(600, 4096)
        header["values"][0].update(shape=[side, side], nbytes=4 * side * side, wire=4 * side * side)
        if choice == 1:
            header["values"][0].update(shape=[2**31, 2**31], nbytes=2**62, wire=16)
        return [json.dumps(header).encode(), b"\0" * 16, b"\0" * 16]

    def mismatched(self) -> list[bytes]:
        header, *buffers = self.valid(self.rng.randrange(1, 10**6))
        fields = json.loads(header)
        tensor = fields["values"][0]
        change = self.rng.randrange(7)
        if change == 0:
            tensor["shape"] = [dimension + 1 for dimension in tensor["shape"]]
            tensor["nbytes"] = tensor["wire"] = 4 * _product(tensor["shape"])
            buffers[0] = b"\0" * tensor["wire"]
        elif change == 1:
            tensor["dtype"] = "float64"
            tensor["nbytes"] = tensor["wire"] = 2 * tensor["nbytes"]
            buffers[0] = buffers[0] * 2
        elif change == 2:
            tensor["name"] = "not_" + tensor["name"]
        elif change == 3:
            fields["values"] = fields["values"][:1] if len(fields["values"]) > 1 else fields["values"] * 2
            buffers = buffers[: len(fields["values"])] + buffers[:1] * (len(fields["values"]) - len(buffers))
        elif change == 4:
            fields["cut"] = self.rng.choice([0, 1, 2]) if self.cut > 2 else 5
        elif change == 5:
            tensor["codec"] = "lz4"
        else:
            fields["model"]["name"] = self.rng.choice(["resnet1000", "experiments.models:nothere", "os:getcwd"])
        return [json.dumps(fields).encode(), *buffers]

    def corrupted(self) -> list[bytes]:
        header, *buffers = self.valid(self.rng.randrange(1, 10**6))
        damaged = bytearray(header)
        for _ in range(self.rng.randrange(1, 4)):
            damaged[self.rng.randrange(len(damaged))] = self.rng.choice(INVALID_JSON_BYTES)
        return [bytes(damaged), *buffers]

    def coded(self) -> list[bytes]:
        """A request whose first tensor crossed a cut codec, its header or payload made wrong."""
        rng = self.rng
        codec = rng.choice(["int8", "int8-channel", "int4-channel", "topk:0.5", "fp16"])
        header, *buffers = self.valid(rng.randrange(1, 10**6), codec=codec)
        fields = json.loads(header)
        tensor = fields["values"][0]
        cut = tensor["cut"]
        change = rng.randrange(7)
        if change == 0:
            extra = rng.choice([-1, 1, 7])
            buffers[0] = buffers[0][:extra] if extra < 0 else buffers[0] + b"\0" * extra
            tensor["nbytes"] = tensor["wire"] = len(buffers[0])
        elif change == 1:
            cut["codec"] = rng.choice(["os.path:join", "experiments.codecs:nothere", "zip", "topk:0.5"])
        elif change == 2:
            cut.update(codec="int8-channel", axis=7)
        elif change == 3:
            cut.update(codec="topk", kept=10**9)
        elif change == 4:
            tensor["dtype"] = "int32"
        elif change == 5:
            cut["scale"] = rng.choice([0, -1.0, "x"])
            cut["codec"] = "int8"
        elif codec == "topk:0.5":
            payload = bytearray(buffers[0])
            payload[:4] = (10**6).to_bytes(4, "little")
            buffers[0] = bytes(payload)
        else:
            cut["codec"] = "topk"
        return [json.dumps(fields).encode(), *buffers]

    def upload(self) -> list[bytes]:
        """A request against the open session (or another) that breaks one of its rules."""
        rng = self.rng
        name = rng.choice(sorted(self.params))
        size = self.params[name]
        change = rng.randrange(6)
        if change == 0:
            return [encode(Open(id=rng.randrange(1, 10**6), session=self.session, model=SPEC))[0]]
        if change == 1:
            request = Commit(id=rng.randrange(1, 10**6), session=self.session, stage=1, params=(name,))
            return [encode(request)[0]]
        if change == 2:
            request = Infer(id=rng.randrange(1, 10**6), model=SPEC, cut=0, values=(), session=secrets.token_hex(16))
            return [encode(request)[0]]
        piece = rng.randbytes(rng.randrange(1, 64))
        offset = size + rng.randrange(0, 100) if change == 3 else 0
        param = "not." + name if change == 4 else name
        dtype = "int8" if change == 5 else "float32"
        value = TensorSpec(
            name="chunk", dtype="uint8", shape=(len(piece),), codec="none", nbytes=len(piece), wire=len(piece)
        )
        shape = (size // 4,)
        request = Chunk(
            id=rng.randrange(1, 10**6),
            session=self.session,
            param=param,
            dtype=dtype,
            shape=shape,
            offset=offset,
            values=(value,),
        )
        return [encode(request)[0], piece]


def _product(shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _exchange(socket: zmq.Socket, frames: list[bytes]):
    socket.send_multipart(frames)
    assert socket.poll(5000), "the worker did not answer"
    return decode_reply(socket.recv_multipart(copy=False), Limits())


def test_ten_thousand_bad_frames(start_worker, skipnet):
    _, split = skipnet
    worker = start_worker("--max-message-mb", str(LIMIT_MB))
    rng = random.Random(20261124)
    two_tensor_cut = next(cut.index for cut in split.cuts if len(cut.live) == 2)
    requests = Requests(split, two_tensor_cut, rng)
    families = [
        requests.garbage,
        requests.truncated,
        requests.oversized,
        requests.mismatched,
        requests.corrupted,
        requests.upload,
        requests.coded,
    ]
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(worker.endpoint)
    codes: dict[str, int] = {}
    try:
        opened, _ = _exchange(socket, [encode(Open(id=1, session=requests.session, model=SPEC))[0]])
        assert opened.kind == "opened"
        for index in range(BAD_FRAMES):
            family = families[index % len(families)]
            reply, _ = _exchange(socket, family())
            assert reply.kind == "error", (index, family.__name__, reply)
            codes[reply.code] = codes.get(reply.code, 0) + 1
            if index % 1000 == 999:
                valid_id = 10**9 + index
                reply, buffers = _exchange(socket, requests.valid(valid_id, rng.choice(["none", "lz4"])))
                assert reply.kind == "result" and reply.id == valid_id
                assert torch.equal(unpack(reply.values, buffers)[0], requests.expected)
                reply, buffers = _exchange(socket, requests.valid(valid_id + 1, codec="fp16"))
                assert reply.kind == "result" and reply.id == valid_id + 1
                assert torch.allclose(unpack(reply.values, buffers)[0], requests.expected, rtol=1e-2, atol=1e-2)
    finally:
        socket.close()
        context.term()
    assert sum(codes.values()) == BAD_FRAMES
    assert {"bad-frame", "too-large", "mismatch", "unknown-model", "refused"} <= set(codes)
    assert worker.stop() == 0


def test_a_frame_beyond_the_socket_limit_drops_only_that_peer(start_worker):
    worker = start_worker("--max-message-mb", str(LIMIT_MB))
    context = zmq.Context()
    greedy = context.socket(zmq.DEALER)
    greedy.setsockopt(zmq.LINGER, 0)
    greedy.connect(worker.endpoint)
    try:
        greedy.send_multipart([b"{}", b"\0" * (2 * LIMIT_MB * 1024 * 1024)])
        assert not greedy.poll(1000)
        with WorkerClient(worker.endpoint) as client:
            assert client.ping().requests == 1
    finally:
        greedy.close()
        context.term()
