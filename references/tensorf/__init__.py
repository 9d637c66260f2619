"""nerfstudio's TensoRF (pure torch, runs on a CPU): a reference method, its code nerfstudio's."""
