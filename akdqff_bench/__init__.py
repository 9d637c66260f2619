"""akdqff-bench harness: datasets, profiles, one-run runner, grid, results and report."""

__version__ = "0.1.0"

import os
import sys

# Before torch loads (OpenMP reads this once, at start-up; worker and notebook processes inherit
# it): waiting OpenMP threads sleep instead of spinning. Spinning is CPU time without progress, and
# the quick profile's budget is CPU time: beside a competing load, quick NeRF spent 1.29 CPU-s per
# iteration spinning against 0.35 passive (0.38 vs 0.36 quiet), at 8-12% more wall time per
# iteration on a quiet machine. An explicit OMP_WAIT_POLICY is respected; records name the policy,
# so it is left alone where torch is already loaded and setting it would change nothing.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from akdqff_bench.checkpoints import allow_numpy_scalars_in_checkpoints  # noqa: E402

# Every method plugin imports this package, and ns-eval / ns-render import every plugin at start:
# so their checkpoint loads (torch.load, weights_only) accept our checkpoints.
allow_numpy_scalars_in_checkpoints()
