"""benchmarks/step_profile.py: how a step's time is split into parts, and a short run end to end."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "step_profile.py"


def load_script():
    spec = importlib.util.spec_from_file_location("step_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Event:
    name: str
    cpu_time_total: float  # microseconds, inclusive, as torch.profiler's FunctionEvent
    cpu_children: List["Event"] = field(default_factory=list)
    cpu_parent: Optional["Event"] = None


def tree(name, total, *children):
    event = Event(name, total, list(children))
    for child in children:
        child.cpu_parent = event
    return event


def test_the_innermost_label_takes_the_time_except_inside_the_density_probe():
    script = load_script()
    events = [
        tree("sampling", 3000, tree("aten::linspace", 1000)),
        # The probe keeps the index lookup and kernel evaluation it runs inside it.
        tree("density probe", 5000, tree("index lookup", 2000), tree("kernel evaluation", 2500)),
        tree("kernel evaluation", 9000, tree("quantization", 1500), tree("aten::mul", 4000)),
        tree("index lookup", 1000),
        tree("aten::add", 700),  # outside every label: "other", left to the caller
    ]
    flat = [e for root in events for e in (root, *root.cpu_children, *[g for c in root.cpu_children for g in c.cpu_children])]
    parts = script.part_milliseconds(flat)
    assert parts == pytest.approx({"sampling": 3.0, "density probe": 5.0, "kernel evaluation": 7.5, "quantization": 1.5,
                                   "index lookup": 1.0})


def test_a_short_profile_writes_every_part_and_a_figure(tiny_data_root, tmp_path, no_lpips_weights):
    import pandas as pd

    script = load_script()
    out = tmp_path / "profile.csv"
    common = ["--scenes", "synthetic-bed", "--start", "3", "--window", "3", "--out", str(out)]
    assert script.main(common) == 0
    assert script.main(common + ["--variant", "uniform", "--set", "pipeline.model.sampler=uniform"]) == 0
    frame = pd.read_csv(out)
    assert set(frame["variant"]) == {"quick settings", "uniform"}  # the second run added its rows
    for variant, rows in frame.groupby("variant"):
        assert list(rows["part"]) == list(script.PARTS) + ["other"]
        # The parts add up to the profiled iteration, and the labelled work is most of it.
        assert rows["ms_per_iteration"].sum() == pytest.approx(1000 * rows["profiled_s_per_iter"].iloc[0], rel=1e-6)
        assert rows.set_index("part").loc[["kernel evaluation", "decoder", "backward"], "ms_per_iteration"].min() > 0
    # The quick settings resample from a density pass; the uniform sampler has none.
    probe = frame[frame["variant"] == "quick settings"].set_index("part")["ms_per_iteration"]
    assert probe["density probe"] > 0
    assert frame[frame["variant"] == "uniform"].set_index("part").loc["density probe", "ms_per_iteration"] == 0
    assert out.with_suffix(".png").stat().st_size > 0
