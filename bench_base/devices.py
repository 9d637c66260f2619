"""The device a method trains on when nobody says: CUDA where torch sees a GPU, else the CPU.

nerfstudio's ``MachineConfig`` defaults to CUDA, so ``ns-train METHOD ...`` on a CPU-only machine
ends in torch's "Found no NVIDIA driver" traceback. Every method config of this repository takes its
``machine`` from :func:`default_machine` instead. The configs are built when their module is
imported, so the choice is made then (a test reloads the module to check both answers).
The config also lets ``--machine.num-devices N`` start N processes on the CPU
(:mod:`bench_base.distributed`).
"""

from __future__ import annotations

import torch

from bench_base.distributed import CPUCapableMachineConfig


def default_device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_machine() -> CPUCapableMachineConfig:
    return CPUCapableMachineConfig(device_type=default_device_type())
