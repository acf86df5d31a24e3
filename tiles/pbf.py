"""Protocol-buffer wire format written with numpy: many varints at once, and segment helpers.

An MVT feature is, on the wire, nothing but varints (field keys, lengths, ids, packed tags and
geometry commands), so a whole layer's features can be laid out as one uint64 array and
turned into bytes in a single vectorised pass. Reference: developers.google.com/protocol-buffers
/docs/encoding (varint, wire types 0/1/2, packed repeated fields).
"""

from __future__ import annotations

import struct

import numpy as np

VARINT, FIXED64, LEN = 0, 1, 2
_THRESHOLDS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def key(field: int, wire_type: int) -> int:
    return (field << 3) | wire_type


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes each uint64 takes as a varint (1–10)."""
    values = np.asarray(values, dtype=np.uint64)
    sizes = np.ones(values.shape, dtype=np.int64)
    for threshold in _THRESHOLDS:
        wider = values >= threshold
        if not wider.any():
            break
        sizes += wider
    return sizes


def put_varints(out: np.ndarray, starts: np.ndarray, values: np.ndarray, sizes: np.ndarray) -> None:
    """Write each of ``values`` as a varint into the uint8 buffer ``out`` at ``starts``."""
    rest = np.asarray(values, dtype=np.uint64).copy()
    starts = np.asarray(starts, dtype=np.int64)
    for k in range(int(sizes.max()) if len(sizes) else 0):
        if k:
            live = sizes > k
            rest, starts, sizes = rest[live], starts[live], sizes[live]
        byte = (rest & np.uint64(0x7F)).astype(np.uint8)
        byte[sizes > k + 1] |= 0x80
        out[starts + k] = byte
        rest >>= np.uint64(7)


def write_varints(values: np.ndarray) -> bytes:
    """The varints of ``values`` (uint64; negative int64 must be viewed as uint64 first), back to back."""
    values = np.asarray(values, dtype=np.uint64)
    if values.size == 0:
        return b""
    sizes = varint_sizes(values)
    if int(sizes.max()) == 1:
        return values.astype(np.uint8).tobytes()
    starts = offsets_of(sizes)
    out = np.empty(int(starts[-1]), dtype=np.uint8)
    put_varints(out, starts[:-1], values, sizes)
    return out.tobytes()


def varint(value: int) -> bytes:
    """One varint; negative ints as 64-bit two's complement (protobuf's int64)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_field(field: int, value: int) -> bytes:
    return varint(key(field, VARINT)) + varint(value)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint(key(field, LEN)) + varint(len(payload)) + payload


def double(field: int, value: float) -> bytes:
    return varint(key(field, FIXED64)) + struct.pack("<d", value)


def segment_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values[offsets[i]:offsets[i+1]]`` for each i (empty segments give 0)."""
    cs = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    return cs[offsets[1:]] - cs[offsets[:-1]]


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(starts[i], starts[i] + lengths[i])`` for each i."""
    lengths = np.asarray(lengths, dtype=np.int64)
    nonempty = lengths > 0
    starts, lengths = np.asarray(starts, dtype=np.int64)[nonempty], lengths[nonempty]
    if not len(lengths):
        return np.zeros(0, dtype=np.int64)
    # a run of +1 steps, jumping at each segment start to that segment's first index
    step = np.ones(int(lengths.sum()), dtype=np.int64)
    step[0] = starts[0]
    step[np.cumsum(lengths[:-1])] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(step)


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    """[0, l0, l0+l1, ...]: where each segment starts, plus the total at the end."""
    return np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
