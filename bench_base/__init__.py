"""What every benchmarked method stands on, importing neither the harness nor any method.

- :mod:`bench_base.spec`: the bench spec a method's folder declares (label, settings per profile and
  kind of scene, sweeps, capacity points, its paper's claims, its own evidence).
- :mod:`bench_base.representation`: the stored model (export and load hooks and their defaults).
- :mod:`bench_base.devices`, :mod:`bench_base.distributed`: the device choice and the CPU-capable
  multi-process pipeline.
- :mod:`bench_base.lpips`: LPIPS built only where its weights are on disk (offline-safe).
- :mod:`bench_base.views`, :mod:`bench_base.metrics`: test views, rendering one, PSNR and SSIM.

Importing this package sets two process-wide things before torch loads, for every method plugin
and the harness alike (ns-train, ns-eval and ns-render import every plugin at start):
"""

import os
import sys

# Waiting OpenMP threads sleep instead of spinning (OpenMP reads this once, at start-up; worker
# and notebook processes inherit it). Spinning is CPU time without progress, and the quick
# profile's budget is CPU time (results/quick/contention/ measures the difference). An explicit
# OMP_WAIT_POLICY is respected; records name the policy, so it is left alone where torch is
# already loaded and setting it would change nothing.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_base.checkpoints import allow_numpy_scalars_in_checkpoints  # noqa: E402

# nerfstudio's checkpoint loads (torch.load, weights_only) then accept our methods' checkpoints.
allow_numpy_scalars_in_checkpoints()
