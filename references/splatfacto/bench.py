"""nerfstudio's splatfacto (3D Gaussian splatting): declared, runnable only on CUDA."""

from bench_base.spec import BenchSpec

spec = BenchSpec(
    method="splatfacto",
    label="splatfacto (3DGS)",
    color="tab:orange",
    rank=10,
    # The full profile (GPU) runs it at nerfstudio's own settings; the CPU profiles cannot.
    grids=("full",),
    devices=("cuda",),
    device_reason="its rasteriser is gsplat's CUDA kernel, which has no CPU path",
    description="nerfstudio's Gaussian splatting",
    role="reference",
)
