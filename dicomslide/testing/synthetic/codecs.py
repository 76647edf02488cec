"""Encoding frames in every encodable syntax; decoding them without dicomslide."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import iter_pixels

from dicomslide.testing.synthetic.syntaxes import (
    _JPEG_XL,
    _NATIVE,
    ENCAPSULATED_UNCOMPRESSED,
    JPEG_2000,
    JPEG_2000_LOSSLESS,
    JPEG_BASELINE,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR_LOSSLESS,
    JPEG_XL_JPEG_RECOMPRESSION,
    JPEG_XL_LOSSLESS,
    RLE_LOSSLESS,
)


@dataclass(frozen=True)
class _Codec:
    transfer_syntax: str
    samples: int
    bits: int
    bits_stored: int
    jpeg_quality: int
    jpeg_subsampling: str
    jpeg_rgb: bool
    j2k_mct: bool
    j2k_ratio: float
    jpegls_near: int
    jxl_quality: float
    jxl_effort: int

    @property
    def photometric(self) -> str:
        if self.samples == 1:
            return "MONOCHROME2"
        ts = self.transfer_syntax
        if ts in (JPEG_BASELINE, JPEG_XL_JPEG_RECOMPRESSION):
            if self.jpeg_rgb:
                return "RGB"
            return "YBR_FULL" if self.jpeg_subsampling == "4:4:4" else "YBR_FULL_422"
        if ts == JPEG_2000_LOSSLESS:
            return "YBR_RCT" if self.j2k_mct else "RGB"
        if ts == JPEG_2000:
            return "YBR_ICT" if self.j2k_mct else "RGB"
        return "RGB"

    def _jpeg(self, frame: np.ndarray) -> bytes:
        buf = io.BytesIO()
        if self.samples == 1:
            Image.fromarray(frame[..., 0], mode="L").save(
                buf, format="JPEG", quality=self.jpeg_quality
            )
        elif self.jpeg_rgb:
            Image.fromarray(frame, mode="RGB").save(
                buf,
                format="JPEG",
                quality=self.jpeg_quality,
                keep_rgb=True,
                subsampling=0,
            )
        else:
            sub = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[self.jpeg_subsampling]
            Image.fromarray(frame, mode="RGB").save(
                buf, format="JPEG", quality=self.jpeg_quality, subsampling=sub
            )
        return buf.getvalue()

    def encode(self, frame: np.ndarray) -> bytes:
        """Encode one full-size frame ``(rows, cols, samples)``."""
        ts = self.transfer_syntax
        rows, cols, samples = frame.shape
        if ts in _NATIVE or ts == ENCAPSULATED_UNCOMPRESSED:
            return frame.astype("<u2" if self.bits > 8 else "u1").tobytes()
        if ts == JPEG_BASELINE:
            return self._jpeg(frame)
        if ts in (JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS):
            import jpeg_ls

            near = self.jpegls_near if ts == JPEG_LS_NEAR_LOSSLESS else 0
            arr = frame[..., 0] if samples == 1 else np.ascontiguousarray(frame)
            return bytes(
                jpeg_ls.encode_array(
                    arr, lossy_error=near, interleave_mode=2 if samples == 3 else None
                )
            )
        if ts in (JPEG_2000_LOSSLESS, JPEG_2000):
            from openjpeg.utils import encode_array

            arr = frame[..., 0] if samples == 1 else np.ascontiguousarray(frame)
            kwargs: dict[str, Any] = {}
            if ts == JPEG_2000:
                kwargs["compression_ratios"] = [self.j2k_ratio]
            return bytes(
                encode_array(
                    arr,
                    bits_stored=self.bits_stored,
                    photometric_interpretation=1 if samples == 3 else 2,
                    use_mct=self.j2k_mct,
                    **kwargs,
                )
            )
        if ts == RLE_LOSSLESS:
            from rle.utils import encode_pixel_data

            return bytes(
                encode_pixel_data(
                    frame.astype("<u2" if self.bits > 8 else "u1").tobytes(),
                    rows=rows,
                    columns=cols,
                    samples_per_pixel=samples,
                    bits_allocated=self.bits,
                    byteorder="<",
                )
            )
        if ts in _JPEG_XL:
            import pillow_jxl  # noqa: F401  (registers the JXL plugin)
            from pillow_jxl import Encoder

            mode = "RGB" if samples == 3 else ("I;16" if self.bits > 8 else "L")
            if ts == JPEG_XL_JPEG_RECOMPRESSION:
                jpeg = self._jpeg(frame)
                # pillow_jxl's bundled stub is older than its Encoder.
                enc = Encoder(
                    mode=mode,
                    lossless=True,
                    quality=100,  # type: ignore[call-arg]
                    decoding_speed=0,
                    effort=self.jxl_effort,
                    use_container=False,
                    use_original_profile=False,
                    num_threads=1,
                )
                return bytes(enc(jpeg, cols, rows, jpeg_encode=True))
            arr = frame[..., 0] if samples == 1 else frame
            if mode == "I;16":
                img = Image.frombytes("I;16", (cols, rows), arr.astype("<u2").tobytes())
            else:
                img = Image.fromarray(np.ascontiguousarray(arr), mode=mode)
            buf = io.BytesIO()
            try:
                if ts == JPEG_XL_LOSSLESS:
                    img.save(
                        buf,
                        format="JXL",
                        lossless=True,
                        effort=self.jxl_effort,
                        num_threads=1,
                    )
                else:
                    img.save(
                        buf,
                        format="JXL",
                        quality=self.jxl_quality,
                        effort=self.jxl_effort,
                        num_threads=1,
                    )
            except NotImplementedError:
                # pillow-jxl-plugin before 1.3.8 writes no 16-bit images
                # (it reads them): libjxl through imagecodecs does
                import imagecodecs

                return bytes(
                    imagecodecs.jpegxl_encode(
                        np.ascontiguousarray(arr.astype("<u2")),
                        lossless=ts == JPEG_XL_LOSSLESS or None,
                        level=None if ts == JPEG_XL_LOSSLESS else int(self.jxl_quality),
                        effort=self.jxl_effort,
                        numthreads=1,
                    )
                )
            return buf.getvalue()
        raise ValueError(f"transfer syntax {ts} is not encodable here")


def _decode_with_pillow(
    data: bytes, rows: int, cols: int, samples: int, bits: int
) -> np.ndarray:
    if data[:2] == b"\xff\x0a" or data[:12] == b"\0\0\0\x0cJXL \r\n\x87\n":
        import pillow_jxl  # noqa: F401  (registers the JXL plugin)
    img: Image.Image = Image.open(io.BytesIO(data))
    if samples == 3 and img.mode != "RGB":
        img = img.convert("RGB")
    if img.mode in ("I;16", "I;16L", "I;16B", "I"):
        arr = np.asarray(img).astype(np.uint16)
    else:
        arr = np.asarray(img)
    arr = arr.reshape(rows, cols, samples)
    return arr.astype(np.uint16 if bits > 8 else np.uint8)


def read_frames(path: str | Path, plugin: str = "") -> list[np.ndarray]:
    """Decode every frame of a written file, without ``dicomslide``.

    Parameters
    ----------
    path : str or pathlib.Path
        A file written by this module.
    plugin : str, optional
        pydicom decoding plugin (``""`` = pydicom's default) or
        ``"pillow-direct"`` to decode compressed frames with
        ``PIL.Image.open``.  JPEG XL and Encapsulated Uncompressed frames,
        which pydicom 3.0 cannot decode, always use Pillow / raw bytes.

    Returns
    -------
    list[numpy.ndarray]
        Frames in stored order, each ``(Rows, Columns, SamplesPerPixel)`` in
        RGB (YBR photometric interpretations converted) or monochrome.
    """
    ds = pydicom.dcmread(path)
    ts = str(ds.file_meta.TransferSyntaxUID)
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples, bits = int(ds.SamplesPerPixel), int(ds.BitsAllocated)
    n = int(getattr(ds, "NumberOfFrames", 1))
    dtype = np.uint16 if bits > 8 else np.uint8
    if ts == ENCAPSULATED_UNCOMPRESSED:
        return [
            np.frombuffer(f, dtype="<u2" if bits > 8 else "u1")[: rows * cols * samples]
            .reshape(rows, cols, samples)
            .astype(dtype)
            for f in generate_frames(ds.PixelData, number_of_frames=n)
        ]
    if ts in _JPEG_XL or (
        plugin == "pillow-direct"
        and ts in (JPEG_BASELINE, JPEG_2000_LOSSLESS, JPEG_2000)
    ):
        extended = None
        if "ExtendedOffsetTable" in ds:
            extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        return [
            _decode_with_pillow(f, rows, cols, samples, bits)
            for f in generate_frames(
                ds.PixelData, number_of_frames=n, extended_offsets=extended
            )
        ]
    frames = []
    use = "" if plugin == "pillow-direct" else plugin
    for arr in iter_pixels(ds, decoding_plugin=use):
        frames.append(np.asarray(arr).reshape(rows, cols, samples).astype(dtype))
    return frames
