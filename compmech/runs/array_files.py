"""Named arrays from files a model trained elsewhere leaves: NumPy ``.npz`` and ``safetensors``, read without pickle.

`read_arrays(path)` -> {name: array}. A ``.npz`` is read with ``allow_pickle=False`` (object arrays are refused);
a ``.safetensors`` file is read here from its documented layout (an 8-byte little-endian header length, a JSON
header of ``{name: {"dtype", "shape", "data_offsets"}}``, then the raw little-endian bytes), so the analysis needs
no extra package. bfloat16 has no NumPy dtype: such a tensor is widened to float32 exactly (its bits are the
upper half of a float32's).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from compmech.runs.errors import ConfigError

#: safetensors dtype codes -> NumPy dtypes (little-endian); "BF16" is handled apart.
SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "U16": "<u2",
    "U32": "<u4",
    "U64": "<u8",
    "BOOL": "?",
}
#: The largest safetensors header read (the format's own limit is 100 MB).
MAX_HEADER_BYTES = 100_000_000


class ArrayFileError(ConfigError):
    """An array file is missing, of an unknown format, or damaged (one line naming the file and the fix)."""


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every array in ``path`` (``.npz`` or ``.safetensors``, told by the suffix) by name, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ArrayFileError(f"array file {path} does not exist; pass an .npz or .safetensors file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".safetensors":
        return read_safetensors(path)
    raise ArrayFileError(
        f"{path}: unknown array file type {suffix!r}; save the arrays with numpy.savez "
        "(.npz) or safetensors (.safetensors)"
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except ValueError as exc:  # an object array needs pickle, which is never used
        raise ArrayFileError(f"{path}: {exc}; save plain numeric arrays (no object arrays)") from None
    except (OSError, EOFError) as exc:
        raise ArrayFileError(f"{path} is not a readable .npz file ({exc}); write it again with numpy.savez") from None


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file as NumPy arrays (the ``__metadata__`` entry skipped)."""
    path = Path(path)
    raw = path.read_bytes()

    def damaged(why: str) -> ArrayFileError:
        return ArrayFileError(
            f"{path} is not a valid safetensors file ({why}); write it again with "
            "safetensors.numpy.save_file or safetensors.torch.save_file"
        )

    if len(raw) < 8:
        raise damaged("shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(raw):
        raise damaged(f"header length {n} does not fit the file's {len(raw)} bytes")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged(f"its header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise damaged("its header is not a JSON object")
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            code, shape, (start, stop) = entry["dtype"], [int(s) for s in entry["shape"]], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise damaged(f"entry {name!r} lacks dtype, shape or data_offsets") from None
        if code == "BF16":
            dtype, width = np.dtype("<u2"), 2
        elif code in SAFETENSORS_DTYPES:
            dtype = np.dtype(SAFETENSORS_DTYPES[code])
            width = dtype.itemsize
        else:
            raise ArrayFileError(
                f"{path}: tensor {name!r} has dtype {code}, which NumPy cannot hold; save it as float32"
            )
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= start <= stop <= len(data) or stop - start != count * width:
            raise damaged(f"tensor {name!r}: data_offsets {start}..{stop} do not hold {count} x {width} bytes")
        a = np.frombuffer(data[start:stop], dtype=dtype).reshape(shape)
        if code == "BF16":  # bfloat16 = the upper 16 bits of a float32: widening is exact
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = np.array(a)  # a copy that owns its memory (not a view of the file's bytes)
    return out


#: NumPy dtypes -> safetensors dtype codes (for `safetensors_bytes`).
_CODES = {np.dtype(v): k for k, v in SAFETENSORS_DTYPES.items()}


def safetensors_bytes(arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """``arrays`` in the safetensors layout (`read_safetensors` reads it back; so do ``safetensors.numpy.load_file``
    and ``safetensors.torch.load_file``): tensors in name order, each C-contiguous little-endian."""
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    parts, offset = [], 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        code = _CODES.get(np.dtype(a.dtype.str.replace(">", "<")))
        if code is None:
            raise ArrayFileError(f"array {name!r} has dtype {a.dtype}, which safetensors cannot hold")
        data = a.tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        parts.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data start 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(parts)
