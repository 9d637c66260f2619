"""A reproduction that holds on another machine: runs trained for their reference runs' iterations,
a speed probe in every record, flags by a prediction interval, and a one-seed page that shows the
reference study's verdict with the user's values beside it."""

from __future__ import annotations

import json
import math

import pytest
import torch

from akdqff_bench import cli, grid, records, report, runner, speed_probe
from akdqff_bench.request import RunRequest, stale_because

pytestmark = pytest.mark.filterwarnings("ignore")


def _reference(request: RunRequest, seed: int, iterations: int, **changes):
    record = {"run_id": records.run_id(request.method, request.scene, seed, request.capacity), "method": request.method,
              "dataset": "synthetic-bed", "scene": "bed", "profile": request.profile.name, "seed": seed, "status": "ok",
              "overrides": json.loads(json.dumps(request.overrides())), "rays_per_batch": request.profile.rays_per_batch,
              "iterations": iterations, "psnr": 20.0}
    record.update(changes)
    return record


def test_a_reproduction_trains_for_the_median_iterations_of_its_reference_runs_with_the_same_settings(tmp_path):
    nerf, plenoxels, block = (RunRequest(m, "synthetic-bed", "quick", 0) for m in ("nerf", "plenoxels", "block-nerf"))
    for seed, iterations in enumerate((812, 790, 845)):
        records.write_record(records.record_path(tmp_path, "quick", "nerf", "synthetic-bed", seed), _reference(nerf, seed, iterations))
    other = _reference(plenoxels, 0, 500)
    other["overrides"]["pipeline.model.weight_window"] = 99  # made with other settings: not the run this one reproduces
    records.write_record(records.record_path(tmp_path, "quick", "plenoxels", "synthetic-bed", 0), other)

    (nerf_run, plenoxels_run, block_run), kept = grid.reproducing_reference([nerf, plenoxels, block], tmp_path)
    assert nerf_run.profile.max_iterations == 812 and nerf_run.profile.train_budget_seconds is None  # the median of 790, 812, 845
    assert nerf_run.iterations_from_reference == {"reference": str(tmp_path), "seeds": [0, 1, 2], "iterations": [812, 790, 845], "median": 812}
    assert nerf_run.record_path(tmp_path) == nerf.record_path(tmp_path)  # the same run, only its stopping rule differs
    assert plenoxels_run == plenoxels and block_run == block  # they keep the profile's CPU budget, and say why
    assert [why for _, why in kept] == ["plenoxels__synthetic-bed__seed0 (its reference runs had other settings)",
                                        "block-nerf__synthetic-bed__seed0 (no reference run)"]
    assert RunRequest.from_json(nerf_run.to_json()) == nerf_run  # as the notebook and a Ray task get it
    # A record of the budgeted run is stale against the reproduction: it did other work.
    budgeted = {**_reference(nerf, 0, 812), "train_budget_seconds": nerf.profile.train_budget_seconds, "max_iterations": None, "budget_clock": "cpu"}
    assert "max_iterations: None -> 812" in stale_because(nerf_run, budgeted)


def test_a_reproduced_run_records_its_iterations_source_and_the_machines_speed(tmp_path, tiny_data_root, no_lpips_weights):
    request = RunRequest("plenoxels", "synthetic-bed", "smoke", 0).reproducing([0, 1, 2], [3, 5, 4], "results")
    result = runner.run_one(request, tmp_path)
    record = result.record
    assert record["status"] == "ok" and record["iterations"] == 4 and record["max_iterations"] == 4
    assert record["iterations_from_reference"] == {"reference": "results", "seeds": [0, 1, 2], "iterations": [3, 5, 4], "median": 4}
    probe = record["speed_probe"]
    assert probe["version"] == speed_probe.PROBE_VERSION and probe["device"] == "cpu" and probe["wall_seconds"] > 0
    assert speed_probe.probe_seconds(record) == probe["cpu_seconds"] > 0


def test_the_speed_probe_leaves_the_runs_random_stream_as_it_was():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    probe = speed_probe.measure_speed("cpu")
    assert torch.equal(torch.rand(3), expected)
    assert probe["threads"] == torch.get_num_threads() and probe["cpu_seconds"] > 0
    assert speed_probe.probe_seconds({"speed_probe": {**probe, "version": speed_probe.PROBE_VERSION + 1}}) is None  # another workload
    assert speed_probe.probe_seconds({}) is None  # a record from before the probe


def test_reproduce_without_a_reference_is_refused_in_one_line(capsys):
    assert cli.main(["grid", "--profile", "smoke", "--reproduce"]) == 2
    assert "--reproduce trains each run for its reference runs' iterations: it needs --reference FOLDER" in capsys.readouterr().err


def _record(method, seed=0, device="cpu:A", **values):
    return {"status": "ok", "method": method, "dataset": "synthetic-bed", "scene": "bed", "capacity": "default", "seed": seed,
            "device": device, **values}


def test_the_flag_is_the_reference_prediction_interval_stated_in_the_caption():
    reference = [_record("nerf", s, psnr=p, s_per_iter=0.5, model_size_bytes=1000) for s, p in enumerate((24.0, 25.0, 26.0))]
    # t(0.975, 2) = 4.303: the interval for one new run is 25 ± 4.303 · 1 · sqrt(1 + 1/3) = [20.03, 29.97]
    inside = report.reproduction_comparison([_record("nerf", psnr=26.5, s_per_iter=0.5, model_size_bytes=1000)], reference)
    psnr = inside.set_index("quantity").loc["psnr"]
    assert psnr["interval_low"] == pytest.approx(25 - 4.302653 * math.sqrt(4 / 3), abs=1e-4)
    assert psnr["outside_prediction_interval"] == False  # noqa: E712 (outside the seeds' min-max, inside what a fourth seed may do)
    outside = report.reproduction_comparison([_record("nerf", psnr=30.5, s_per_iter=0.5, model_size_bytes=1000)], reference)
    assert outside.set_index("quantity").loc["psnr", "outside_prediction_interval"] == True  # noqa: E712
    # Two seeds of yours: the interval of their mean is narrower, sqrt(1/3 + 1/2).
    two = report.reproduction_comparison([_record("nerf", s, psnr=29.0) for s in (0, 1)], reference).set_index("quantity").loc["psnr"]
    assert two["interval_high"] == pytest.approx(25 + 4.302653 * math.sqrt(1 / 3 + 1 / 2), abs=1e-4) and two["outside_prediction_interval"] == True  # noqa: E712
    html = report.styled_reproduction(outside).to_html()
    assert "prediction interval" in html and "t(0.975, n − 1)" in html and "20.03 – 29.97" in html


def test_timings_from_another_machine_and_one_seed_references_are_not_judged():
    reference = [_record("nerf", s, psnr=25.0 + s, s_per_iter=0.5 + s / 100) for s in range(3)] + [_record("akdqff", psnr=20.0)]
    yours = [_record("nerf", psnr=25.0, s_per_iter=9.0, device="cpu:B"), _record("akdqff", psnr=19.0, device="cpu:B")]
    table = report.reproduction_comparison(yours, reference).set_index(["method", "quantity"])
    assert table.loc[("nerf", "s_per_iter"), "outside_prediction_interval"] is None
    assert table.loc[("nerf", "s_per_iter"), "not_judged_because"] == "timing on another machine"
    assert table.loc[("nerf", "psnr"), "outside_prediction_interval"] is False  # quality is judged on any machine (object column: None beside it)
    assert table.loc[("akdqff", "psnr"), "not_judged_because"] == "1 reference seed: no spread"
    judged, flagged = report.reproduction_counts(table.reset_index())
    assert len(judged) == 1 and flagged.empty


def test_the_machines_table_gives_each_machines_probe_and_per_iteration_cost_over_the_references():
    probe = lambda seconds: {"version": speed_probe.PROBE_VERSION, "device": "cpu", "cpu_seconds": seconds, "wall_seconds": seconds}  # noqa: E731
    reference = [_record("nerf", s, speed_probe=probe(1.0), cpu_s_per_iter=0.40) for s in range(3)]
    reference += [_record("plenoxels", s, cpu_s_per_iter=0.10) for s in range(3)]  # from before the probe
    yours = [_record("nerf", device="cpu:B", speed_probe=probe(1.3), cpu_s_per_iter=0.52), _record("plenoxels", device="cpu:B", cpu_s_per_iter=0.14)]
    table = report.machine_speeds(yours, reference).set_index("side")
    assert table.loc["reference", "probe_ratio"] == pytest.approx(1.0) and table.loc["reference", "probes"] == 3
    assert table.loc["yours", "probe_ratio"] == pytest.approx(1.3) and table.loc["yours", "device"] == "cpu:B"
    assert table.loc["yours", "cpu_per_iteration_ratio"] == pytest.approx((1.3 + 1.4) / 2) and table.loc["yours", "pairs"] == 2
    html = report.styled_machine_speeds(report.machine_speeds(yours, reference)).to_html()
    assert "1.30×" in html and "speed probe" in html


def test_a_one_seed_page_shows_the_reference_studys_verdict_with_your_values_beside_it():
    methods = ("akdqff", "nerf", "plenoxels", "block-nerf")
    reference = [_record(m, s, psnr=20.0 + i + s / 10, ssim=0.5, model_size_bytes=1000 * (i + 1), s_per_iter=0.1 * (i + 1),
                         train_seconds=10.0, iterations=100) for i, m in enumerate(methods) for s in range(3)]
    yours = [_record(m, psnr=21.0 + i, ssim=0.5, model_size_bytes=1000, s_per_iter=0.1, train_seconds=10.0, iterations=100)
             for i, m in enumerate(methods)]
    own = report.claims_verdict(yours)
    assert set(own["Verdict"]) == {report.NOT_MEASURABLE} and not report.judged_by_own_seeds(yours)
    beside = report.verdict_beside_reference(yours, reference)
    assert list(beside["Verdict"]) == list(report.claims_verdict(reference)["Verdict"])  # the reference's verdicts
    psnr_row = beside.set_index("Claim").loc["PSNR ranking of the four"]
    assert "(n=3)" in psnr_row["Reference study"] and "(n=1)" in psnr_row["Yours"]
    html = report.styled_verdict(yours, reference).to_html()
    assert "the reference study's" in html and "Yours" in html
    # With seeds enough of its own, a page judges by them, reference or not.
    assert "Reference study" not in report.styled_verdict(reference, yours).to_html()


def test_the_page_says_a_reproduction_stopped_at_its_references_iterations_not_at_the_budget():
    reproduced = [_record(m, iterations_from_reference={"seeds": [0, 1, 2]}, max_iterations=n, train_budget_seconds=None, rays_per_batch=1024)
                  for m, n in (("nerf", 925), ("akdqff", 5343))]
    skipped = {"status": "skipped", "method": "nerf", "dataset": "tanks-temples", "scene": "truck", "train_budget_seconds": 353,
               "budget_clock": "cpu", "rays_per_batch": 1024}
    summary = report.study_summary(reproduced + [skipped], "quick")
    assert "stopping rule: the median iteration count of its reference seeds for 2 of 2 runs (a reproduction: 925–5,343 iterations);" in summary
    assert "CPU-s" not in summary  # the skipped run's budget is not what the others ran with
