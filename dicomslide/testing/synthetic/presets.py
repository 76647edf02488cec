"""Pyramids and named presets: whole slides sharing UIDs and the container."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dicomslide.testing.synthetic.content import (
    _max_value,
    _random_pixels,
    _smooth_pixels,
    downsample_area,
    make_label_image,
    make_overview_image,
    make_tissue_image,
)
from dicomslide.testing.synthetic.icc import icc_profile
from dicomslide.testing.synthetic.model import SlideUIDs, SyntheticImage, SyntheticSlide
from dicomslide.testing.synthetic.syntaxes import (
    _EIGHT_BIT_ONLY,
    _LOSSY,
    EXPLICIT_VR_LE,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
)
from dicomslide.testing.synthetic.writer import write_wsi_image


@dataclass(frozen=True)
class _Level:
    downsample: int
    tile_rows: int
    tile_cols: int
    omitted: tuple[tuple[int, int], ...] = ()
    concatenation_parts: int = 1


@dataclass(frozen=True)
class _Preset:
    description: str
    total_rows: int
    total_cols: int
    levels: tuple[_Level, ...]
    transfer_syntax: str = JPEG_BASELINE
    samples: int = 3
    bits: int = 8
    organization: str | None = "TILED_FULL"
    focal_planes: int = 1
    optical_paths: int = 1
    pattern: str = "auto"
    thumbnail: bool = False
    label: bool = False
    overview: bool = False
    icc: str | None = "srgb"
    pixel_spacing: float = 0.0005
    container_identifier: str = "SYNTH-001"
    label_lines: tuple[str, ...] = ("SYNTH-001", "H&E", "2024-03-14")
    jpeg_quality: int = 90
    pad_value: tuple[int, ...] | None = None


_PYRAMID = (_Level(1, 64, 96), _Level(2, 64, 64), _Level(6, 32, 48))

PRESETS: dict[str, _Preset] = {
    "rgb_full": _Preset(
        "TILED_FULL RGB JPEG baseline (YBR_FULL_422) pyramid x1/x2/x6 with "
        "thumbnail, label, overview and sRGB ICC profile",
        300,
        470,
        _PYRAMID,
        thumbnail=True,
        label=True,
        overview=True,
    ),
    "sparse": _Preset(
        "TILED_SPARSE RGB Explicit VR LE, omitted tiles, shuffled frames",
        300,
        470,
        (
            _Level(1, 64, 96, omitted=((0, 0), (2, 3), (4, 4))),
            _Level(2, 64, 64, omitted=((1, 1),)),
            _Level(6, 32, 48),
        ),
        transfer_syntax=EXPLICIT_VR_LE,
        organization="TILED_SPARSE",
        thumbnail=True,
    ),
    "no_organization": _Preset(
        "DimensionOrganizationType absent, per-frame positions, RGB Explicit VR",
        300,
        470,
        _PYRAMID,
        transfer_syntax=EXPLICIT_VR_LE,
        organization=None,
    ),
    "multi_z_channel_full": _Preset(
        "TILED_FULL MONOCHROME2, 3 focal planes x 2 optical paths",
        300,
        470,
        _PYRAMID[:2],
        transfer_syntax=EXPLICIT_VR_LE,
        samples=1,
        focal_planes=3,
        optical_paths=2,
        icc=None,
    ),
    "multi_z_channel_sparse": _Preset(
        "TILED_SPARSE MONOCHROME2, 3 focal planes x 2 optical paths, omitted "
        "tiles, shuffled frames",
        300,
        470,
        (_Level(1, 64, 96, omitted=((1, 2), (4, 0))), _Level(2, 64, 64)),
        transfer_syntax=EXPLICIT_VR_LE,
        samples=1,
        organization="TILED_SPARSE",
        focal_planes=3,
        optical_paths=2,
        icc=None,
    ),
    "concatenation": _Preset(
        "TILED_FULL RGB JPEG 2000 lossless, level 0 split into 3 instances",
        300,
        470,
        (
            _Level(1, 64, 96, concatenation_parts=3),
            _Level(2, 64, 64),
            _Level(6, 32, 48),
        ),
        transfer_syntax=JPEG_2000_LOSSLESS,
    ),
    "mono16": _Preset(
        "TILED_FULL MONOCHROME2 16 bit Explicit VR LE",
        300,
        470,
        _PYRAMID,
        transfer_syntax=EXPLICIT_VR_LE,
        samples=1,
        bits=16,
        icc=None,
    ),
    "demo": _Preset(
        "Realistic H&E demo slide (JPEG, 256x256 tiles, ~4000x3000 px)",
        2950,
        4070,
        (
            _Level(1, 256, 256),
            _Level(2, 256, 256),
            _Level(4, 256, 256),
            _Level(12, 256, 256),
        ),
        pattern="tissue",
        thumbnail=True,
        label=True,
        overview=True,
        pixel_spacing=0.001,
        container_identifier="DEMO-001",
        label_lines=("DEMO-001", "H&E", "2024-03-14"),
        jpeg_quality=85,
        pad_value=(255, 255, 255),
    ),
}


def _base_content(preset: _Preset, seed: int) -> np.ndarray:
    shape = (
        preset.focal_planes,
        preset.optical_paths,
        preset.total_rows,
        preset.total_cols,
        preset.samples,
    )
    lossy = preset.transfer_syntax in _LOSSY
    pattern = preset.pattern
    if pattern == "auto":
        pattern = "smooth" if lossy else "random"
    if pattern == "tissue":
        return make_tissue_image(
            preset.total_rows,
            preset.total_cols,
            seed,
            pixel_size_um=preset.pixel_spacing * 1000,
        )[None, None]
    if pattern == "smooth":
        tr, tc = preset.levels[0].tile_rows, preset.levels[0].tile_cols
        return _smooth_pixels(shape, preset.bits, seed, tr, tc)
    return _random_pixels(shape, preset.bits, seed)


def _level_content(
    base: np.ndarray, downsample: int, preset: _Preset, seed: int
) -> np.ndarray:
    """Content of one level: area-downsampled base plus a small per-tile
    texture, so every tile of every level stays distinct and non-constant."""
    arr = downsample_area(base, downsample)
    if preset.pattern == "tissue" or downsample == 1:
        return arr
    rng = np.random.default_rng([seed, downsample, 5])
    maxv = _max_value(preset.bits)
    amp = 6 if preset.transfer_syntax in _LOSSY else 24
    if preset.bits > 8:
        amp *= 257
    noise = rng.integers(-amp, amp + 1, size=arr.shape)
    return np.asarray(np.clip(arr.astype(np.int64) + noise, 0, maxv), dtype=arr.dtype)


def write_slide(
    folder: Path,
    preset: str,
    *,
    seed: int = 0,
    uids: SlideUIDs | None = None,
    transfer_syntax: str | None = None,
    icc: str | bytes | None = "preset",
    file_names: str = "flavor",
    **image_kwargs: Any,
) -> SyntheticSlide:
    """Write a whole synthetic slide (pyramid + associated images).

    Parameters
    ----------
    folder : pathlib.Path
        Output folder.
    preset : str
        Name in :data:`PRESETS`: ``"rgb_full"``, ``"sparse"``,
        ``"no_organization"``, ``"multi_z_channel_full"``,
        ``"multi_z_channel_sparse"``, ``"concatenation"``, ``"mono16"`` or
        ``"demo"``.
    seed : int, optional
        Content seed.
    uids : SlideUIDs or None, optional
        Shared identifiers; default: deterministic from preset and seed.
    transfer_syntax : str or None, optional
        Override the preset's transfer syntax for the VOLUME levels.
    icc : str or bytes or None, optional
        ``"srgb"``, ``"wide"``, profile bytes, or ``"preset"`` (default: the
        preset's choice).
    file_names : {"flavor", "uid"}, optional
        ``"flavor"`` names files ``level0.dcm``, ``level1.dcm``, ...,
        ``thumbnail.dcm``, ``label.dcm``, ``overview.dcm``; ``"uid"`` uses
        the SOP Instance UID.
    **image_kwargs
        Passed to every :func:`write_wsi_image` call for VOLUME levels (e.g.
        ``offset_table``, ``jpeg_rgb``).

    Returns
    -------
    SyntheticSlide
        Levels (largest first) and associated images.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    cfg = PRESETS[preset]
    folder = Path(folder)
    if uids is None:
        uids = SlideUIDs.new(cfg.container_identifier, key=f"{preset}-{seed}")
    ts = transfer_syntax if transfer_syntax is not None else cfg.transfer_syntax
    if isinstance(icc, bytes):
        icc_bytes: bytes | None = icc
    else:
        kind = cfg.icc if icc == "preset" else icc
        icc_bytes = (
            icc_profile(kind) if (kind is not None and cfg.samples == 3) else None
        )
    if cfg.samples == 1:
        icc_bytes = None
    base = _base_content(cfg, seed)
    spacing = cfg.pixel_spacing
    origin = (20.0, 40.0)
    instance = 0

    def next_name(default: str) -> tuple[str | None, int]:
        nonlocal instance
        instance += 1
        return (default if file_names == "flavor" else None), instance

    levels: list[SyntheticImage] = []
    for index, level in enumerate(cfg.levels):
        content = _level_content(base, level.downsample, cfg, seed)
        stem, number = next_name(f"level{index}")
        kwargs: dict[str, Any] = {
            "jpeg_quality": cfg.jpeg_quality,
            "pad_value": cfg.pad_value,
        }
        kwargs.update(image_kwargs)
        image = write_wsi_image(
            folder,
            total_rows=content.shape[2],
            total_cols=content.shape[3],
            tile_rows=level.tile_rows,
            tile_cols=level.tile_cols,
            samples=cfg.samples,
            bits=cfg.bits,
            transfer_syntax=ts,
            organization=cfg.organization,
            focal_planes=cfg.focal_planes,
            optical_paths=cfg.optical_paths,
            omitted_tiles=level.omitted,
            concatenation_parts=level.concatenation_parts,
            flavor="VOLUME",
            pixel_spacing=(spacing * level.downsample, spacing * level.downsample),
            origin=origin,
            icc_profile=icc_bytes,
            uids=uids,
            seed=seed + index,
            pixels=content,
            name=stem,
            instance_number=number,
            derived=index > 0,
            **kwargs,
        )
        if file_names != "flavor":
            image = _rename_to_uid(image)
        levels.append(image)

    slide = SyntheticSlide(
        folder=folder,
        preset=preset,
        uids=uids,
        levels=levels,
        downsamples=[lv.downsample for lv in cfg.levels],
    )
    rgb_base = base[0, 0]
    if cfg.samples == 1:
        rgb_base = np.repeat((base[0, 0] >> (cfg.bits - 8)).astype(np.uint8), 3, axis=2)
    assoc_ts = JPEG_BASELINE if cfg.samples == 3 and ts in _LOSSY else EXPLICIT_VR_LE
    if cfg.thumbnail:
        factor = (
            max(1, math.ceil(max(cfg.total_rows, cfg.total_cols) / 256))
            if preset == "demo"
            else 4
        )
        content = _level_content(base, factor, cfg, seed + 50)
        stem, number = next_name("thumbnail")
        thumb_ts = (
            ts if cfg.samples == 3 or ts not in _EIGHT_BIT_ONLY else EXPLICIT_VR_LE
        )
        slide.thumbnail = write_wsi_image(
            folder,
            total_rows=content.shape[2],
            total_cols=content.shape[3],
            tile_rows=content.shape[2],
            tile_cols=content.shape[3],
            samples=cfg.samples,
            bits=cfg.bits,
            transfer_syntax=thumb_ts,
            organization="TILED_FULL",
            focal_planes=cfg.focal_planes,
            optical_paths=cfg.optical_paths,
            flavor="THUMBNAIL",
            pixel_spacing=(spacing * factor, spacing * factor),
            origin=origin,
            icc_profile=icc_bytes,
            uids=uids,
            pixels=content,
            name=stem,
            instance_number=number,
            jpeg_quality=cfg.jpeg_quality,
        )
    label_rgb = None
    label_text = " / ".join(cfg.label_lines)
    if cfg.label or cfg.overview:
        label_rgb = make_label_image(
            240 if preset == "demo" else 96,
            240 if preset == "demo" else 96,
            cfg.label_lines,
            cfg.container_identifier,
            seed,
        )
    if cfg.label and label_rgb is not None:
        stem, number = next_name("label")
        slide.label = write_wsi_image(
            folder,
            total_rows=label_rgb.shape[0],
            total_cols=label_rgb.shape[1],
            tile_rows=label_rgb.shape[0],
            tile_cols=label_rgb.shape[1],
            samples=3,
            transfer_syntax=assoc_ts,
            flavor="LABEL",
            pixel_spacing=(0.1, 0.1),
            origin=(25.0, 24.0),
            icc_profile=icc_bytes,
            uids=uids,
            pixels=label_rgb,
            name=stem,
            instance_number=number,
            label_text=label_text,
            barcode_value=cfg.container_identifier,
        )
    if cfg.overview:
        # Slide 25 mm x 75 mm; columns run along -Y, rows along -X (default
        # orientation), top-left corner at (X, Y) = (25, 75).
        ov_spacing = 0.1 if preset == "demo" else 0.25
        ov_rows, ov_cols = round(25 / ov_spacing), round(75 / ov_spacing)
        lvl0 = levels[0]
        r0 = round((25.0 - origin[0]) / ov_spacing)
        c0 = round((75.0 - origin[1]) / ov_spacing)
        r1 = r0 + max(1, round(lvl0.total_rows * spacing / ov_spacing))
        c1 = c0 + max(1, round(lvl0.total_cols * spacing / ov_spacing))
        lab_c0 = round((75.0 - 24.0) / ov_spacing)
        overview = make_overview_image(
            ov_rows,
            ov_cols,
            content=rgb_base,
            content_box=(r0, c0, r1, c1),
            label=label_rgb,
            label_box=(
                round(1 / ov_spacing),
                lab_c0,
                ov_rows - round(1 / ov_spacing),
                ov_cols - round(1 / ov_spacing),
            ),
            seed=seed,
        )
        stem, number = next_name("overview")
        slide.overview = write_wsi_image(
            folder,
            total_rows=ov_rows,
            total_cols=ov_cols,
            tile_rows=ov_rows,
            tile_cols=ov_cols,
            samples=3,
            transfer_syntax=assoc_ts,
            flavor="OVERVIEW",
            pixel_spacing=(ov_spacing, ov_spacing),
            origin=(25.0, 75.0),
            icc_profile=icc_bytes,
            uids=uids,
            pixels=overview,
            name=stem,
            instance_number=number,
        )
    if file_names != "flavor":
        for attr in ("thumbnail", "label", "overview"):
            im = getattr(slide, attr)
            if im is not None:
                setattr(slide, attr, _rename_to_uid(im))
    return slide


def _rename_to_uid(image: SyntheticImage) -> SyntheticImage:
    new_files = []
    for path, uid in zip(image.files, image.sop_instance_uids):
        target = path.with_name(f"{uid}.dcm")
        path.replace(target)
        new_files.append(target)
    image.files = new_files
    return image
