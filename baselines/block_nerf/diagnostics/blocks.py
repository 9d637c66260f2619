"""Do Block-NeRF's bad ethiopian-head views come from its blocks or from how it picks and blends them?

A test view is rendered by the blocks whose radius holds its camera, minus those whose visibility
network says they see little of it, blended with inverse-distance weights
(``BlockNeRFModel.get_outputs_for_camera_ray_bundle``). Each block trained only on the images
whose camera lies within its radius. A view can then go wrong in two ways: every block renders it
badly (what the blocks learned), or one block renders it well and the choice or the weights
spoil it (the layout).

This loads a trained run from its nerfstudio checkpoint, as ``block_nerf_appearance`` does, and
renders every test view

- ``evaluation``: as the evaluation does (this should reproduce the record's PSNR);
- ``block b``: by block ``b`` alone, with its fixed test appearance code, for every block.

and records, per view, the blocks the evaluation kept, their blending weights and visibility, and
the camera's distance to each block's centre in units of that block's radius (above 1: outside
the block, rendered from a region none of its training cameras stood in). A diagnosis; nothing
here changes the study's numbers::

    .venv/bin/python -m baselines.block_nerf.diagnostics.blocks --run block-nerf__ethiopian-head__seed1

writes ``results/quick/diagnostics/<run>-blocks.json`` and ``.csv`` (a few minutes on 2 cores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from bench_base import metrics
from baselines.block_nerf.diagnostics.appearance import diagnostic_main
from bench_base.runs import checkpoint_config
from bench_base.runs import run_record, scored_views
from bench_base.views import load_test_views, render_view


def _render_with_block(model, cameras, index: int, block: int) -> torch.Tensor:
    """The view rendered by ``block`` alone (every ray takes it, with weight one), whatever blocks
    the view's camera would pick (``BlockNeRFModel.only_blocks``)."""
    with model.only_blocks(torch.nn.functional.one_hot(torch.tensor(block), model.config.num_blocks)):
        return render_view(model, cameras, index)


def _evaluation_choice(model, cameras, index: int) -> Dict:
    """Which blocks the evaluation renders the view with, and with what weights (the model's own steps)."""
    from baselines.block_nerf.layout import filter_by_visibility, inverse_distance_weights, select_blocks

    camera = cameras[index : index + 1].to(model.device)
    bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
    position = bundle.origins.reshape(-1, 3).mean(dim=0, keepdim=True)
    candidates = select_blocks(position, model.block_centers, model.block_radii)[0]
    visibility = model.view_visibility(bundle, candidates)
    kept = filter_by_visibility(visibility, candidates, model.config.visibility_threshold)
    weights = inverse_distance_weights(position, model.block_centers, kept[None, :], model.config.idw_power)[0]
    distance = (position - model.block_centers).norm(dim=-1) / model.block_radii
    return {"candidates": candidates.nonzero().reshape(-1).tolist(), "kept": kept.nonzero().reshape(-1).tolist(),
            "visibility": [round(float(v), 4) for v in visibility], "blend_weights": [round(float(w), 4) for w in weights],
            "distance_over_radius": [round(float(d), 3) for d in distance]}


def diagnose(results: Path, profile: str, run: str) -> Dict:
    from nerfstudio.utils.eval_utils import eval_setup

    config, pipeline, _, step = eval_setup(checkpoint_config(results, profile, run), test_mode="test")
    model = pipeline.model
    model.eval()
    views = load_test_views(config, scored_views(results, profile, run))  # the views the record scored
    blocks = int(model.config.num_blocks)
    rows: List[Dict] = []
    for index, target in enumerate(views.images):
        with torch.no_grad():
            row: Dict = {"view": index, "file": Path(views.filenames[index]).name, **_evaluation_choice(model, views.cameras, index)}
        row["psnr evaluation"] = metrics.psnr(render_view(model, views.cameras, index), target)
        for block in range(blocks):
            row[f"psnr block {block}"] = metrics.psnr(_render_with_block(model, views.cameras, index, block), target)
        rows.append(row)
        print(f"view {index}: " + ", ".join(f"{k[5:]} {v:.2f}" for k, v in row.items() if k.startswith("psnr ")) +
              f"; kept {row['kept']}, weights {row['blend_weights']}, distance/radius {row['distance_over_radius']}", flush=True)
    record = run_record(results, profile, run)
    best_single = [max(r[f"psnr block {b}"] for b in range(blocks)) for r in rows]
    return {
        "run": run,
        "checkpoint_step": int(step),
        "record_psnr": record.get("psnr"),
        "training_images_per_block": model.image_owners.sum(dim=0).tolist(),
        "psnr": {"evaluation": float(np.mean([r["psnr evaluation"] for r in rows])),
                 **{f"block {b}": float(np.mean([r[f"psnr block {b}"] for r in rows])) for b in range(blocks)},
                 "best single block per view (chosen with the ground truth: a bound, not a method)": float(np.mean(best_single))},
        "views": rows,
    }


def main(argv: Optional[List[str]] = None) -> int:
    return diagnostic_main(argv, __doc__, diagnose, "blocks", "block-nerf__ethiopian-head__seed1", lambda summary: summary["views"])


if __name__ == "__main__":
    raise SystemExit(main())
