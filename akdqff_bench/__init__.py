"""akdqff-bench harness: datasets, profiles, one-run runner, grid, results and report."""

__version__ = "0.1.0"

from akdqff_bench.checkpoints import allow_numpy_scalars_in_checkpoints

# Every method plugin imports this package, and ns-eval / ns-render import every plugin at start:
# so their checkpoint loads (torch.load, weights_only) accept our checkpoints.
allow_numpy_scalars_in_checkpoints()
