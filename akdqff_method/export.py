"""The compact AKDQFF file: everything rendering needs, nothing else.

Layout: ``b"AKDQFF01"``, a little-endian uint32 header length, a UTF-8 JSON header (sizes, dtypes,
settings the decoder needs), then the blobs the header lists, in order:

- ``centers``        K×3 float16
- ``log_scales``     K×3 float16 (per-axis bandwidths, log)
- ``log_amplitudes`` K   float16
- quantized:   ``codebook`` Q×D float16 and ``indices``: K indices packed in ceil(log2 Q) bits each
  (little-endian bit order within each index, ``numpy.packbits`` over the concatenation);
  warm-up (not quantized yet): ``features`` K×D float16, raw — the header says ``"features": "raw"``
- ``decoder.*``      the decoder's weights, float32 (a few hundred numbers; keeping them exact
  keeps the colours exact)
- ``occupancy``      the empty-space-skipping grid, one bit per cell, zlib-compressed

The spatial index is not stored: the loader rebuilds it from the kernels.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np
import torch

from akdqff_method.quantization import index_bits

MAGIC = b"AKDQFF01"


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


def _array_blob(tensor: torch.Tensor, dtype: str) -> Tuple[bytes, Dict]:
    array = tensor.detach().cpu().numpy().astype(dtype)
    return array.tobytes(), {"dtype": dtype, "shape": list(array.shape)}


def write_representation(field, occupancy, path: Union[str, Path]) -> int:
    """Write ``field`` (an ``RBFKernelField``) and its occupancy grid to ``path``; return its size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = field.kernel_params
    blobs = []
    entries = []

    def add(name: str, data: bytes, meta: Dict) -> None:
        entries.append({"name": name, "nbytes": len(data), **meta})
        blobs.append(data)

    for name in ("centers", "log_scales", "log_amplitudes"):
        add(name, *_array_blob(params[name], "float16"))
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
        "version": 1,
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
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
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
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError(f"{path}: not an AKDQFF file")
    (header_len,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    offset = len(MAGIC) + 4
    header = json.loads(data[offset : offset + header_len].decode("utf-8"))
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
        field.kernel_params[name].data.copy_(_tensor(blobs[name], entries[name], device))
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
