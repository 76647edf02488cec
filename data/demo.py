"""Demo: find the sample slide, summarise it and write a few pictures.

Usage: python data/demo.py [SOURCE] [OUTPUT_FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

import dicomslide
from dicomslide.client import LocalFolderClient


def main(source: str = "data/sample", output: str = "out/demo") -> int:
    """Run the demo.

    Parameters
    ----------
    source: str
        Folder with the DICOM files of the sample slide
    output: str
        Folder to write the pictures to

    Returns
    -------
    int
        Exit status

    """
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    client = LocalFolderClient(source)  # a DICOMfileClient with an in-memory index
    slides = dicomslide.find_slides(client)
    if not slides:
        print(f"no slides found in {source}")
        return 1
    for slide in slides:
        print(
            f"slide {slide.container_id}: {slide.num_levels} levels, "
            f"{slide.num_channels} channel(s), {slide.num_focal_planes} focal plane(s)"
        )
        for level, ((rows, columns), spacing, factor) in enumerate(
            zip(
                slide.total_pixel_matrix_dimensions,
                slide.pixel_spacings,
                slide.downsampling_factors,
            )
        ):
            print(
                f"  level {level}: {columns} x {rows} px, "
                f"{spacing[0] * 1000:.3f} µm/px, downsampled {factor:g}x"
            )
    slide = slides[0]
    rows, columns = slide.size
    size = (min(1024, rows), min(1024, columns))
    center = ((rows - size[0]) // 2, (columns - size[1]) // 2)
    pictures = {
        "region.png": slide.get_image_region(center, 0, size),
        "lowest-level.png": slide.get_image_region(
            (0, 0), slide.num_levels - 1, slide.total_pixel_matrix_dimensions[-1]
        ),
    }
    for label in slide.label_images:
        pictures["label.png"] = label.get_image_region((0, 0), label.size)
    for name, pixels in pictures.items():
        path = out / name
        Image.fromarray(np.squeeze(pixels)).save(path)
        print(f"wrote {path} ({pixels.shape[1]} x {pixels.shape[0]} px)")
    print(f"pictures are in {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
