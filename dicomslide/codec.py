"""Decoding of encoded frames into arrays.

One function per transfer-syntax family turns the bytes of one frame into an
array of shape (rows, columns, samples). Colour follows the encoded stream
(e.g. a JPEG with an Adobe marker and RGB components is not YCbCr-converted,
a JPEG 2000 codestream with a multiple component transform is inverted by the
decoder), not only Photometric Interpretation.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import cast

import numpy as np
from PIL import Image
from pydicom.uid import UID

from dicomslide import uids
from dicomslide.errors import FrameDecodeError, UnsupportedTransferSyntaxError

logger = logging.getLogger(__name__)

# The decoder of most slides loads with dicomslide, not in the first read; a
# missing one is reported per frame (_decoder_available).
with contextlib.suppress(ImportError):
    import simplejpeg  # noqa: F401

# Transfer syntaxes whose frames are stored without compression.
NATIVE_TRANSFER_SYNTAXES = frozenset(
    {
        uids.ImplicitVRLittleEndian,  # Implicit VR Little Endian
        uids.ExplicitVRLittleEndian,  # Explicit VR Little Endian
        uids.DeflatedExplicitVRLittleEndian,  # Deflated Explicit VR Little Endian
        uids.ExplicitVRBigEndian,  # Explicit VR Big Endian
    }
)
_BIG_ENDIAN = uids.ExplicitVRBigEndian
_ENCAPSULATED_UNCOMPRESSED = uids.EncapsulatedUncompressedExplicitVRLittleEndian
_DEFLATED_IMAGE_FRAME = uids.DeflatedImageFrameCompression
# pylibjpeg-libjpeg their 12-bit ones and lossless JPEG
_JPEG_EXTENDED = uids.JPEGExtended12Bit
_JPEG_8BIT = frozenset({uids.JPEGBaseline8Bit, _JPEG_EXTENDED})
_JPEG_LOSSLESS = frozenset(
    {
        uids.JPEGLossless,  # JPEG Lossless P14
        uids.JPEGLosslessSV1,  # JPEG Lossless SV1
    }
)
_JPEG_LS = frozenset({uids.JPEGLSLossless, uids.JPEGLSNearLossless})
_JPEG_2000 = frozenset(
    {
        uids.JPEG2000Lossless,  # JPEG 2000 lossless
        uids.JPEG2000,  # JPEG 2000
        uids.HTJ2KLossless,  # HTJ2K lossless
        uids.HTJ2KLosslessRPCL,  # HTJ2K lossless RPCL
        uids.HTJ2K,  # HTJ2K
    }
)
_JPEG_XL = frozenset(
    {
        uids.JPEGXLLossless,  # JPEG XL lossless
        uids.JPEGXLJPEGRecompression,  # JPEG XL JPEG recompression
        uids.JPEGXL,  # JPEG XL
    }
)
_RLE = uids.RLELossless
_PACKAGES = {
    "jpeg": "simplejpeg",
    "libjpeg": "pylibjpeg-libjpeg",
    "jpegls": "pyjpegls",
    "j2k": "imagecodecs",
    "jxl": "pillow-jxl-plugin",
    "rle": "pylibjpeg-rle",
}


@dataclass(frozen=True)
class PixelDescription:
    """How the pixels of one frame are laid out.

    Parameters
    ----------
    rows: int
        Rows of a frame
    columns: int
        Columns of a frame
    samples_per_pixel: int
        Samples per pixel
    bits_allocated: int
        Bits allocated per sample
    bits_stored: int
        Bits stored per sample
    pixel_representation: int
        0 for unsigned, 1 for signed integers
    photometric_interpretation: str
        Photometric Interpretation as stored
    planar_configuration: int
        Planar Configuration (0: interleaved, 1: planar)
    transfer_syntax_uid: str
        Transfer Syntax UID of the encoded frames
    float_pixels: bool
        Whether samples are IEEE floating point numbers (Float Pixel Data)

    """

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric_interpretation: str
    planar_configuration: int
    transfer_syntax_uid: str
    float_pixels: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        """Tuple[int, int, int]: shape of a decoded frame"""
        return (self.rows, self.columns, self.samples_per_pixel)

    @property
    def dtype(self) -> np.dtype:
        """numpy.dtype: data type of a decoded frame"""
        if self.float_pixels:
            return np.dtype(np.float32 if self.bits_allocated == 32 else np.float64)
        if self.bits_allocated <= 8:
            return np.dtype(np.uint8)
        kind = "i" if self.pixel_representation == 1 else "u"
        return np.dtype(f"{kind}{self.bits_allocated // 8}")

    @property
    def frame_nbytes(self) -> int:
        """int: number of bytes of a decoded frame"""
        return self.rows * self.columns * self.samples_per_pixel * self.dtype.itemsize


def _transfer_syntax_name(uid: str) -> str:
    name = UID(uid).name
    return f"{name} ({uid})" if name != uid else uid


def _load_pillow_jxl() -> bool:
    try:
        import pillow_jxl  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _family(transfer_syntax_uid: str) -> str:
    """Name the decoder family of a transfer syntax, or raise if unsupported."""
    if (
        transfer_syntax_uid in NATIVE_TRANSFER_SYNTAXES
        or transfer_syntax_uid == _ENCAPSULATED_UNCOMPRESSED
    ):
        return "native"
    if transfer_syntax_uid == _DEFLATED_IMAGE_FRAME:
        return "deflate"
    if transfer_syntax_uid in _JPEG_8BIT:
        return "jpeg"
    if transfer_syntax_uid in _JPEG_LOSSLESS:
        return "libjpeg"
    if transfer_syntax_uid in _JPEG_LS:
        return "jpegls"
    if transfer_syntax_uid in _JPEG_2000:
        return "j2k"
    if transfer_syntax_uid in _JPEG_XL:
        return "jxl"
    if transfer_syntax_uid == _RLE:
        return "rle"
    raise UnsupportedTransferSyntaxError(
        f"transfer syntax {_transfer_syntax_name(transfer_syntax_uid)} is not "
        "supported: no decoder is known for it",
        sop_instance_uid="?",
    )


def require_known_transfer_syntax(
    transfer_syntax_uid: str,
    sop_instance_uid: str,
    frame_number: int | None = None,
    detail: str = "",
) -> None:
    """Raise unless frames of a transfer syntax are known how to decode
    (whether or not the decoder is installed).

    Parameters
    ----------
    transfer_syntax_uid: str
        Transfer Syntax UID
    sop_instance_uid: str
        SOP Instance UID of the image, for the error message
    frame_number: Union[int, None], optional
        One-based frame number, for the error message
    detail: str, optional
        Said after the message

    Raises
    ------
    dicomslide.errors.UnsupportedTransferSyntaxError
        Naming the transfer syntax (UID, and name where pydicom knows it)

    """
    try:
        _family(transfer_syntax_uid)
    except UnsupportedTransferSyntaxError:
        raise UnsupportedTransferSyntaxError(
            f"transfer syntax {_transfer_syntax_name(transfer_syntax_uid)} is not "
            f"supported{detail}",
            sop_instance_uid,
            frame_number,
        ) from None


def is_supported_transfer_syntax(transfer_syntax_uid: str) -> bool:
    """Tell whether frames of a transfer syntax can be decoded here.

    Parameters
    ----------
    transfer_syntax_uid: str
        Transfer Syntax UID

    Returns
    -------
    bool
        Whether a decoder is available (for JPEG Extended, whose frames may
        hold 8 or 12 bits, both decoders)

    """
    try:
        family = _family(transfer_syntax_uid)
    except UnsupportedTransferSyntaxError:
        return False
    if transfer_syntax_uid == _JPEG_EXTENDED and not _decoder_available("libjpeg"):
        return False
    return _decoder_available(family)


@functools.cache
def _decoder_available(family: str) -> bool:
    modules = {
        "jpeg": "simplejpeg",
        "libjpeg": "libjpeg",
        "jpegls": "jpeg_ls",
        "j2k": "imagecodecs",
        "rle": "rle",
    }
    if family == "jxl":
        return _load_pillow_jxl()
    if family in modules:
        try:
            __import__(modules[family])
        except ImportError:
            return False
    return True


def _native(data: bytes, desc: PixelDescription) -> np.ndarray:
    if desc.bits_allocated == 1:
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
        count = desc.rows * desc.columns * desc.samples_per_pixel
        return bits[:count].reshape(desc.rows, desc.columns, desc.samples_per_pixel)
    dtype = desc.dtype
    if desc.transfer_syntax_uid == _BIG_ENDIAN:
        dtype = dtype.newbyteorder(">")
    count = desc.rows * desc.columns * desc.samples_per_pixel
    size = count * dtype.itemsize
    # One pad byte may follow (even length); other sizes are not native
    # frames of this layout, e.g. a server's mislabelled compressed frame.
    if len(data) not in (size, size + 1):
        raise ValueError(f"frame holds {len(data)} bytes, {size} expected")
    array = np.frombuffer(data, dtype, count=count)
    if desc.planar_configuration == 1 and desc.samples_per_pixel > 1:
        array = array.reshape(desc.samples_per_pixel, desc.rows, desc.columns)
        array = array.transpose(1, 2, 0)
    else:
        array = array.reshape(desc.shape)
    if desc.photometric_interpretation == "YBR_FULL":
        return _ycbcr_to_rgb(array)
    return array.astype(desc.dtype, copy=False)


def _ycbcr_to_rgb(array: np.ndarray) -> np.ndarray:
    ycc = array.astype(np.float32)
    y = ycc[..., 0]
    cb = ycc[..., 1] - 128.0
    cr = ycc[..., 2] - 128.0
    rgb = np.stack(
        [y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1
    )
    return cast("np.ndarray", np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def _pillow(data: bytes, desc: PixelDescription) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image)


def _by_simplejpeg(desc: PixelDescription) -> bool:
    return desc.bits_stored <= 8 and desc.transfer_syntax_uid in _JPEG_8BIT


def _decoder_family(desc: PixelDescription) -> str:
    """The decoder family of a frame: that of its transfer syntax, but
    pylibjpeg-libjpeg's for 12-bit JPEG Extended frames."""
    family = _family(desc.transfer_syntax_uid)
    if family == "jpeg" and not _by_simplejpeg(desc):
        return "libjpeg"
    return family


def _simplejpeg(
    data: bytes, desc: PixelDescription, out: np.ndarray | None = None
) -> np.ndarray:
    # simplejpeg (libjpeg-turbo) decodes straight into a NumPy array, or into
    # `out`, and releases the GIL, so the frames of one read decode in
    # parallel. strict: a stream libjpeg only warns about (corrupt entropy
    # data, premature end) is an error, not a silently damaged tile.
    import simplejpeg

    colorspace = "GRAY" if desc.samples_per_pixel == 1 else "RGB"
    return cast(
        "np.ndarray",
        simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=True, buffer=out),
    )


def _jpeg(data: bytes, desc: PixelDescription) -> np.ndarray:
    return _simplejpeg(data, desc)


def _libjpeg(data: bytes, desc: PixelDescription) -> np.ndarray:
    import libjpeg

    array = libjpeg.decode(data)  # type: ignore[attr-defined]
    if desc.samples_per_pixel == 3 and desc.photometric_interpretation.startswith(
        "YBR"
    ):
        return _ycbcr_to_rgb(array)
    return np.asarray(array)


def _jpegls(data: bytes, desc: PixelDescription) -> np.ndarray:
    import jpeg_ls

    return np.asarray(jpeg_ls.jlsread(data))


def _j2k(data: bytes, desc: PixelDescription) -> np.ndarray:
    # imagecodecs' OpenJPEG reads raw codestreams (what DICOM stores) and JP2
    # files (seen in the wild), inverts a multiple component transform, and
    # releases the GIL while decoding.
    import imagecodecs

    return imagecodecs.jpeg2k_decode(data)


def _jxl(data: bytes, desc: PixelDescription) -> np.ndarray:
    _load_pillow_jxl()
    return _pillow(data, desc)


def _rle(data: bytes, desc: PixelDescription) -> np.ndarray:
    from rle.rle import decode_frame as decode_rle

    planes = decode_rle(data, desc.rows * desc.columns, desc.bits_allocated, "<")
    # RLE stores one segment group per sample: the decoded data are planar
    return _native(bytes(planes), replace(desc, planar_configuration=1))


def _deflate(data: bytes, desc: PixelDescription) -> np.ndarray:
    return _native(zlib.decompress(data, -zlib.MAX_WBITS), desc)


_DECODERS: dict[str, Callable[[bytes, PixelDescription], np.ndarray]] = {
    "native": _native,
    "deflate": _deflate,
    "jpeg": _jpeg,
    "libjpeg": _libjpeg,
    "jpegls": _jpegls,
    "j2k": _j2k,
    "jxl": _jxl,
    "rle": _rle,
}


def _native_size(desc: PixelDescription) -> int:
    bits = desc.rows * desc.columns * desc.samples_per_pixel * desc.bits_allocated
    return -(-bits // 8)


def guess_transfer_syntax(data: bytes, desc: PixelDescription) -> str:
    """Tell the transfer syntax of an encoded frame from its bytes.

    The last resort, when neither the metadata nor the response name the
    transfer syntax.

    Parameters
    ----------
    data: bytes
        Encoded frame
    desc: dicomslide.codec.PixelDescription
        Layout of the frame's pixels

    Returns
    -------
    str
        Transfer Syntax UID ("" if the bytes match none)

    """
    if data[:2] == b"\xff\xd8":
        return _jpeg_syntax(data)
    if data[:4] == b"\xff\x4f\xff\x51" or data[4:8] == b"jP  ":
        # a CAP marker segment in the main header announces HTJ2K
        header_end = data.find(b"\xff\x90")
        has_cap = b"\xff\x50" in data[: header_end if header_end > 0 else 256]
        return uids.HTJ2K if has_cap else uids.JPEG2000
    if data[:2] == b"\xff\x0a" or data[4:8] == b"JXL ":
        return uids.JPEGXL
    if len(data) in (_native_size(desc), _native_size(desc) + 1):
        return uids.ExplicitVRLittleEndian
    if len(data) >= 64:
        segments, first = struct.unpack_from("<2I", data)
        if 1 <= segments <= 15 and first == 64:
            return _RLE
    return ""


def _jpeg_syntax(data: bytes) -> str:
    """JPEG process of a stream, from its start-of-frame marker."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker in (0xC0, 0xC1):
            return (
                uids.JPEGBaseline8Bit
                if data[position + 4] == 8
                else (uids.JPEGExtended12Bit)
            )
        if marker == 0xC3:
            return uids.JPEGLosslessSV1
        if marker == 0xF7:
            return uids.JPEGLSLossless
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        position += 2 + length
    return uids.JPEGBaseline8Bit


def decodes_into(desc: PixelDescription) -> bool:
    """Tell whether :func:`decode_frame` writes these frames into given memory.

    Parameters
    ----------
    desc: dicomslide.codec.PixelDescription
        Layout of the frames' pixels and their transfer syntax

    Returns
    -------
    bool
        Whether an `out` array is used (8-bit JPEG, decoded by simplejpeg)

    """
    return _by_simplejpeg(desc) and _decoder_available("jpeg")


def decode_frame(
    data: bytes,
    desc: PixelDescription,
    sop_instance_uid: str,
    frame_number: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode one encoded frame.

    Parameters
    ----------
    data: bytes
        Encoded frame, as stored in the Pixel Data element
    desc: dicomslide.codec.PixelDescription
        Layout of the frame's pixels and its transfer syntax
    sop_instance_uid: str
        SOP Instance UID of the image, for error messages
    frame_number: int
        One-based frame number within the instance, for error messages
    out: Union[numpy.ndarray, None], optional
        C-contiguous array of shape ``desc.shape`` and type ``desc.dtype`` to
        decode into, where :func:`decodes_into` says so (else it is not used)

    Returns
    -------
    numpy.ndarray
        Decoded frame of shape (rows, columns, samples) and type ``desc.dtype``
        (a view of `out` when it was decoded into)

    Raises
    ------
    dicomslide.errors.UnsupportedTransferSyntaxError
        When no decoder is installed for the transfer syntax
    dicomslide.errors.FrameDecodeError
        When the frame cannot be decoded or decodes to the wrong shape

    """
    uid = desc.transfer_syntax_uid or guess_transfer_syntax(data, desc)
    if uid in NATIVE_TRANSFER_SYNTAXES and len(data) < _native_size(desc):
        # Labelled native but too short: a server sent the stored encoded
        # bytes under a wrong label (seen with Orthanc). Trust the bytes.
        guess = guess_transfer_syntax(data, desc)
        if guess:
            logger.debug(
                "instance %s, frame %d: labelled %s but the bytes are %s",
                sop_instance_uid,
                frame_number,
                uid,
                guess,
            )
            uid = guess
    if uid != desc.transfer_syntax_uid:
        desc = replace(desc, transfer_syntax_uid=uid)
    require_known_transfer_syntax(uid, sop_instance_uid, frame_number)
    family = _decoder_family(desc)
    if not _decoder_available(family):
        raise UnsupportedTransferSyntaxError(
            f"transfer syntax {_transfer_syntax_name(uid)} needs a decoder: "
            f"install {_PACKAGES[family]}",
            sop_instance_uid,
            frame_number,
        )
    try:
        if out is not None and decodes_into(desc):
            array = _simplejpeg(data, desc, out)
        else:
            array = _DECODERS[family](data, desc)
    except Exception as error:
        raise FrameDecodeError(
            f"cannot decode {_transfer_syntax_name(uid)} frame "
            f"({len(data)} bytes): {error}",
            sop_instance_uid,
            frame_number,
        ) from error
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    expected = desc.shape
    if array.shape != expected:
        raise FrameDecodeError(
            f"decoded frame has shape {array.shape}, expected {expected}",
            sop_instance_uid,
            frame_number,
        )
    if array.dtype != desc.dtype:
        array = array.astype(desc.dtype)
    return array
