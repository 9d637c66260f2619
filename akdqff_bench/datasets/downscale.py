"""Make a downscaled copy of a scene's image folder, the way nerfstudio and LLFF name them.

    python -m akdqff_bench.datasets.downscale data/ethiopian-head --source images_8 --factor 4 --target images_32
    python -m akdqff_bench.datasets.downscale PATH --factor 4          # PATH/images -> PATH/images_4

Each image is resized to ``floor(W / factor) x floor(H / factor)`` (the size nerfstudio's readers
assume for ``downscale_factor``) with PIL's Lanczos filter, which is deterministic for a given
Pillow version. PNG input stays PNG (masks stay single-channel); JPEG input is written as JPEG at
quality 95, 4:4:4 chroma (a lossless format would triple the committed size of a photo set).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from PIL import Image

from akdqff_bench.datasets.validate import DatasetError, image_files

JPEG_QUALITY = 95


def downscaled_size(size: tuple, factor: int) -> tuple:
    return max(1, size[0] // factor), max(1, size[1] // factor)


def downscale_folder(source: Path, target: Path, factor: int) -> int:
    """Write every image of ``source`` to ``target`` at 1/factor; return how many were written."""
    if factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    names = image_files(source) if Path(source).is_dir() else []
    if not names:
        raise DatasetError(f"{source}: no images to downscale")
    Path(target).mkdir(parents=True, exist_ok=True)
    for path in names:
        with Image.open(path) as image:
            image.load()
            small = image.resize(downscaled_size(image.size, factor), Image.Resampling.LANCZOS)
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
    parser.add_argument("--target", default=None, help="output folder inside the scene (default: images_<factor>)")
    args = parser.parse_args(argv)
    target = args.scene / (args.target or f"images_{args.factor}")
    count = downscale_folder(args.scene / args.source, target, args.factor)
    print(f"{count} images of {args.scene / args.source} -> {target} (1/{args.factor})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
