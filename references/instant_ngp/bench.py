"""nerfstudio's instant-ngp: declared, runnable only on CUDA."""

from bench_base.spec import BenchSpec

spec = BenchSpec(
    method="instant-ngp",
    label="Instant-NGP",
    color="tab:olive",
    rank=11,
    # The full profile (GPU) runs it at nerfstudio's own settings; the CPU profiles cannot.
    grids=("full",),
    devices=("cuda",),
    device_reason="its ray marching is nerfacc's CUDA occupancy-grid traversal, which has no CPU path",
    description="nerfstudio's Instant-NGP (hash grid + nerfacc)",
    role="reference",
)
