"""Constants, UIDs and the containers that describe what was written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from dicomslide.testing.synthetic.codecs import read_frames


def _uid(*parts: object) -> str:
    """Return a deterministic UID derived from `parts`."""
    return str(generate_uid(entropy_srcs=[repr(p) for p in parts]))


@dataclass(frozen=True)
class SlideUIDs:
    """Identifiers shared by all images of one synthetic slide.

    Attributes
    ----------
    study_instance_uid, series_instance_uid, frame_of_reference_uid, \
pyramid_uid, specimen_uid : str
        UIDs written to every image.
    container_identifier : str
        ContainerIdentifier (the slide id).
    specimen_identifier : str
        SpecimenIdentifier of the single specimen on the slide.
    patient_id, patient_name, study_id, accession_number : str
        Patient / study identification.
    """

    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str
    pyramid_uid: str
    specimen_uid: str
    container_identifier: str = "SYNTH-001"
    specimen_identifier: str = "SYNTH-001-A"
    patient_id: str = "SYNTH-PATIENT-001"
    patient_name: str = "Synthetic^Slide"
    study_id: str = "S1"
    accession_number: str = "ACC-SYNTH-001"

    @classmethod
    def new(
        cls, container_identifier: str = "SYNTH-001", *, key: str | None = None
    ) -> SlideUIDs:
        """Create a new set of identifiers.

        Parameters
        ----------
        container_identifier : str, optional
            ContainerIdentifier of the slide.
        key : str or None, optional
            If given, the UIDs are derived deterministically from `key` and
            `container_identifier`; otherwise they are random.

        Returns
        -------
        SlideUIDs
            The identifiers.
        """

        def make(name: str) -> str:
            if key is None:
                return str(generate_uid())
            return _uid("SlideUIDs", key, container_identifier, name)

        return cls(
            study_instance_uid=make("study"),
            series_instance_uid=make("series"),
            frame_of_reference_uid=make("frame_of_reference"),
            pyramid_uid=make("pyramid"),
            specimen_uid=make("specimen"),
            container_identifier=container_identifier,
            specimen_identifier=f"{container_identifier}-A",
            accession_number=f"ACC-{container_identifier}",
        )


@dataclass(frozen=True)
class FrameInfo:
    """Where one stored frame lives and what it shows.

    Attributes
    ----------
    part : int
        0-based index of the file (concatenation part) holding the frame.
    frame_number : int
        1-based frame number inside that file.
    tile_row, tile_col : int
        0-based position of the tile in the tile grid.
    focal_plane, optical_path : int
        0-based focal plane and optical path index.
    """

    part: int
    frame_number: int
    tile_row: int
    tile_col: int
    focal_plane: int
    optical_path: int


@dataclass
class SyntheticImage:
    """Result of :func:`write_wsi_image`: the files and the truth about them.

    Attributes
    ----------
    files : list[pathlib.Path]
        Written files, in InConcatenationNumber order (one unless
        concatenated).
    sop_instance_uids : list[str]
        SOPInstanceUID of each file.
    pixels : numpy.ndarray
        Source values, shape ``(focal_planes, optical_paths, total_rows,
        total_cols, samples)``, uint8 or uint16; omitted tiles hold
        `fill_value`.
    decoded : numpy.ndarray
        Same shape; what a correct decoder returns.  For lossless syntaxes it
        *is* `pixels`; for lossy ones every stored frame was decoded from the
        written files (see :func:`read_frames`) and pasted at its position.
    present : numpy.ndarray
        bool, shape ``(grid_rows, grid_cols)``; ``False`` for omitted tiles.
    frames : list[FrameInfo]
        One entry per stored frame, in stored order across all parts.
    """

    files: list[Path]
    sop_instance_uids: list[str]
    pixels: np.ndarray
    decoded: np.ndarray
    present: np.ndarray
    frames: list[FrameInfo]
    transfer_syntax: str
    lossy: bool
    photometric_interpretation: str
    total_rows: int
    total_cols: int
    tile_rows: int
    tile_cols: int
    samples: int
    bits: int
    focal_planes: int
    optical_paths: int
    organization: str | None
    flavor: str
    pixel_spacing: tuple[float, float]
    origin: tuple[float, float]
    image_orientation: tuple[float, ...]
    z_offsets_um: tuple[float, ...]
    optical_path_identifiers: tuple[str, ...]
    icc_profile: bytes | None
    uids: SlideUIDs
    concatenation_uid: str | None
    fill_value: tuple[int, ...]
    pad_value: tuple[int, ...]
    instance_number: int
    image_type: tuple[str, ...]
    decoded_by: str = "source"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def grid_rows(self) -> int:
        """Number of tile rows."""
        return -(-self.total_rows // self.tile_rows)

    @property
    def grid_cols(self) -> int:
        """Number of tile columns."""
        return -(-self.total_cols // self.tile_cols)

    @property
    def number_of_frames(self) -> int:
        """Number of stored frames over all parts."""
        return len(self.frames)

    def tile(
        self,
        tile_row: int,
        tile_col: int,
        focal_plane: int = 0,
        optical_path: int = 0,
        *,
        decoded: bool = True,
    ) -> np.ndarray:
        """Return the expected (cropped) content of one tile.

        Parameters
        ----------
        tile_row, tile_col : int
            0-based tile position.
        focal_plane, optical_path : int, optional
            0-based plane / path index.
        decoded : bool, optional
            Use `decoded` (default) or the source `pixels`.

        Returns
        -------
        numpy.ndarray
            Array of shape ``(h, w, samples)``; edge tiles are cropped to the
            total pixel matrix.
        """
        src = self.decoded if decoded else self.pixels
        r0, c0 = tile_row * self.tile_rows, tile_col * self.tile_cols
        return src[
            focal_plane,
            optical_path,
            r0 : r0 + self.tile_rows,
            c0 : c0 + self.tile_cols,
        ]

    def frame_position(self, info: FrameInfo) -> tuple[float, float, float]:
        """Return the slide coordinates of a frame's top-left pixel.

        Parameters
        ----------
        info : FrameInfo
            The frame.

        Returns
        -------
        tuple[float, float, float]
            X and Y in mm, Z in µm.
        """
        x, y = _pixel_to_slide(
            info.tile_row * self.tile_rows,
            info.tile_col * self.tile_cols,
            self.origin,
            self.pixel_spacing,
            self.image_orientation,
        )
        return x, y, self.z_offsets_um[info.focal_plane]

    def redecode(self, plugin: str = "") -> np.ndarray:
        """Decode all stored frames again, optionally with another decoder.

        Parameters
        ----------
        plugin : str, optional
            pydicom decoding plugin name (``"pillow"``, ``"pylibjpeg"``,
            ``"pyjpegls"``...), ``""`` for pydicom's default, or
            ``"pillow-direct"`` to decode JPEG / JPEG 2000 / JPEG XL frames
            with ``PIL.Image.open`` (Pillow's own colour conversion).

        Returns
        -------
        numpy.ndarray
            Array shaped like `pixels`.
        """
        return _assemble(self, [read_frames(f, plugin=plugin) for f in self.files])


@dataclass
class SyntheticSlide:
    """Result of :func:`write_slide`.

    Attributes
    ----------
    folder : pathlib.Path
        Folder holding all files.
    preset : str
        Name of the preset used.
    uids : SlideUIDs
        Identifiers shared by all images.
    levels : list[SyntheticImage]
        VOLUME images, largest first.
    downsamples : list[int]
        Downsample factor of each level relative to level 0.
    thumbnail, label, overview : SyntheticImage or None
        Associated images, if written.
    """

    folder: Path
    preset: str
    uids: SlideUIDs
    levels: list[SyntheticImage]
    downsamples: list[int]
    thumbnail: SyntheticImage | None = None
    label: SyntheticImage | None = None
    overview: SyntheticImage | None = None

    @property
    def images(self) -> list[SyntheticImage]:
        """All images: levels, then thumbnail, label and overview."""
        extra = [self.thumbnail, self.label, self.overview]
        return self.levels + [im for im in extra if im is not None]

    @property
    def files(self) -> list[Path]:
        """All written files."""
        return [f for im in self.images for f in im.files]


def _pixel_to_slide(
    row: float,
    col: float,
    origin: Sequence[float],
    spacing: Sequence[float],
    orientation: Sequence[float],
) -> tuple[float, float]:
    dc, dr = col * spacing[1], row * spacing[0]
    x = origin[0] + dc * orientation[0] + dr * orientation[3]
    y = origin[1] + dc * orientation[1] + dr * orientation[4]
    return float(x), float(y)


def _assemble(
    image: SyntheticImage, frames_per_file: list[list[np.ndarray]]
) -> np.ndarray:
    out = np.empty_like(image.pixels)
    out[...] = np.asarray(image.fill_value, dtype=out.dtype)
    for info in image.frames:
        frame = frames_per_file[info.part][info.frame_number - 1]
        r0, c0 = info.tile_row * image.tile_rows, info.tile_col * image.tile_cols
        h = min(image.tile_rows, image.total_rows - r0)
        w = min(image.tile_cols, image.total_cols - c0)
        out[info.focal_plane, info.optical_path, r0 : r0 + h, c0 : c0 + w] = frame[
            :h, :w
        ]
    return out
