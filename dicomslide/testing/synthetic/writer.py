"""The writer of one VL Whole Slide Microscopy image (instance or concatenation)."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.sr.codedict import codes
from pydicom.uid import UID

from dicomslide.testing.synthetic.codecs import _Codec, read_frames
from dicomslide.testing.synthetic.content import (
    _max_value,
    _random_pixels,
    _smooth_pixels,
    make_tissue_image,
)
from dicomslide.testing.synthetic.icc import icc_profile_srgb
from dicomslide.testing.synthetic.metadata import (
    _code_item,
    _dimension_index,
    _ds,
    _optical_path_items,
    _specimen_description,
)
from dicomslide.testing.synthetic.model import (
    FrameInfo,
    SlideUIDs,
    SyntheticImage,
    _assemble,
    _pixel_to_slide,
    _uid,
)
from dicomslide.testing.synthetic.syntaxes import (
    _EIGHT_BIT_ONLY,
    _ENCODABLE,
    _FIXED_DATETIME,
    _JPEG_XL,
    _LOSSY,
    _LOSSY_METHOD,
    _NATIVE,
    DEFAULT_ORIENTATION,
    EXPLICIT_VR_LE,
    FLAVORS,
    ORGANIZATIONS,
    WSI_SOP_CLASS_UID,
    write_part10,
)


def _normalise_pixels(
    pixels: np.ndarray,
    planes: int,
    paths: int,
    rows: int,
    cols: int,
    samples: int,
    bits: int,
) -> np.ndarray:
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim == 3:
        arr = arr[None, None]
    expected = (planes, paths, rows, cols, samples)
    if arr.shape != expected:
        raise ValueError(f"pixels has shape {arr.shape}, expected {expected}")
    dtype = np.uint8 if bits <= 8 else np.uint16
    if arr.dtype != dtype:
        if arr.min() < 0 or arr.max() > _max_value(bits):
            raise ValueError("pixels out of range for the requested bits")
        arr = arr.astype(dtype)
    return np.array(arr, copy=True)


def write_wsi_image(
    folder: Path,
    *,
    total_rows: int,
    total_cols: int,
    tile_rows: int,
    tile_cols: int,
    samples: int = 3,
    bits: int = 8,
    transfer_syntax: str = EXPLICIT_VR_LE,
    organization: str | None = "TILED_FULL",
    focal_planes: int = 1,
    optical_paths: int = 1,
    omitted_tiles: Collection[tuple[int, int]] = (),
    concatenation_parts: int = 1,
    flavor: str = "VOLUME",
    pixel_spacing: tuple[float, float] = (0.0005, 0.0005),
    origin: tuple[float, float] = (20.0, 40.0),
    icc_profile: bytes | None = None,
    uids: SlideUIDs | None = None,
    seed: int = 0,
    pattern: str = "auto",
    z_offsets_um: Sequence[float] | None = None,
    pixels: np.ndarray | None = None,
    name: str | None = None,
    instance_number: int = 1,
    image_orientation: Sequence[float] = DEFAULT_ORIENTATION,
    derived: bool | None = None,
    bits_stored: int | None = None,
    pad_value: Sequence[int] | int | None = None,
    shuffle_frames: bool | None = None,
    offset_table: str = "basic",
    fragments_per_frame: int = 1,
    jpeg_quality: int = 90,
    jpeg_subsampling: str = "4:2:0",
    jpeg_rgb: bool = False,
    j2k_mct: bool = True,
    j2k_ratio: float = 10.0,
    jpegls_near: int = 2,
    jxl_quality: float = 90.0,
    jxl_effort: int = 3,
    slice_thickness_mm: float = 0.004,
    stains: Sequence[Any] | None = None,
    label_text: str | None = None,
    barcode_value: str | None = None,
    acquisition_datetime: datetime.datetime = _FIXED_DATETIME,
    decode_plugin: str = "",
) -> SyntheticImage:
    """Write one synthetic VL Whole Slide Microscopy image.

    Parameters
    ----------
    folder : pathlib.Path
        Output folder (created if missing).
    total_rows, total_cols : int
        Size of the total pixel matrix.
    tile_rows, tile_cols : int
        Rows and Columns of a frame.
    samples : int, optional
        3 (RGB) or 1 (MONOCHROME2).
    bits : int, optional
        BitsAllocated: 8, or 16 (monochrome only).
    transfer_syntax : str, optional
        One of :func:`encodable_transfer_syntaxes`.
    organization : {"TILED_FULL", "TILED_SPARSE", None}, optional
        DimensionOrganizationType; ``None`` leaves it out (per-frame
        positions are written).
    focal_planes, optical_paths : int, optional
        Number of focal planes and optical paths.
    omitted_tiles : collection of (int, int), optional
        0-based ``(tile_row, tile_col)`` positions not stored (all planes and
        paths).  Not allowed with TILED_FULL.
    concatenation_parts : int, optional
        Split the frames over this many SOP instances of one concatenation.
    flavor : {"VOLUME", "THUMBNAIL", "LABEL", "OVERVIEW"}, optional
        ImageType value 3.
    pixel_spacing : tuple of float, optional
        (row spacing, column spacing) in mm.
    origin : tuple of float, optional
        X/Y offset (mm) of the total pixel matrix's top-left pixel.
    icc_profile : bytes or None, optional
        ICC profile for RGB images (default: the sRGB profile).
    uids : SlideUIDs or None, optional
        Shared identifiers; new random ones if ``None``.
    seed : int, optional
        Seed of the pixel content.
    pattern : {"auto", "random", "smooth", "tissue"}, optional
        Content: ``"random"`` uniform noise, ``"smooth"`` gradients + per
        tile offsets + small noise, ``"tissue"`` H&E-like (RGB, one plane and
        path); ``"auto"`` is ``"smooth"`` for lossy syntaxes and ``"random"``
        otherwise.  Ignored if `pixels` is given.
    z_offsets_um : sequence of float or None, optional
        Z offset (µm) of each focal plane; default ``0, 2, 4, ...``.  Must be
        ``0, d, 2d, ...`` for TILED_FULL.
    pixels : numpy.ndarray or None, optional
        Explicit content, shape ``(planes, paths, rows, cols, samples)`` or
        ``(rows, cols[, samples])`` for one plane/path.
    name : str or None, optional
        File stem; default ``"<flavor>-<instance_number>"``.  Concatenation
        parts get ``_part<k>``.
    instance_number : int, optional
        InstanceNumber (also makes SOP instance UIDs unique).
    image_orientation : sequence of float, optional
        ImageOrientationSlide.
    derived : bool or None, optional
        ImageType ``DERIVED\\...\\RESAMPLED`` instead of ``ORIGINAL\\...\\NONE``;
        default: True for THUMBNAIL only.
    bits_stored : int or None, optional
        BitsStored (default `bits`); content is kept below ``2**bits_stored``.
    pad_value : int or sequence of int or None, optional
        Value outside the total pixel matrix in edge frames.
    shuffle_frames : bool or None, optional
        Permute stored frames (not allowed for TILED_FULL); default True for
        TILED_SPARSE.
    offset_table : {"basic", "extended", "empty"}, optional
        Offset table for encapsulated syntaxes.
    fragments_per_frame : int, optional
        Split each encapsulated frame into this many fragments (pydicom's
        ``encapsulate``; not with ``offset_table="extended"``).
    jpeg_quality, jpeg_subsampling, jpeg_rgb : optional
        JPEG Baseline settings; `jpeg_subsampling` is ``"4:2:0"``,
        ``"4:2:2"`` or ``"4:4:4"``; `jpeg_rgb` stores RGB components without
        YCbCr transform (PhotometricInterpretation RGB).
    j2k_mct, j2k_ratio : optional
        JPEG 2000 colour transform and lossy compression ratio.
    jpegls_near : int, optional
        NEAR parameter of JPEG-LS near-lossless.
    jxl_quality, jxl_effort : optional
        JPEG XL settings.
    slice_thickness_mm : float, optional
        SliceThickness in PixelMeasuresSequence.
    stains : sequence or None, optional
        Staining substances (codes or strings); default hematoxylin + eosin.
    label_text, barcode_value : str or None, optional
        LabelText / BarcodeValue (Slide Label module) for LABEL images.
    acquisition_datetime : datetime.datetime, optional
        AcquisitionDateTime / ContentDate / ContentTime.
    decode_plugin : str, optional
        How `decoded` is computed for lossy syntaxes: a pydicom decoding
        plugin name, ``""`` for pydicom's default (in this environment
        pylibjpeg-libjpeg for JPEG Baseline), or ``"pillow-direct"``.
        Decoders differ by a few units for JPEG (libjpeg vs libjpeg-turbo
        IDCT and colour conversion); see :meth:`SyntheticImage.redecode`.

    Returns
    -------
    SyntheticImage
        The written files plus the expected pixel data.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    flavor = flavor.upper()
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {FLAVORS}")
    if organization not in ORGANIZATIONS:
        raise ValueError(f"organization must be one of {ORGANIZATIONS}")
    if transfer_syntax not in _ENCODABLE:
        raise ValueError(
            f"transfer syntax {transfer_syntax} is not encodable here; "
            f"see encodable_transfer_syntaxes()"
        )
    if samples not in (1, 3):
        raise ValueError("samples must be 1 or 3")
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    if samples == 3 and bits != 8:
        raise ValueError("RGB images must have 8 bits")
    if bits != 8 and transfer_syntax in _EIGHT_BIT_ONLY:
        raise ValueError(f"{transfer_syntax} supports 8 bits only")
    bits_stored = bits if bits_stored is None else bits_stored
    if not 1 <= bits_stored <= bits:
        raise ValueError("bits_stored must be within 1..bits")
    if min(total_rows, total_cols, tile_rows, tile_cols) < 1:
        raise ValueError("sizes must be positive")
    if focal_planes < 1 or optical_paths < 1 or concatenation_parts < 1:
        raise ValueError("focal_planes, optical_paths, concatenation_parts >= 1")
    if jpeg_subsampling not in ("4:2:0", "4:2:2", "4:4:4"):
        raise ValueError("jpeg_subsampling must be 4:2:0, 4:2:2 or 4:4:4")
    if offset_table not in ("basic", "extended", "empty"):
        raise ValueError("offset_table must be basic, extended or empty")
    if fragments_per_frame < 1 or (
        fragments_per_frame > 1 and offset_table == "extended"
    ):
        raise ValueError("fragments_per_frame must be >= 1 (1 with extended)")
    uids = uids if uids is not None else SlideUIDs.new()
    grid_rows = -(-total_rows // tile_rows)
    grid_cols = -(-total_cols // tile_cols)
    planes, paths = focal_planes, optical_paths

    # Z offsets.
    if z_offsets_um is None:
        z_offsets = tuple(2.0 * k for k in range(planes))
    else:
        z_offsets = tuple(float(z) for z in z_offsets_um)
        if len(z_offsets) != planes:
            raise ValueError("z_offsets_um needs one value per focal plane")
    spacing_between_mm: float | None = None
    if planes > 1:
        step = z_offsets[1] - z_offsets[0]
        uniform = all(
            abs(z_offsets[k] - k * step - z_offsets[0]) < 1e-9 for k in range(planes)
        )
        if organization == "TILED_FULL" and (
            not uniform or z_offsets[0] != 0.0 or step <= 0
        ):
            raise ValueError("TILED_FULL needs z_offsets_um = 0, d, 2d, ... (d>0)")
        if uniform and step > 0:
            spacing_between_mm = step / 1000.0

    # Tiles present.
    present = np.ones((grid_rows, grid_cols), dtype=bool)
    for tr, tc in omitted_tiles:
        if not (0 <= tr < grid_rows and 0 <= tc < grid_cols):
            raise ValueError(f"omitted tile {(tr, tc)} outside the tile grid")
        present[tr, tc] = False
    if organization == "TILED_FULL" and not present.all():
        raise ValueError("TILED_FULL cannot omit tiles")
    if shuffle_frames is None:
        shuffle_frames = organization == "TILED_SPARSE"
    if shuffle_frames and organization == "TILED_FULL":
        raise ValueError("TILED_FULL frames cannot be shuffled")

    # Content.
    fill: tuple[int, ...] = (255, 255, 255) if samples == 3 else (0,)
    pad: tuple[int, ...]
    if pad_value is None:
        pad = (255, 0, 255) if samples == 3 else (_max_value(bits_stored),)
    elif isinstance(pad_value, int):
        pad = (pad_value,) * samples
    else:
        pad = tuple(int(v) for v in pad_value)
    lossy = transfer_syntax in _LOSSY
    shape = (planes, paths, total_rows, total_cols, samples)
    if pixels is not None:
        source = _normalise_pixels(
            pixels, planes, paths, total_rows, total_cols, samples, bits
        )
        pattern_used = "explicit"
    else:
        pattern_used = pattern
        if pattern == "auto":
            pattern_used = "smooth" if lossy else "random"
        if pattern_used == "random":
            source = _random_pixels(shape, bits_stored, seed)
        elif pattern_used == "smooth":
            source = _smooth_pixels(shape, bits_stored, seed, tile_rows, tile_cols)
        elif pattern_used == "tissue":
            if samples != 3 or planes != 1 or paths != 1:
                raise ValueError("pattern 'tissue' needs RGB, 1 plane, 1 path")
            source = make_tissue_image(total_rows, total_cols, seed)[None, None]
        else:
            raise ValueError(f"unknown pattern {pattern!r}")
    if source.max(initial=0) > _max_value(bits_stored):
        raise ValueError("pixel values exceed bits_stored")
    for tr, tc in zip(*np.nonzero(~present)):
        source[
            :,
            :,
            tr * tile_rows : (tr + 1) * tile_rows,
            tc * tile_cols : (tc + 1) * tile_cols,
        ] = np.asarray(fill, source.dtype)

    # Frame list in stored order.
    order: list[tuple[int, int, int, int]] = [
        (o, p, tr, tc)
        for o in range(paths)
        for p in range(planes)
        for tr in range(grid_rows)
        for tc in range(grid_cols)
        if present[tr, tc]
    ]
    if shuffle_frames:
        perm = np.random.default_rng([seed, 99]).permutation(len(order))
        order = [order[i] for i in perm]
    if concatenation_parts > len(order):
        raise ValueError("more concatenation parts than frames")
    chunks = np.array_split(np.arange(len(order)), concatenation_parts)

    codec = _Codec(
        transfer_syntax=transfer_syntax,
        samples=samples,
        bits=bits,
        bits_stored=bits_stored,
        jpeg_quality=jpeg_quality,
        jpeg_subsampling=jpeg_subsampling,
        jpeg_rgb=jpeg_rgb,
        j2k_mct=j2k_mct,
        j2k_ratio=j2k_ratio,
        jpegls_near=jpegls_near,
        jxl_quality=jxl_quality,
        jxl_effort=jxl_effort,
    )
    photometric = codec.photometric
    dtype = source.dtype
    pad_arr = np.asarray(pad, dtype=dtype)

    def frame_array(o: int, p: int, tr: int, tc: int) -> np.ndarray:
        frame = np.empty((tile_rows, tile_cols, samples), dtype=dtype)
        frame[...] = pad_arr
        r0, c0 = tr * tile_rows, tc * tile_cols
        h = min(tile_rows, total_rows - r0)
        w = min(tile_cols, total_cols - c0)
        frame[:h, :w] = source[p, o, r0 : r0 + h, c0 : c0 + w]
        return frame

    encoded = [codec.encode(frame_array(*key)) for key in order]

    # Shared metadata.
    if derived is None:
        derived = flavor == "THUMBNAIL"
    image_type = (
        "DERIVED" if derived else "ORIGINAL",
        "PRIMARY",
        flavor,
        "RESAMPLED" if derived else "NONE",
    )
    stem = name if name is not None else f"{flavor.lower()}-{instance_number}"
    key = (
        uids.series_instance_uid,
        stem,
        instance_number,
        flavor,
        total_rows,
        total_cols,
        tile_rows,
        tile_cols,
        transfer_syntax,
        organization,
        seed,
    )
    concatenation_uid = _uid("concatenation", *key) if concatenation_parts > 1 else None
    source_uid = _uid("concatenation-source", *key)
    sop_uids = (
        [_uid("sop", part, *key) for part in range(concatenation_parts)]
        if concatenation_parts > 1
        else [source_uid]
    )
    org_uid = _uid("dimension-organization", *key)
    optical_items, optical_ids = _optical_path_items(paths, samples, icc_profile)
    uncompressed_bytes = tile_rows * tile_cols * samples * (bits // 8)
    compressed_bytes = sum(len(e) for e in encoded)
    ts_uid = UID(transfer_syntax)
    stains = (
        stains
        if stains is not None
        else [codes.SCT.HematoxylinStain, codes.SCT.WaterSolubleEosinStain]
    )
    date = acquisition_datetime.strftime("%Y%m%d")
    time = acquisition_datetime.strftime("%H%M%S")

    def base_dataset() -> Dataset:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.ImageType = list(image_type)
        ds.SOPClassUID = WSI_SOP_CLASS_UID
        ds.StudyDate = date
        ds.SeriesDate = date
        ds.ContentDate = date
        ds.AcquisitionDateTime = acquisition_datetime.strftime("%Y%m%d%H%M%S")
        ds.StudyTime = time
        ds.SeriesTime = time
        ds.ContentTime = time
        ds.AccessionNumber = uids.accession_number
        ds.Modality = "SM"
        ds.Manufacturer = "dicomslide test suite"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "Synthetic whole slide image"
        ds.SeriesDescription = f"Synthetic slide {uids.container_identifier}"
        ds.ManufacturerModelName = "tests/synthetic.py"
        ds.VolumetricProperties = "VOLUME"
        ds.PatientName = uids.patient_name
        ds.PatientID = uids.patient_id
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.DeviceSerialNumber = "SYN-0001"
        ds.SoftwareVersions = "1.0"
        ds.StudyInstanceUID = uids.study_instance_uid
        ds.SeriesInstanceUID = uids.series_instance_uid
        ds.StudyID = uids.study_id
        ds.SeriesNumber = 1
        ds.InstanceNumber = instance_number
        ds.FrameOfReferenceUID = uids.frame_of_reference_uid
        ds.PositionReferenceIndicator = "SLIDE_CORNER"
        ds.DimensionOrganizationSequence = [Dataset()]
        ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = org_uid
        ds.DimensionIndexSequence = _dimension_index(org_uid, planes, paths)
        if organization is not None:
            ds.DimensionOrganizationType = organization
        ds.SamplesPerPixel = samples
        ds.PhotometricInterpretation = photometric
        if samples == 3:
            ds.PlanarConfiguration = 0
        ds.Rows = tile_rows
        ds.Columns = tile_cols
        ds.BitsAllocated = bits
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 0
        ds.BurnedInAnnotation = "YES" if flavor in ("LABEL", "OVERVIEW") else "NO"
        ds.LossyImageCompression = "01" if lossy else "00"
        if lossy:
            ds.LossyImageCompressionRatio = [
                _ds(round(uncompressed_bytes * len(encoded) / compressed_bytes, 2))
            ]
            ds.LossyImageCompressionMethod = [_LOSSY_METHOD[transfer_syntax]]
        if samples == 1:
            ds.PresentationLUTShape = "IDENTITY"
        ds.AcquisitionContextSequence = []
        ds.ContainerIdentifier = uids.container_identifier
        ds.IssuerOfTheContainerIdentifierSequence = []
        ds.ContainerTypeCodeSequence = [_code_item(codes.SCT.MicroscopeSlide)]
        ds.SpecimenDescriptionSequence = [_specimen_description(uids, stains)]
        ds.ImagedVolumeWidth = float(total_cols * pixel_spacing[1])
        ds.ImagedVolumeHeight = float(total_rows * pixel_spacing[0])
        ds.ImagedVolumeDepth = float(
            (max(z_offsets) - min(z_offsets)) + slice_thickness_mm * 1000.0
        )
        ds.TotalPixelMatrixColumns = total_cols
        ds.TotalPixelMatrixRows = total_rows
        origin_item = Dataset()
        origin_item.XOffsetInSlideCoordinateSystem = _ds(origin[0])
        origin_item.YOffsetInSlideCoordinateSystem = _ds(origin[1])
        ds.TotalPixelMatrixOriginSequence = [origin_item]
        ds.SpecimenLabelInImage = "YES" if flavor in ("LABEL", "OVERVIEW") else "NO"
        ds.FocusMethod = "AUTO"
        ds.ExtendedDepthOfField = "NO"
        ds.ImageOrientationSlide = [_ds(v) for v in image_orientation]
        ds.OpticalPathSequence = optical_items
        ds.NumberOfOpticalPaths = paths
        ds.TotalPixelMatrixFocalPlanes = planes
        ds.PyramidUID = uids.pyramid_uid
        ds.PyramidLabel = uids.container_identifier
        if flavor == "LABEL":
            ds.LabelText = (
                label_text if label_text is not None else uids.container_identifier
            )
            ds.BarcodeValue = (
                barcode_value
                if barcode_value is not None
                else uids.container_identifier
            )
        shared = Dataset()
        measures = Dataset()
        measures.PixelSpacing = [_ds(pixel_spacing[0]), _ds(pixel_spacing[1])]
        measures.SliceThickness = _ds(slice_thickness_mm)
        if spacing_between_mm is not None:
            measures.SpacingBetweenSlices = _ds(spacing_between_mm)
        shared.PixelMeasuresSequence = [measures]
        frame_type = Dataset()
        frame_type.FrameType = list(image_type)
        shared.WholeSlideMicroscopyImageFrameTypeSequence = [frame_type]
        if paths == 1 and organization == "TILED_FULL":
            opi = Dataset()
            opi.OpticalPathIdentifier = optical_ids[0]
            shared.OpticalPathIdentificationSequence = [opi]
        ds.SharedFunctionalGroupsSequence = [shared]
        return ds

    # Per-frame dimension index values (1-based ranks of each dimension).
    col_rank = {tc: tc + 1 for tc in range(grid_cols)}
    row_rank = {tr: tr + 1 for tr in range(grid_rows)}
    z_rank = {p: int(np.argsort(np.argsort(z_offsets))[p]) + 1 for p in range(planes)}

    def per_frame_item(o: int, p: int, tr: int, tc: int) -> Dataset:
        item = Dataset()
        content = Dataset()
        dims = [col_rank[tc], row_rank[tr]]
        if planes > 1:
            dims.append(z_rank[p])
        if paths > 1:
            dims.append(o + 1)
        content.DimensionIndexValues = dims
        item.FrameContentSequence = [content]
        pos = Dataset()
        x, y = _pixel_to_slide(
            tr * tile_rows, tc * tile_cols, origin, pixel_spacing, image_orientation
        )
        pos.XOffsetInSlideCoordinateSystem = _ds(x)
        pos.YOffsetInSlideCoordinateSystem = _ds(y)
        pos.ZOffsetInSlideCoordinateSystem = _ds(z_offsets[p])
        pos.ColumnPositionInTotalImagePixelMatrix = tc * tile_cols + 1
        pos.RowPositionInTotalImagePixelMatrix = tr * tile_rows + 1
        item.PlanePositionSlideSequence = [pos]
        opi = Dataset()
        opi.OpticalPathIdentifier = optical_ids[o]
        item.OpticalPathIdentificationSequence = [opi]
        return item

    files: list[Path] = []
    frames: list[FrameInfo] = []
    for part, chunk in enumerate(chunks):
        ds = base_dataset()
        ds.SOPInstanceUID = sop_uids[part]
        ds.NumberOfFrames = len(chunk)
        if concatenation_parts > 1:
            ds.ConcatenationUID = concatenation_uid
            ds.SOPInstanceUIDOfConcatenationSource = source_uid
            ds.InConcatenationNumber = part + 1
            ds.InConcatenationTotalNumber = concatenation_parts
            ds.ConcatenationFrameOffsetNumber = int(chunk[0])
        keys = [order[i] for i in chunk]
        if organization != "TILED_FULL":
            ds.PerFrameFunctionalGroupsSequence = [per_frame_item(*k) for k in keys]
        part_frames = [encoded[i] for i in chunk]
        if transfer_syntax in _NATIVE:
            data = b"".join(part_frames)
            if len(data) % 2:
                data += b"\0"
            ds.PixelData = data
            ds["PixelData"].VR = "OW" if bits > 8 else "OB"
        elif offset_table == "extended":
            data, eot, eot_lengths = encapsulate_extended(part_frames)
            ds.PixelData = data
            ds["PixelData"].VR = "OB"
            ds.ExtendedOffsetTable = eot
            ds.ExtendedOffsetTableLengths = eot_lengths
        else:
            ds.PixelData = encapsulate(
                part_frames,
                fragments_per_frame=fragments_per_frame,
                has_bot=offset_table == "basic",
            )
            ds["PixelData"].VR = "OB"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(WSI_SOP_CLASS_UID)
        meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
        meta.TransferSyntaxUID = ts_uid
        meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
        meta.ImplementationVersionName = "SYNTH_WSI_1"
        ds.file_meta = meta
        suffix = f"_part{part + 1}" if concatenation_parts > 1 else ""
        path = folder / f"{stem}{suffix}.dcm"
        write_part10(path, ds)
        files.append(path)
        for k, (o, p, tr, tc) in enumerate(keys):
            frames.append(
                FrameInfo(
                    part=part,
                    frame_number=k + 1,
                    tile_row=tr,
                    tile_col=tc,
                    focal_plane=p,
                    optical_path=o,
                )
            )

    image = SyntheticImage(
        files=files,
        sop_instance_uids=sop_uids,
        pixels=source,
        decoded=source,
        present=present,
        frames=frames,
        transfer_syntax=transfer_syntax,
        lossy=lossy,
        photometric_interpretation=photometric,
        total_rows=total_rows,
        total_cols=total_cols,
        tile_rows=tile_rows,
        tile_cols=tile_cols,
        samples=samples,
        bits=bits,
        focal_planes=planes,
        optical_paths=paths,
        organization=organization,
        flavor=flavor,
        pixel_spacing=(float(pixel_spacing[0]), float(pixel_spacing[1])),
        origin=(float(origin[0]), float(origin[1])),
        image_orientation=tuple(float(v) for v in image_orientation),
        z_offsets_um=z_offsets,
        optical_path_identifiers=optical_ids,
        icc_profile=(icc_profile if icc_profile is not None else icc_profile_srgb())
        if samples == 3
        else None,
        uids=uids,
        concatenation_uid=concatenation_uid,
        fill_value=fill,
        pad_value=pad,
        instance_number=instance_number,
        image_type=image_type,
        extra={
            "pattern": pattern_used,
            "seed": seed,
            "bits_stored": bits_stored,
            "offset_table": offset_table,
            "fragments_per_frame": fragments_per_frame,
            "jpeg_subsampling": jpeg_subsampling,
            "jpeg_rgb": jpeg_rgb,
            "shuffled": bool(shuffle_frames),
            "sop_instance_uid_of_concatenation_source": source_uid,
            "spacing_between_slices_mm": spacing_between_mm,
            "slice_thickness_mm": slice_thickness_mm,
        },
    )
    if lossy:
        image.decoded = _assemble(
            image, [read_frames(f, plugin=decode_plugin) for f in files]
        )
        if transfer_syntax in _JPEG_XL:
            image.decoded_by = "Pillow + pillow_jxl"
        elif decode_plugin == "pillow-direct":
            image.decoded_by = "Pillow (PIL.Image.open)"
        else:
            image.decoded_by = f"pydicom ({decode_plugin or 'default plugin'})"
    return image
