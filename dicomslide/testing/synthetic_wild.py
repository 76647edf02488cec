"""Synthetic slides in the shapes other converters write ("wild" patterns).

Each writer makes a regular synthetic slide (:mod:`synthetic`,
:mod:`synthetic_derived`) and rewrites the headers the way a converter seen
in the wild does, so tests of tolerant reading hold without the wild files
(``../shared/data/wild-dicom``):

* :func:`write_per_level_frames_of_reference` -- every instance names its own
  FrameOfReferenceUID, ContainerIdentifier empty, no origin (Google's wsi2dcm,
  2021);
* :func:`write_repeated_pixel_spacing` -- every level states level 0's Pixel
  Spacing and imaged volume, no FrameOfReferenceUID (a DCMTK-based converter);
* :func:`write_containerless_segmentation` -- a SEG without
  ContainerIdentifier (highdicom 0.4);
* :func:`write_stray_label` -- a LABEL image of another study, alone;
* :func:`write_orphan_parametric_map` -- a PM whose source is in no folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import UID, generate_uid

from dicomslide.testing import synthetic, synthetic_derived

#: Spacing of level 0 in mm for the repeated-spacing pattern: large enough
#: that wrong spacings put the levels' centres far apart
REPEATED_SPACING_MM = 0.005


def _rewrite(path: Path, **changes: object) -> None:
    """Set (or, for None, delete) top-level attributes of a file."""
    dataset = pydicom.dcmread(path)
    for keyword, value in changes.items():
        if value is None:
            if keyword in dataset:
                delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    dataset.save_as(path)


def write_per_level_frames_of_reference(
    folder: Path, preset: str = "rgb_full", **kwargs: Any
) -> synthetic.SyntheticSlide:
    """Write a slide whose instances each name their own frame of reference.

    All instances keep one study and series; ContainerIdentifier is empty and
    TotalPixelMatrixOriginSequence absent, as Google's wsi2dcm (2021) wrote.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    preset : str, optional
        Preset of :func:`synthetic.write_slide`.
    **kwargs
        Passed to :func:`synthetic.write_slide` (e.g. ``transfer_syntax``).

    Returns
    -------
    synthetic.SyntheticSlide
        The slide as written before the headers were rewritten.
    """
    slide = synthetic.write_slide(folder, preset, **kwargs)
    for path in slide.files:
        _rewrite(
            path,
            FrameOfReferenceUID=generate_uid(),
            ContainerIdentifier="",
            TotalPixelMatrixOriginSequence=None,
        )
    return slide


def write_repeated_pixel_spacing(
    folder: Path, preset: str = "rgb_full", **kwargs: Any
) -> synthetic.SyntheticSlide:
    """Write a slide whose levels all state level 0's Pixel Spacing.

    Level 0 has :data:`REPEATED_SPACING_MM`; every VOLUME and THUMBNAIL image
    states it, and level 0's imaged volume; FrameOfReferenceUID is absent.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    preset : str, optional
        Preset of :func:`synthetic.write_slide`.
    **kwargs
        Passed to :func:`synthetic.write_slide` (e.g. ``transfer_syntax``).

    Returns
    -------
    synthetic.SyntheticSlide
        The slide as written before the headers were rewritten.
    """
    slide = synthetic.write_slide(folder, preset, **kwargs)
    base = slide.levels[0]
    width = base.total_cols * REPEATED_SPACING_MM
    height = base.total_rows * REPEATED_SPACING_MM
    for path in slide.files:
        dataset = pydicom.dcmread(path)
        if "FrameOfReferenceUID" in dataset:
            del dataset.FrameOfReferenceUID
        if dataset.ImageType[2] in ("VOLUME", "THUMBNAIL"):
            shared = dataset.SharedFunctionalGroupsSequence[0]
            shared.PixelMeasuresSequence[0].PixelSpacing = [
                REPEATED_SPACING_MM,
                REPEATED_SPACING_MM,
            ]
            dataset.ImagedVolumeWidth = width
            dataset.ImagedVolumeHeight = height
        dataset.save_as(path)
    return slide


def write_containerless_segmentation(
    folder: Path, source: synthetic.SyntheticImage, **kwargs: Any
) -> synthetic_derived.SyntheticSegmentation:
    """Write a segmentation of `source` without ContainerIdentifier.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    source : synthetic.SyntheticImage
        Segmented image.
    **kwargs
        Passed to :func:`synthetic_derived.write_segmentation`.

    Returns
    -------
    synthetic_derived.SyntheticSegmentation
        The segmentation.
    """
    seg = synthetic_derived.write_segmentation(folder, source, **kwargs)
    for path in seg.files:
        _rewrite(path, ContainerIdentifier=None)
    return seg


def write_stray_label(folder: Path, seed: int = 7) -> Path:
    """Write the LABEL image of another study, alone, into a folder.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    seed : int, optional
        Content seed of the slide the label is taken from.

    Returns
    -------
    pathlib.Path
        The label file.
    """
    other = synthetic.write_slide(
        folder / ".other",
        "rgb_full",
        seed=seed,
        uids=synthetic.SlideUIDs.new("STRAY", key=f"stray-{seed}"),
    )
    assert other.label is not None
    target = Path(folder) / "stray_label.dcm"
    other.label.files[0].replace(target)
    for path in sorted((folder / ".other").iterdir()):
        path.unlink()
    (folder / ".other").rmdir()
    return target


def write_orphan_parametric_map(
    folder: Path, seed: int = 11
) -> synthetic_derived.SyntheticParametricMap:
    """Write a parametric map whose source image is in no folder.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    seed : int, optional
        Content seed of the source slide (which is written and deleted).

    Returns
    -------
    synthetic_derived.SyntheticParametricMap
        The parametric map.
    """
    scratch = Path(folder) / ".source"
    source = synthetic.write_slide(
        scratch,
        "rgb_full",
        seed=seed,
        uids=synthetic.SlideUIDs.new("ORPHAN", key=f"orphan-{seed}"),
    )
    pm = synthetic_derived.write_parametric_map(folder, source.levels[0])
    for path in sorted(scratch.iterdir()):
        path.unlink()
    scratch.rmdir()
    return pm


def write_twin(
    folder: Path, original: synthetic.SyntheticSlide, seed: int
) -> synthetic.SyntheticSlide:
    """Write another slide whose instances reuse the SOP Instance UIDs of
    `original` (as hand-edited copies and test files do) but hold other pixels.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    original : synthetic.SyntheticSlide
        Slide whose UIDs the twin takes.
    seed : int
        Content seed of the twin (other than the original's).

    Returns
    -------
    synthetic.SyntheticSlide
        The twin, with the original's UIDs in its truth.
    """
    twin = synthetic.write_slide(folder, original.preset, seed=seed, uids=original.uids)
    originals = [image for image in (*original.levels,)]
    for image, source in zip(twin.levels, originals):
        for path, uid in zip(image.files, source.sop_instance_uids):
            dataset = pydicom.dcmread(path)
            dataset.SOPInstanceUID = uid
            dataset.file_meta.MediaStorageSOPInstanceUID = UID(uid)
            dataset.save_as(path)
        image.sop_instance_uids = list(source.sop_instance_uids)
    return twin
