"""The compact AKDQFF file: everything rendering needs, nothing else.

Layout: ``b"AKDQFF03"``, a little-endian uint32 header length, the header (UTF-8 JSON: sizes, dtypes,
settings the decoder needs; zlib-compressed, which takes it from about 1.2 KB to 0.5 KB), then the
blobs the header lists, in order:

- ``centers``        K×3 fixed-point codes of ``StoragePrecision.center_bits`` bits over the scene box
  grown by the largest kernel support (kernels may sit just outside the box and still reach in)
- ``log_scales``     K×3 fixed-point codes over [log min_scale, log max_scale], the range the
  field clamps bandwidths to anyway
- ``log_amplitudes`` K fixed-point codes over ``amplitude_log_range`` (values outside are clamped)
- quantized:   ``codebook`` Q×D float16 and ``indices``: K indices packed in ceil(log2 Q) bits each
  (little-endian bit order within each index, ``numpy.packbits`` over the concatenation);
  warm-up (not quantized yet): ``features`` K×D float16, raw — the header says ``"features": "raw"``
- ``decoder.*``      the decoder's weights, float32 (a few hundred numbers; keeping them exact
  keeps the colours exact)
- ``occupancy``      the empty-space-skipping grid, one bit per cell, zlib-compressed

Fixed-point codes are packed like the indices. The header names each blob's bits and range, so a
file is read without the config that wrote it. The spatial index is not stored: the loader rebuilds
it from the kernels. Version 2 files (``AKDQFF02``, the same but for a plain JSON header) still load.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from akdqff_method.quantization import index_bits

MAGIC = b"AKDQFF03"
MAGIC_PLAIN_HEADER = b"AKDQFF02"  # version 2: the header is not compressed


@dataclass
class StoragePrecision:
    """Bits per stored kernel attribute. Training keeps full precision; the benchmark renders and
    measures the stored file, so whatever these cost in PSNR shows in the results."""

    center_bits: int = 16
    scale_bits: int = 10
    amplitude_bits: int = 10
    amplitude_log_range: Tuple[float, float] = (-8.0, 4.0)
    """exp(-8) ≈ 3e-4: below it a kernel contributes nothing visible; exp(4) ≈ 55 is never reached
    by the kernels the strategy keeps (splits halve amplitudes, features carry the scale)."""


def pack_indices(indices: np.ndarray, bits: int) -> bytes:
    """Pack non-negative integers < 2**bits into ``bits`` bits each."""
    indices = np.asarray(indices, dtype=np.int64)
    if bits == 0 or indices.size == 0:
        return b""
    if indices.min() < 0 or indices.max() >= (1 << bits):
        raise ValueError(f"indices do not fit in {bits} bits")
    bit_matrix = ((indices[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return np.packbits(bit_matrix.reshape(-1)).tobytes()


def unpack_indices(data: bytes, bits: int, count: int) -> np.ndarray:
    if bits == 0:
        return np.zeros(count, dtype=np.int64)
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits]
    return (flat.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)


def encode_fixed_point(values: torch.Tensor, bits: int, low: Sequence[float], high: Sequence[float]) -> Tuple[bytes, Dict]:
    """Uniform ``bits``-bit codes of ``values`` (last axis: one range per column), packed."""
    array = values.detach().cpu().double().numpy()
    low_array, high_array = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    levels = (1 << bits) - 1
    unit = (np.clip(array, low_array, high_array) - low_array) / (high_array - low_array)
    codes = np.rint(unit * levels).astype(np.int64)
    meta = {"encoding": "fixed", "bits": bits, "low": list(map(float, low)), "high": list(map(float, high)),
            "shape": list(array.shape)}
    return pack_indices(codes.reshape(-1), bits), meta


def decode_fixed_point(blob: bytes, entry: Dict, device) -> torch.Tensor:
    shape = entry["shape"]
    codes = unpack_indices(blob, entry["bits"], int(np.prod(shape))).reshape(shape)
    low, high = np.asarray(entry["low"]), np.asarray(entry["high"])
    values = low + codes / ((1 << entry["bits"]) - 1) * (high - low)
    return torch.from_numpy(values.astype(np.float32)).to(device)


def _array_blob(tensor: torch.Tensor, dtype: str) -> Tuple[bytes, Dict]:
    array = tensor.detach().cpu().numpy().astype(dtype)
    return array.tobytes(), {"dtype": dtype, "shape": list(array.shape)}


def write_representation(
    field, occupancy, path: Union[str, Path], precision: Optional[StoragePrecision] = None
) -> int:
    """Write ``field`` (an ``RBFKernelField``) and its occupancy grid to ``path``; return its size."""
    precision = precision or StoragePrecision()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = field.kernel_params
    blobs = []
    entries = []

    def add(name: str, data: bytes, meta: Dict) -> None:
        entries.append({"name": name, "nbytes": len(data), **meta})
        blobs.append(data)

    reach = field.support_cutoff * field.max_scale
    aabb = field.aabb.detach().cpu().double()
    add("centers", *encode_fixed_point(params["centers"], precision.center_bits, (aabb[0] - reach).tolist(), (aabb[1] + reach).tolist()))
    log_scale_range = (math.log(field.min_scale), math.log(field.max_scale))
    add("log_scales", *encode_fixed_point(params["log_scales"], precision.scale_bits, [log_scale_range[0]] * 3, [log_scale_range[1]] * 3))
    low, high = precision.amplitude_log_range
    add("log_amplitudes", *encode_fixed_point(params["log_amplitudes"][:, None], precision.amplitude_bits, [low], [high]))
    if field.quantized:
        bits = index_bits(field.codebook_size)
        add("codebook", *_array_blob(field.codebook, "float16"))
        assignments = field.codebook_assignments().cpu().numpy()
        add("indices", pack_indices(assignments, bits), {"bits": bits, "count": int(assignments.size)})
    else:
        add("features", *_array_blob(params["features"], "float16"))
    for name, tensor in field.decoder.state_dict().items():
        add(f"decoder.{name}", *_array_blob(tensor, "float32"))
    occupied = occupancy.occupied.detach().cpu().numpy().astype(bool)
    add("occupancy", zlib.compress(np.packbits(occupied).tobytes(), 9), {"cells": int(occupied.size)})

    header = {
        "format": "akdqff",
        "version": 3,
        "num_kernels": field.num_kernels,
        "feature_dim": field.feature_dim,
        "decoder_hidden_dim": field.decoder_hidden_dim,
        "sh_levels": field.sh_levels,
        "support_cutoff": field.support_cutoff,
        "min_scale": field.min_scale,
        "max_scale": field.max_scale,
        "aabb": field.aabb.cpu().tolist(),
        "occupancy_resolution": occupancy.resolution,
        "features": "quantized" if field.quantized else "raw",
        "codebook_size": field.codebook_size,
        "blobs": entries,
    }
    header_bytes = zlib.compress(json.dumps(header, separators=(",", ":")).encode("utf-8"), 9)
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)
    return path.stat().st_size


def read_representation(path: Union[str, Path]) -> Tuple[Dict, Dict[str, bytes]]:
    """The header and the raw blobs of an AKDQFF file."""
    data = Path(path).read_bytes()
    magic = data[: len(MAGIC)]
    if magic not in (MAGIC, MAGIC_PLAIN_HEADER):
        raise ValueError(f"{path}: not an AKDQFF file")
    (header_len,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    offset = len(MAGIC) + 4
    header_bytes = data[offset : offset + header_len]
    header = json.loads((zlib.decompress(header_bytes) if magic == MAGIC else header_bytes).decode("utf-8"))
    offset += header_len
    blobs = {}
    for entry in header["blobs"]:
        blobs[entry["name"]] = data[offset : offset + entry["nbytes"]]
        offset += entry["nbytes"]
    if offset != len(data):
        raise ValueError(f"{path}: {len(data) - offset} trailing bytes")
    return header, blobs


def _tensor(blob: bytes, entry: Dict, device) -> torch.Tensor:
    array = np.frombuffer(blob, dtype=entry["dtype"]).reshape(entry["shape"]).astype(np.float32)
    return torch.from_numpy(array.copy()).to(device)


@torch.no_grad()
def load_into(field, occupancy, path: Union[str, Path]) -> Dict:
    """Load a file written by :func:`write_representation` into a field of the same config.

    The kernel parameters are resized to the stored K; with a codebook the features become the
    codebook entries their indices name (so quantizing them again gives the same entries)."""
    header, blobs = read_representation(path)
    entries = {entry["name"]: entry for entry in header["blobs"]}
    device = field.aabb.device
    for key in ("feature_dim", "decoder_hidden_dim", "sh_levels"):
        if header[key] != getattr(field, key):
            raise ValueError(f"{path}: stored {key}={header[key]} but the model has {getattr(field, key)}")
    if header["occupancy_resolution"] != occupancy.resolution:
        raise ValueError(f"{path}: occupancy resolution {header['occupancy_resolution']} != {occupancy.resolution}")
    field.support_cutoff = header["support_cutoff"]
    field.min_scale, field.max_scale = header["min_scale"], header["max_scale"]
    num_kernels = header["num_kernels"]
    field.resize_kernels(num_kernels)
    for name in ("centers", "log_scales", "log_amplitudes"):
        values = decode_fixed_point(blobs[name], entries[name], device)
        field.kernel_params[name].data.copy_(values.reshape(field.kernel_params[name].shape))
    if header["features"] == "quantized":
        codebook = _tensor(blobs["codebook"], entries["codebook"], device)
        bits = entries["indices"]["bits"]
        indices = torch.from_numpy(unpack_indices(blobs["indices"], bits, num_kernels)).to(device)
        field.set_codebook(codebook)
        field.kernel_params["features"].data.copy_(codebook[indices])
    else:
        field.set_codebook(None)
        field.kernel_params["features"].data.copy_(_tensor(blobs["features"], entries["features"], device))
    decoder_state = {
        name[len("decoder.") :]: _tensor(blobs[name], entries[name], device) for name in entries if name.startswith("decoder.")
    }
    field.decoder.load_state_dict(decoder_state)
    cells = entries["occupancy"]["cells"]
    bits = np.unpackbits(np.frombuffer(zlib.decompress(blobs["occupancy"]), dtype=np.uint8))[:cells]
    occupancy.occupied = torch.from_numpy(bits.astype(bool)).to(device)
    # The transmittance estimate is a training-time device; a loaded model samples every occupied cell.
    occupancy.density = occupancy.occupied.float()
    occupancy.mean_density = torch.zeros_like(occupancy.density)
    field.rebuild_index()
    return header
