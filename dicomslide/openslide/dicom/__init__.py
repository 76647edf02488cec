"""OpenSlide 4.0.1's DICOM driver, in pure Python over :mod:`dicomslide`.

:class:`DicomBackend` implements :class:`dicomslide.openslide._backend.SlideBackend`
for DICOM VL Whole Slide Microscopy images, found in local files or over DICOMweb.
On every slide OpenSlide 4.0.1 opens it reports what OpenSlide reports and returns
the pixels OpenSlide returns; it also opens slides OpenSlide refuses.

What OpenSlide does, and how it is reproduced here
--------------------------------------------------
Levels
    The VOLUME images of the first optical path and the lowest focal plane, largest
    first. A level's downsample is ``(h0 / h + w0 / w) / 2`` (level 0: 1).
    THUMBNAIL, LABEL and OVERVIEW images are the associated images ``thumbnail``,
    ``label`` and ``macro``.
``openslide.*`` properties
    Vendor ``dicom``; level count and geometry; ``mpp-y`` / ``mpp-x`` from
    PixelSpacing[0] / [1] of the shared functional groups times 1000;
    ``objective-power`` from OpticalPathSequence[0].ObjectiveLensPower;
    ``barcode`` from BarcodeValue; ICC profile sizes; associated image sizes
    (:mod:`.properties`). Numbers are written as C's ``%.17g`` (GLib's
    ``g_ascii_dtostr``). ``quickhash-1`` is the SHA-256 of the level-0 Series
    Instance UID followed by its terminating NUL byte: OpenSlide hashes nothing
    but the series UID, so the hash is stable and equal to OpenSlide's.
``dicom.*`` properties
    The file meta information and the "metadata subset" of the level-0 file as
    libdicom 1.3 reads them (:mod:`.libdicom`), flattened: ``dicom.Keyword``,
    ``Keyword[i]`` for the values of a multi-valued element,
    ``Sequence[i].Keyword`` for items. The subset stops at the first of
    ReferencedImageNavigationSequence,
    PerFrameFunctionalGroupsSequence, ExtendedOffsetTable or pixel data: what
    follows in the file is not reported. Values are formatted by value class:
    strings as stored (libdicom drops one trailing white-space character, except
    for UI; AE, CS, DS, DT, PN, SH, TM, UI and UC are split at backslashes, the
    other string VRs are not), binary integers in decimal (AT as two 16-bit
    numbers), FL/FD as ``%.17g``; binary data, private tags, group lengths,
    repeating groups and tags newer than libdicom's dictionary are left out (the
    dictionary is pydicom's less the tags listed in ``_UNKNOWN_TO_LIBDICOM``,
    found by reading every tag of pydicom's dictionary with OpenSlide 4.0.1).
    Of a level-0 concatenation the first instance is reported, whichever file was
    opened, as OpenSlide does. Local files are re-read for this, so that the
    bytes are libdicom's; over DICOMweb there are no file bytes, see below.
Pixels
    OpenSlide paints the tiles of a level with cairo: tile by tile from the last
    (bottom right) to the first, with the SATURATE operator, each translated by
    its position minus ``location / downsample``. Where that translation is a
    whole number of pixels the tiles are copied. Where it is not, pixman samples
    every tile with its bilinear filter in single-precision floats (SATURATE
    needs pixman's float pipeline) and rounds down on the way back to 8 bits;
    tile edges and the image edge (tiles are cleared past the image) come out
    partly transparent. :func:`.painting.paint_area` reproduces this arithmetic exactly,
    including the 4096-pixel areas a large read is split into and the whole-pixel
    shift OpenSlide applies to negative locations. The result is premultiplied
    ARGB, which is un-premultiplied as openslide-python does.

Where this backend differs (on purpose)
---------------------------------------
* It opens what OpenSlide refuses: any transfer syntax dicomslide decodes
  (implicit VR, HTJ2K, JPEG-LS, JPEG XL, ...), concatenations, sparse tiling,
  files without DimensionOrganizationType, several focal planes (the lowest is
  shown) and several optical paths (the first RGB one is shown). 8-bit
  MONOCHROME2 images are shown as grey. Images that cannot be shown as 8-bit RGBA
  (more than 8 bits per sample, several monochrome channels) raise
  :class:`OpenSlideUnsupportedFormatError` naming the reason.
* Associated images are read whole (OpenSlide decodes frame 1 only and fails on
  tiled associated images) and are not filtered by the first and fourth values
  of ImageType. The first LABEL / OVERVIEW / THUMBNAIL image of the slide is
  used where OpenSlide would fail on duplicates. They are found when first
  asked for (their names, pixels or profiles, or the properties), not when the
  slide is opened: reading the levels never waits for them.
* A slide is what :func:`dicomslide.find_slides` groups (container and frame of
  reference), not a Series Instance UID in one directory; the folder of a file
  is searched recursively.
* Over DICOMweb, the ``dicom.*`` values are rebuilt from the metadata: DS and IS
  values are the numbers' text (no stored padding), and of the file meta
  information only MediaStorageSOPClassUID, MediaStorageSOPInstanceUID and (when
  the server says) TransferSyntaxUID are known. Attributes that only a DICOMweb
  server adds (AvailableTransferSyntaxUID, RetrieveURL, ...) are left out.
* A folder holding several slides is refused (their container identifiers are
  named); a file names its slide.
* As in OpenSlide, a file whose image cannot be laid out (Rows, Columns or the
  total pixel matrix size out of range, or frames that do not fill a TILED_FULL
  matrix) is left out of its slide with a warning, and opening that file
  itself raises :class:`OpenSlideError`. A file whose transfer syntax is
  unknown opens (OpenSlide refuses it); reading its level raises
  :class:`OpenSlideError` naming the syntax.

``get_best_level_for_downsample`` compares exactly as OpenSlide 4.0.1 does (it has
no tolerance): a downsample below a level's, by any amount, selects the level
before it.

The modules
-----------
:mod:`.sources` finds the slide of a file or folder; :mod:`.levels` makes its
levels and associated images; :mod:`.painting` paints fractional reads;
:mod:`.libdicom` and :mod:`.properties` make the properties; :mod:`.backend`
holds the slide object.
"""

from dicomslide.openslide.dicom.backend import DicomBackend

__all__ = ["DicomBackend"]
