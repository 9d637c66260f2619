"""Make a downscaled copy of a scene's image folder, the way nerfstudio and LLFF name them.

    python -m akdqff_bench.datasets.downscale data/ethiopian-head --source images_8 --factor 4 --target images_32
    python -m akdqff_bench.datasets.downscale PATH --factor 4          # PATH/images -> PATH/images_4
    python -m akdqff_bench.datasets.downscale PATH --blender --factor 8  # a Blender scene -> PATH/quick

A Blender scene's quick copy (``--blender``) is a Blender scene of its own: the three
``transforms_*.json`` (``camera_angle_x`` is an angle, so it holds at any size) and every frame's
image at 1/factor, with every ``--test-every``-th view of the test split (all of train and val), and
``quick.json`` saying how it was made.

Each image is resized to ``floor(W / factor) x floor(H / factor)`` (the size nerfstudio's readers
assume for ``downscale_factor``) with PIL's Lanczos filter, which is deterministic for a given
Pillow version. PNG input stays PNG (masks stay single-channel); JPEG input is written as JPEG at
quality 95, 4:4:4 chroma (a lossless format would triple the committed size of a photo set).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

from PIL import Image

from akdqff_bench.datasets.validate import BLENDER_SPLITS, DatasetError, image_files, load_json, validate_frames

JPEG_QUALITY = 95


def downscaled_size(size: tuple, factor: int) -> tuple:
    return max(1, size[0] // factor), max(1, size[1] // factor)


def _resized(path: Path, factor: int) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        # Pillow resamples RGBA premultiplied: a transparent pixel's colour does not bleed into the edge.
        return image.resize(downscaled_size(image.size, factor), Image.Resampling.LANCZOS)


def downscale_blender(scene: Path, factor: int, test_every: int, target: Optional[Path] = None) -> dict:
    """Write ``scene``'s quick copy to ``target`` (default ``scene/quick``, what the quick profile reads):
    every frame at 1/factor, every ``test_every``-th test view; return what ``quick.json`` records."""
    from akdqff_bench.datasets import BLENDER_QUICK, BLENDER_QUICK_META

    if factor < 1 or test_every < 1:
        raise ValueError(f"factor and test_every must be positive integers, got {factor} and {test_every}")
    scene = Path(scene)
    target = Path(target) if target is not None else scene / BLENDER_QUICK
    views, sizes = {}, set()
    for split in BLENDER_SPLITS:
        transforms = scene / f"transforms_{split}.json"
        data = load_json(transforms)
        frames = validate_frames(transforms, data)
        if split == "test":
            frames = frames[::test_every]
        for frame in frames:
            source = scene / f"{frame['file_path']}.png"
            if not source.is_file():
                raise DatasetError(f"{transforms}: names {source}, which does not exist")
            out = target / f"{frame['file_path']}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            small = _resized(source, factor)
            sizes.add(small.size)
            small.save(out, optimize=True)
        (target / transforms.name).write_text(json.dumps({**data, "frames": frames}, indent=4) + "\n")
        views[split] = len(frames)
    meta = {"source": scene.name, "factor": factor, "test_every": test_every, "size": [list(size) for size in sorted(sizes)], "views": views,
            "filter": "PIL Lanczos (premultiplied alpha), PNG"}
    (target / BLENDER_QUICK_META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def downscale_folder(source: Path, target: Path, factor: int) -> int:
    """Write every image of ``source`` to ``target`` at 1/factor; return how many were written."""
    if factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    names = image_files(source) if Path(source).is_dir() else []
    if not names:
        raise DatasetError(f"{source}: no images to downscale")
    Path(target).mkdir(parents=True, exist_ok=True)
    for path in names:
        small = _resized(path, factor)
        out = Path(target) / path.name
        if path.suffix.lower() in (".jpg", ".jpeg"):
            small.save(out, quality=JPEG_QUALITY, subsampling=0)
        else:
            small.save(out, optimize=True)
    return len(names)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scene", type=Path, help="the scene folder")
    parser.add_argument("--factor", type=int, required=True)
    parser.add_argument("--source", default="images", help="image folder inside the scene (default: images)")
    parser.add_argument("--target", default=None, help="output folder inside the scene (default: images_<factor>; quick with --blender)")
    parser.add_argument("--blender", action="store_true", help="the scene is in the Blender layout: make its quick copy")
    parser.add_argument("--test-every", type=int, default=None, help="--blender: keep every N-th test view (default: the quick profile's, 8)")
    args = parser.parse_args(argv)
    if args.blender:
        from akdqff_bench.datasets import BLENDER_QUICK_TEST_EVERY

        target = args.scene / args.target if args.target else None
        meta = downscale_blender(args.scene, args.factor, args.test_every or BLENDER_QUICK_TEST_EVERY, target)
        print(f"{args.scene} -> {target or args.scene / 'quick'}: {meta['views']} views at {meta['size']} (1/{args.factor})")
        return 0
    target = args.scene / (args.target or f"images_{args.factor}")
    count = downscale_folder(args.scene / args.source, target, args.factor)
    print(f"{count} images of {args.scene / args.source} -> {target} (1/{args.factor})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
