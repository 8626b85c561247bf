"""A safetensors file's header (tensor names, element types, shapes, offsets) parsed and bounded before any
tensor is read."""

from __future__ import annotations

import dataclasses
import math
import struct

import torch

from lab.runs.contents import MiB, parse_json

MAX_HEADER_BYTES = 1 * MiB  # a run file's safetensors header: names, types and shapes of a few hundred tensors
MAX_TENSOR_DIMS = 8


# The element types a safetensors header may name that LossLens reads, by the header's names. Floats narrower
# than float32 are read as float32; float8 and unsigned types wider than a byte are refused.
SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A tensor's type and shape, as a safetensors header gives them (or a tensor in memory has them)."""

    dtype: torch.dtype
    shape: tuple[int, ...]

    @classmethod
    def of(cls, tensor: torch.Tensor) -> TensorInfo:
        return cls(tensor.dtype, tuple(tensor.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


@dataclasses.dataclass(frozen=True)
class Header:
    """A safetensors file's header: each tensor's type and shape, and where its bytes lie in the file."""

    tensors: dict[str, TensorInfo]
    offsets: dict[str, tuple[int, int]]  # name -> (first byte, end) in the file
    metadata: dict[str, str]


def header_length(first_bytes: bytes, file_size: int) -> int:
    """The header length a safetensors file's first 8 bytes give; a ValueError when it cannot be one."""
    if len(first_bytes) < 8:
        raise ValueError(f"it is {len(first_bytes)} bytes long, shorter than any safetensors file")
    (length,) = struct.unpack("<Q", first_bytes[:8])
    if length > min(MAX_HEADER_BYTES, file_size - 8):
        raise ValueError(f"its header would be {length} bytes long, in a file of {file_size} bytes")
    return length


def parse_header(data: bytes, file_size: int) -> Header:
    """The header ``data`` (the bytes after the length) of a safetensors file of ``file_size`` bytes, checked
    as the format requires: known types, shapes of whole numbers, and byte ranges that match the shapes and
    tile the rest of the file. A ValueError says what is wrong."""
    raw = parse_json(data)
    if not isinstance(raw, dict):
        raise ValueError("its header is not a JSON object")
    metadata = raw.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("its header's __metadata__ must map names to text")
    start = 8 + len(data)
    tensors, offsets = {}, {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"its header's entry for {name!r} must hold dtype, shape and data_offsets")
        dtype, shape, span = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise ValueError(f"{name} holds {str(dtype)[:20]!r} numbers, which LossLens does not read")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_TENSOR_DIMS
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise ValueError(f"{name}'s shape must be a list of at most {MAX_TENSOR_DIMS} sizes")
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) for v in span)):
            raise ValueError(f"{name}'s data_offsets must be two byte offsets")
        info = TensorInfo(SAFETENSORS_DTYPES[dtype], tuple(shape))
        if span[1] - span[0] != info.nbytes:
            raise ValueError(f"{name}'s byte range does not fit its shape {tuple(shape)}")
        tensors[name], offsets[name] = info, (start + span[0], start + span[1])
    end = start
    for first, last in sorted(offsets.values()):
        if first != end:
            raise ValueError("its tensors' byte ranges overlap or leave gaps")
        end = last
    if end != file_size:
        raise ValueError(f"its tensors end at byte {end}, in a file of {file_size} bytes")
    return Header(tensors, offsets, metadata)
