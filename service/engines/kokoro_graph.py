"""Kokoro's ONNX graph, opened at its duration predictor: how many frames (25 ms each) the
model gives every phoneme, as a second output beside the audio.

The exported graph returns audio only; langdu wants word timings from what the model
decided rather than an estimate. The rounded, clipped durations (`/encoder/Cast`, int64
[1, tokens]: the start pad, each token, the end pad) already exist inside the graph; the
edit names that tensor as a graph output, nothing else, so the audio is the same bit for
bit. It is made on the protobuf wire format directly (protobuf's encoding is public and
stable: a message is a sequence of tagged fields, a repeated field is its tag repeated), so
reading a 92 MB model needs neither the `onnx` package (69 MB installed) nor a copy of the
model on disk.

(Capping the frames the model holds after an input's final mark would save ~4% of the work,
but the model's prosody is predicted over the whole input: Whisper understood two voices
less well with it, 6.6% -> 10.7% and 7.7% -> 13.3% CER. Not done.)
"""

from __future__ import annotations

from collections.abc import Iterator

DURATIONS = "/encoder/Cast_output_0"  # int64 [1, tokens + 2]: frames per token
FRAME_SAMPLES = 600  # one duration frame at 24 kHz (25 ms)
_INT64 = 7  # onnx.TensorProto.INT64

# Field numbers of onnx.proto (ModelProto.graph; GraphProto.node/output; NodeProto.output;
# ValueInfoProto.name/type; TypeProto.tensor_type; TypeProto.Tensor.elem_type/shape;
# TensorShapeProto.dim; Dimension.dim_value/dim_param).
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_OUTPUT = 1, 12
_NODE_OUTPUT = 2
_LEN = 2  # wire type: length-delimited


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or malformed protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(buf: memoryview) -> Iterator[tuple[int, int, int, int, int]]:
    """Each field of one message: (number, wire type, start, value start, end); a
    length-delimited value is buf[value start:end].

    Raises:
        ValueError: not a protobuf message (or one using groups, which onnx does not).
    """
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, end = _read_varint(buf, pos)
            value = pos
        elif wire == 1:
            value, end = pos, pos + 8
        elif wire == 5:
            value, end = pos, pos + 4
        elif wire == _LEN:
            size, value = _read_varint(buf, pos)
            end = value + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if end > len(buf):
            raise ValueError("truncated protobuf message")
        yield number, wire, start, value, end
        pos = end


def field(number: int, payload: bytes) -> bytes:
    """One length-delimited field."""
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _int64_matrix(name: str) -> bytes:
    """A ValueInfoProto: int64 tensor of shape [1, tokens]."""
    dims = field(1, _varint(1 << 3) + _varint(1)) + field(1, field(2, b"tokens"))
    tensor = _varint(1 << 3) + _varint(_INT64) + field(2, dims)
    return field(1, name.encode()) + field(2, field(1, tensor))


def _makes(graph: memoryview, tensor: str) -> bool:
    """Whether a node of the graph outputs `tensor`."""
    name = tensor.encode()
    for n, w, _, value, end in fields(graph):
        if n == _GRAPH_NODE and w == _LEN and name in graph[value:end].tobytes():
            node = graph[value:end]
            if any(
                o == _NODE_OUTPUT and bytes(node[v:e]) == name for o, _, _, v, e in fields(node)
            ):
                return True
    return False


def with_durations(model: bytes) -> bytes:
    """The model with the `durations` output (see above).

    Raises:
        ValueError: the model is not the graph this edit was written for.
    """
    buf = memoryview(model)
    out = bytearray()
    seen = False
    for n, w, start, value, end in fields(buf):
        if n == _MODEL_GRAPH and w == _LEN:
            graph = buf[value:end]
            if not _makes(graph, DURATIONS):
                raise ValueError(f"the Kokoro graph has no tensor {DURATIONS}")
            out += field(n, bytes(graph) + field(_GRAPH_OUTPUT, _int64_matrix(DURATIONS)))
            seen = True
        else:
            out += buf[start:end]
    if not seen:
        raise ValueError("not an ONNX model: no graph")
    return bytes(out)
