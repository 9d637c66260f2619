"""The stored Plenoxels model: the file the evaluation renders from (its size is model_size_bytes).

Layout (little-endian, no compression, no optimizer state):

    b"PLNX1\\n" | uint32 header length | JSON header | index structure | density | sh

- the header holds the resolution, the box, the parameter count and which index structure follows;
- the index structure is whichever is smaller for this grid: the occupancy bitmask
  (``R^3 / 8`` bytes, numpy ``packbits`` of the linear-order occupancy) or the sorted int32
  linear indices of the occupied vertices (``4 N`` bytes);
- ``density``: float32 ``N``; ``sh``: float32 ``N x 27``, both in linear vertex order, which is
  the compact order the grid keeps, so the index grid is rebuilt with a cumulative sum.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from baselines.plenoxels.grid import SH_CHANNELS, SparseVoxelGrid

MAGIC = b"PLNX1\n"


def export_grid(grid: SparseVoxelGrid, path: Path) -> int:
    """Write ``grid`` to ``path``; returns the file size in bytes."""
    resolution, count = grid.resolution, grid.num_occupied
    occupancy = grid.occupancy().reshape(-1).cpu().numpy()
    bitmask_bytes = (resolution**3 + 7) // 8
    if 4 * count < bitmask_bytes:
        index_kind, index_blob = "indices", np.flatnonzero(occupancy).astype("<i4").tobytes()
    else:
        index_kind, index_blob = "bitmask", np.packbits(occupancy).tobytes()
    header = json.dumps(
        {
            "resolution": resolution,
            "count": count,
            "aabb": grid.aabb.cpu().tolist(),
            "index": index_kind,
            "sh_channels": SH_CHANNELS,
        }
    ).encode()
    density = grid.density.detach().cpu().numpy().astype("<f4").reshape(-1)
    sh = grid.sh.detach().cpu().numpy().astype("<f4").reshape(-1)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(header)))
        f.write(header)
        f.write(index_blob)
        f.write(density.tobytes())
        f.write(sh.tobytes())
    return path.stat().st_size


def read_grid(path: Path) -> Dict:
    """Parse a stored grid into numpy arrays (occupancy as a flat bool array)."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path}: not a stored Plenoxels grid")
    offset = len(MAGIC)
    (header_len,) = struct.unpack_from("<I", data, offset)
    offset += 4
    header = json.loads(data[offset : offset + header_len])
    offset += header_len
    resolution, count = header["resolution"], header["count"]
    if header["index"] == "indices":
        ids = np.frombuffer(data, dtype="<i4", count=count, offset=offset)
        offset += 4 * count
        occupancy = np.zeros(resolution**3, dtype=bool)
        occupancy[ids] = True
    else:
        nbytes = (resolution**3 + 7) // 8
        occupancy = np.unpackbits(np.frombuffer(data, dtype=np.uint8, count=nbytes, offset=offset))[: resolution**3].astype(bool)
        offset += nbytes
    density = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
    offset += 4 * count
    sh = np.frombuffer(data, dtype="<f4", count=count * SH_CHANNELS, offset=offset).reshape(count, SH_CHANNELS)
    offset += 4 * count * SH_CHANNELS
    if offset != len(data) or int(occupancy.sum()) != count:
        raise ValueError(f"{path}: truncated or inconsistent stored grid")
    return {"header": header, "occupancy": occupancy, "density": density, "sh": sh}


def load_grid(grid: SparseVoxelGrid, path: Path) -> None:
    """Load a stored grid into ``grid`` (any current size: the grid is rebuilt to the file's)."""
    stored = read_grid(path)
    resolution = stored["header"]["resolution"]
    device = grid.aabb.device
    grid.aabb.copy_(torch.tensor(stored["header"]["aabb"], device=device))
    occupancy = torch.from_numpy(stored["occupancy"].copy()).view((resolution,) * 3)
    grid.set_grid(occupancy, torch.from_numpy(stored["density"].copy()), torch.from_numpy(stored["sh"].copy()))
