"""The comparison's derived numbers: mean time per iteration and AKDQFF's targets against NeRF."""

import math

from akdqff_bench import report


def _record(method, scene="bed", **values):
    record = {"method": method, "dataset": "synthetic-bed", "scene": scene, "seed": 0, "status": "ok", "psnr": 25.0, "ssim": 0.9,
              "model_size_bytes": 100_000, "s_per_iter": 0.2, "train_seconds": 240.0, "iterations": 1000,
              "peak_memory_bytes": 10**9}
    record.update(values)
    return record


def _targets_by_quantity(records):
    table = report.akdqff_targets(records)
    return {row["quantity"]: row for _, row in table.iterrows()}


def test_mean_time_per_iteration_counts_the_whole_training_time():
    assert report.mean_s_per_iter(_record("akdqff", train_seconds=240.0, iterations=8000)) == 0.03
    assert math.isnan(report.mean_s_per_iter(_record("akdqff", status="skipped")))
    assert math.isnan(report.mean_s_per_iter(_record("akdqff", iterations=0)))
    table = report.comparison_table([_record("nerf", train_seconds=200.0, iterations=1000)])
    assert table["Mean s/iter"].tolist() == [0.2]


def test_targets_met_and_missed_are_read_from_the_records():
    nerf = _record("nerf", s_per_iter=0.2, train_seconds=240.0, iterations=1200, psnr=24.0, ssim=0.84, model_size_bytes=100_000)
    # Median 1/25 of NeRF's (met), mean 1/8 (missed); better PSNR, worse SSIM; size exactly 1/5.
    akdqff = _record("akdqff", s_per_iter=0.008, train_seconds=240.0, iterations=9600, psnr=27.0, ssim=0.80,
                     model_size_bytes=20_000)
    rows = _targets_by_quantity([nerf, akdqff])
    assert rows["update speed, median s/iter"]["met"]
    assert abs(rows["update speed, median s/iter"]["limit"] - 0.01) < 1e-12
    assert not rows["update speed, mean s/iter (periodic work included)"]["met"]
    assert rows["PSNR (dB)"]["met"] and not rows["SSIM"]["met"]
    assert rows["stored model (bytes)"]["met"]  # at the limit counts as met ("at most")
    assert rows["stored model (bytes)"]["AKDQFF / NeRF"] == 0.2


def test_targets_need_both_rows_on_the_same_scene():
    assert report.akdqff_targets([_record("akdqff")]).empty
    assert report.akdqff_targets([_record("akdqff", scene="bed"), _record("nerf", scene="truck")]).empty
    assert report.akdqff_targets([_record("akdqff"), _record("nerf", status="failed")]).empty
    assert report.akdqff_targets([_record("akdqff", seed=1), _record("nerf", seed=0)]).empty
    both = report.akdqff_targets([_record("akdqff"), _record("nerf"), _record("akdqff", "truck"), _record("nerf", "truck")])
    assert sorted(set(both["scene"])) == ["bed", "truck"]
