"""Write the demo slide in ``data/sample/``.

The slide is synthetic (procedural H&E-like tissue, no patient data) and is
produced with the writer in ``dicomslide.testing.synthetic`` (preset ``"demo"``):

* one series, container identifier ``DEMO-001``;
* 4 VOLUME levels (downsample 1, 2, 4, 12) of a 2950 x 4070 pixel matrix at
  1 µm/pixel, JPEG baseline (YBR_FULL_422), 256 x 256 tiles, TILED_FULL;
* a THUMBNAIL, a LABEL (``DEMO-001`` / ``H&E`` / date and a 2-D-barcode-like
  block) and an OVERVIEW of the whole glass slide;
* an sRGB ICC profile in every OpticalPathSequence.

Usage::

    .venv/bin/python data/make_sample.py [--out data/sample] [--preview DIR]

The output is deterministic: re-running it rewrites identical files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from dicomslide.testing import synthetic

HERE = Path(__file__).resolve().parent


def write_preview(slide: object, folder: Path) -> None:
    """Save PNG renderings of the demo slide's images for a quick look.

    Parameters
    ----------
    slide : SyntheticSlide
        The written slide.
    folder : pathlib.Path
        Folder for the PNG files.
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index, level in enumerate(slide.levels):  # type: ignore[attr-defined]
        Image.fromarray(level.decoded[0, 0]).save(folder / f"level{index}.png")
    for attr in ("thumbnail", "label", "overview"):
        image = getattr(slide, attr)
        if image is not None:
            Image.fromarray(image.decoded[0, 0]).save(folder / f"{attr}.png")


def main(argv: list[str] | None = None) -> int:
    """Write the demo slide.

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE / "sample", help="output folder (replaced)"
    )
    parser.add_argument(
        "--preview",
        type=Path,
        default=None,
        help="also save PNG renderings into this folder",
    )
    args = parser.parse_args(argv)

    if args.out.exists():
        shutil.rmtree(args.out)
    start = time.perf_counter()
    slide = synthetic.write_slide(args.out, "demo", seed=0, file_names="flavor")
    elapsed = time.perf_counter() - start
    total = sum(f.stat().st_size for f in slide.files)
    for image in slide.images:
        for path in image.files:
            print(
                f"{path.name:16s} {image.flavor:9s} "
                f"{image.total_cols:5d} x {image.total_rows:<5d} "
                f"tiles {image.tile_cols}x{image.tile_rows} "
                f"frames {len(image.frames):4d} "
                f"{path.stat().st_size / 1e6:6.2f} MB"
            )
    print(f"total {total / 1e6:.2f} MB in {elapsed:.1f} s -> {args.out}")
    if args.preview is not None:
        write_preview(slide, args.preview)
    return 0


if __name__ == "__main__":
    sys.exit(main())
