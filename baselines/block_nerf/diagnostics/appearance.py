"""Is Block-NeRF's test-time appearance code what sinks its ethiopian-head rows?

Block-NeRF learns one appearance code per training image (and per block). A test view has no
code of its own, so our evaluation gives it a fixed one per block: the mean of the block's
training-image codes (``BlockNeRFModel.test_appearance_codes``). If the codes drift apart while
they absorb each photograph's differences, their mean need not match any image: renders come out
too dark or too bright as a whole while the geometry is fine.

This loads a trained run from its nerfstudio checkpoint (the study keeps them under
``results/<profile>/nerfstudio/<run>/``, git-ignored) and renders every test view with

- ``mean``: the fixed codes the evaluation uses (this should reproduce the record's PSNR);
- ``nearest``: in each block, the code of the block's training image whose camera is nearest the
  test camera (an appearance the model has actually fitted, chosen without the test image);
- ``train k``: the codes of a few training images spread over the set, all blocks taking image k,
  to show how much the appearance alone moves a test view's PSNR.

It records each view's PSNR and the mean colour of each render beside the ground truth's, and
the spread of the codes. Nothing here changes the study's numbers; it is a diagnosis::

    .venv/bin/python -m baselines.block_nerf.diagnostics.appearance --run block-nerf__ethiopian-head__seed2

writes ``results/quick/diagnostics/<run>-appearance.json`` and ``.csv`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd
import torch

from bench_base import metrics
from bench_base.runs import checkpoint_config, run_record, scored_views
from bench_base.views import load_test_views, render_view

TRAINING_CODES_SHOWN = 6  # training images whose codes every test view is also rendered with


def _with_codes(model, codes: Optional[torch.Tensor]) -> None:
    """Render with ``codes`` (num_blocks, dim) in place of the evaluation's fixed codes; None restores them."""
    if codes is None:
        model._appearance_from_embeddings = True
        return
    model.fixed_appearance.copy_(codes)
    model._appearance_from_embeddings = False


def diagnose(results: Path, profile: str, run: str) -> Dict:
    from nerfstudio.utils.eval_utils import eval_setup

    config_path = checkpoint_config(results, profile, run)
    config, pipeline, _, step = eval_setup(config_path, test_mode="test")
    model = pipeline.model
    model.eval()
    views = load_test_views(config, scored_views(results, profile, run))  # the views the record scored
    train_positions = pipeline.datamanager.train_dataset.cameras.camera_to_worlds[:, :3, 3].to(model.device)
    owners = model.image_owners
    embeddings = torch.stack([embedding.weight.detach() for embedding in model.appearance_embeddings])  # (blocks, images, dim)
    mean_codes = model.test_appearance_codes().detach().clone()
    shown = np.linspace(0, len(train_positions) - 1, TRAINING_CODES_SHOWN).round().astype(int).tolist()

    rows: List[Dict] = []
    for index, target in enumerate(views.images):
        position = views.cameras.camera_to_worlds[index, :3, 3].to(model.device)
        distance = (train_positions - position).norm(dim=-1)
        nearest = []
        for block in range(embeddings.shape[0]):
            own = owners[:, block].nonzero().reshape(-1)
            nearest.append(int(own[distance[own].argmin()]) if own.numel() else int(distance.argmin()))
        choices = {"mean": mean_codes, "nearest": torch.stack([embeddings[b, nearest[b]] for b in range(len(nearest))])}
        choices.update({f"train {k}": embeddings[:, k] for k in shown})
        row: Dict = {"view": index, "file": Path(views.filenames[index]).name, "nearest_training_images": nearest,
                     "target_mean_rgb": [round(float(v), 4) for v in target.reshape(-1, 3).mean(0)]}
        for name, codes in choices.items():
            _with_codes(model, codes)
            pred = render_view(model, views.cameras, index)
            row[f"psnr {name}"] = metrics.psnr(pred, target)
            row[f"mean_rgb {name}"] = [round(float(v), 4) for v in pred.reshape(-1, 3).mean(0)]
        _with_codes(model, None)
        rows.append(row)
        print(f"view {index}: " + ", ".join(f"{k[5:]} {v:.2f}" for k, v in row.items() if k.startswith("psnr ")), flush=True)

    record = run_record(results, profile, run)
    norms = embeddings.norm(dim=-1)
    owned = owners.T  # (blocks, images)
    summary = {
        "run": run,
        "checkpoint_step": int(step),
        "record_psnr": record.get("psnr"),
        "psnr_by_code": {k[5:]: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.startswith("psnr ")},
        "code_norms_owned": {"mean": float(norms[owned].mean()), "max": float(norms[owned].max())},
        "mean_code_norm": float(mean_codes.norm(dim=-1).mean()),
        "training_codes_shown": shown,
        "views": rows,
    }
    return summary


def diagnostic_main(argv: Optional[List[str]], description: str, diagnose: Callable[[Path, str, str], Dict], suffix: str,
                    default_run: str, csv_rows: Callable[[Dict], List[Dict]]) -> int:
    """The command line of a Block-NeRF diagnosis (this one and ``block_nerf_blocks``): diagnose
    ``--run``, write ``<results>/<profile>/diagnostics/<run>-<suffix>.json`` (everything) and
    ``.csv`` (``csv_rows`` of it), print the summary without the per-view rows."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=default_run)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    summary = diagnose(args.results, args.profile, args.run)
    out = args.results / args.profile / "diagnostics"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.run}-{suffix}.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    pd.DataFrame(csv_rows(summary)).round(3).to_csv(out / f"{args.run}-{suffix}.csv", index=False)
    print(json.dumps({k: v for k, v in summary.items() if k != "views"}, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return diagnostic_main(argv, __doc__, diagnose, "appearance", "block-nerf__ethiopian-head__seed2",
                           lambda summary: [{k: v for k, v in r.items() if k.startswith(("view", "file", "psnr"))} for r in summary["views"]])


if __name__ == "__main__":
    raise SystemExit(main())
