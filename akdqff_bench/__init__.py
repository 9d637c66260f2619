"""akdqff-bench harness: scenes, profiles, one run, the grid, records and the comparison.

It names no method: methods are nerfstudio methods found by name, described by the bench specs
their folders register (``bench_base.spec``).
"""

__version__ = "0.1.0"

import bench_base  # noqa: F401  (before torch: the OpenMP wait policy, the checkpoint loader)
