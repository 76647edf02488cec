"""The ``dicomslide`` command line: look at slides before writing code.

::

    dicomslide ls SOURCE
    dicomslide info SOURCE [--container ID]
    dicomslide region SOURCE --container ID --level L --offset R C --size H W -o out.png
    dicomslide thumbnail SOURCE --container ID --size 512 -o thumb.png
    dicomslide label SOURCE --container ID -o label.png

SOURCE is a local folder or a DICOMweb URL (``--user``/``--password`` or
``--token`` for authentication; the password may also come from the
``DICOMSLIDE_PASSWORD`` environment variable). Errors are one line on
standard error; exit codes: 0 success, 1 error, 2 bad usage, 3 nothing found.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3


class CommandError(Exception):
    """An error the command line reports in one line."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _progress(total: int, description: str) -> Any:
    """A progress bar on a terminal, nothing otherwise."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="",
        leave=False,
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
    )


def _client(args: argparse.Namespace) -> Any:
    source = args.source
    if source.startswith(("http://", "https://")):
        import requests

        from dicomslide.client import open_web_client

        session = requests.Session()
        password = args.password or os.environ.get("DICOMSLIDE_PASSWORD")
        if args.user:
            session.auth = (args.user, password or "")
        if args.token:
            session.headers["Authorization"] = f"Bearer {args.token}"
        return open_web_client(source, session)
    if not os.path.exists(source):
        raise CommandError(f"no such file or folder: {source}", EXIT_NOT_FOUND)
    return source  # a folder, or one file of the slide to open


def _slides(args: argparse.Namespace) -> list[Any]:
    import dicomslide

    container = getattr(args, "container", None)
    with _progress(0, "finding slides") as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        slides = dicomslide.find_slides(
            _client(args),
            container_id=container,
            correct_color=not getattr(args, "raw_colors", False),
            progress=advance,
        )
    if not slides:
        what = f"slide {container!r}" if container else "slides"
        raise CommandError(f"no {what} found in {args.source}", EXIT_NOT_FOUND)
    return slides


def _one_slide(args: argparse.Namespace) -> Any:
    slides = _slides(args)
    if len(slides) > 1:
        names = ", ".join(sorted(s.container_id for s in slides))
        raise CommandError(
            f"several slides found ({names}): choose one with --container"
        )
    return slides[0]


def _table(rows: Sequence[Sequence[Any]]) -> Iterator[str]:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        yield "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()


def _derived_count(slide: Any) -> int:
    from dicomslide.enum import ChannelTypes

    return sum(
        1
        for i in range(slide.num_channels)
        if slide.get_channel_type(i) != ChannelTypes.OPTICAL_PATH
    )


def _ls(args: argparse.Namespace) -> None:
    rows: list[Sequence[Any]] = [
        (
            "CONTAINER",
            "LEVELS",
            "SIZE (W x H)",
            "µm/px",
            "CHANNELS",
            "PLANES",
            "DERIVED",
        )
    ]
    for slide in _slides(args):
        rows_, columns = slide.size
        rows.append(
            (
                slide.container_id or "-",
                slide.num_levels,
                f"{columns} x {rows_}",
                f"{slide.pixel_spacings[0][0] * 1000:.3f}",
                slide.num_channels - _derived_count(slide),
                slide.num_focal_planes,
                _derived_count(slide),
            )
        )
    print("\n".join(_table(rows)))


def _info(args: argparse.Namespace) -> None:
    slide = _one_slide(args)
    base = slide.get_volume_images()[0].metadata
    print(f"container:          {slide.container_id}")
    print(f"study:              {base.get('StudyInstanceUID', '-')}")
    print(f"series:             {base.get('SeriesInstanceUID', '-')}")
    print(f"frame of reference: {slide.frame_of_reference_uid or '-'}")
    x, y = slide.physical_offset
    width, height = slide.physical_size
    print(f"area on the slide:  {width:.3f} x {height:.3f} mm at ({x:.3f}, {y:.3f}) mm")
    print("levels:")
    rows: list[Sequence[Any]] = [
        ("  LEVEL", "SIZE (W x H)", "µm/px", "DOWNSAMPLE", "TILE", "FRAMES")
    ]
    for level, image in enumerate(slide.get_volume_images()):
        matrix = image.get_total_pixel_matrix()
        rows.append(
            (
                f"  {level}",
                f"{image.size[1]} x {image.size[0]}",
                f"{slide.pixel_spacings[level][0] * 1000:.3f}",
                f"{slide.downsampling_factors[level]:g}",
                f"{matrix.tile_shape[1]} x {matrix.tile_shape[0]}",
                image.num_frames,
            )
        )
    print("\n".join(_table(rows)))
    print("channels:")
    for index in range(slide.num_channels):
        kind = slide.get_channel_type(index).value
        print(f"  {index}: {kind} {slide.get_channel_identifier(index)}")
    offsets = [slide.get_focal_plane_offset(i) for i in range(slide.num_focal_planes)]
    print("focal planes (µm): " + ", ".join(f"{z:g}" for z in offsets))
    icc = slide.get_volume_images()[0].icc_profile
    print(f"ICC profile:        {f'{len(icc)} bytes' if icc else 'none'}")
    for name, images in (
        ("label", slide.label_images),
        ("overview", slide.overview_images),
    ):
        for image in images:
            print(f"{name + ' image:':20}{image.size[1]} x {image.size[0]} px")


def _save(pixels: np.ndarray, path: str) -> None:
    from PIL import Image

    array = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    if array.dtype != np.uint8:
        raise CommandError(
            f"the image has {array.dtype} samples; "
            "only 8-bit images are written as pictures"
        )
    Image.fromarray(array).save(path)
    print(f"wrote {path} ({pixels.shape[1]} x {pixels.shape[0]} px)")


def _region(args: argparse.Namespace) -> None:
    slide = _one_slide(args)
    rows, columns = args.size
    if rows < 0 or columns < 0:
        raise CommandError("--size must not be negative", EXIT_USAGE)
    band = max(1, 4096 * 4096 // max(columns, 1))
    parts = []
    with _progress(rows, "reading") as bar:
        for start in range(0, rows, band):
            height = min(band, rows - start)
            factors = slide.pyramid[args.level].downsampling_factors
            offset = (
                args.offset[0] + int(round(start * factors[0])),
                args.offset[1],
            )
            parts.append(
                slide.get_image_region(
                    offset,
                    args.level,
                    (height, columns),
                    args.channel,
                    args.focal_plane,
                )
            )
            bar.update(height)
    _save(
        np.concatenate(parts) if parts else np.zeros((0, columns, 3), np.uint8),
        args.output,
    )


def _thumbnail(args: argparse.Namespace) -> None:
    from PIL import Image

    slide = _one_slide(args)
    size = args.size
    level = slide.num_levels - 1
    for candidate, (rows, columns) in enumerate(slide.total_pixel_matrix_dimensions):
        if max(rows, columns) >= size:
            level = candidate
    pixels = slide.get_image_region(
        (0, 0), level, slide.total_pixel_matrix_dimensions[level], args.channel
    )
    array = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    picture = Image.fromarray(array)
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    _save(np.atleast_3d(np.asarray(picture)), args.output)


def _label(args: argparse.Namespace) -> None:
    slide = _one_slide(args)
    if not slide.label_images:
        raise CommandError(
            f"slide {slide.container_id!r} has no label image", EXIT_NOT_FOUND
        )
    image = slide.label_images[0]
    _save(image.get_image_region((0, 0), image.size), args.output)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser.

    Returns
    -------
    argparse.ArgumentParser
        Parser of the ``dicomslide`` command

    """
    from dicomslide.version import __version__

    parser = argparse.ArgumentParser(
        prog="dicomslide", description="Look at DICOM whole slide images."
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, container: bool) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("source", help="local folder or DICOMweb URL")
        sub.add_argument("--user", help="user name for HTTP basic authentication")
        sub.add_argument("--password", help="password (or set DICOMSLIDE_PASSWORD)")
        sub.add_argument("--token", help="bearer token for authentication")
        if container:
            sub.add_argument("--container", help="container (slide) identifier")
        return sub

    command("ls", "list the slides found", container=False)
    command("info", "describe one slide", container=True)
    region = command("region", "write a region of a level as a picture", container=True)
    region.add_argument("--level", type=int, default=0)
    region.add_argument(
        "--offset",
        type=int,
        nargs=2,
        metavar=("ROW", "COLUMN"),
        default=(0, 0),
        help="offset in level-0 pixels",
    )
    region.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        required=True,
        help="size in pixels of the level",
    )
    thumbnail = command("thumbnail", "write a thumbnail of the slide", container=True)
    thumbnail.add_argument(
        "--size", type=int, default=512, help="longest side in pixels"
    )
    label = command("label", "write the label image", container=True)
    for sub in (region, thumbnail):
        sub.add_argument("--channel", type=int, default=0)
        sub.add_argument(
            "--raw-colors", action="store_true", help="do not apply the ICC profile"
        )
    region.add_argument("--focal-plane", type=int, default=0)
    for sub in (region, thumbnail, label):
        sub.add_argument(
            "-o", "--output", required=True, help="picture file (.png, .jpg, ...)"
        )
    return parser


_COMMANDS = {
    "ls": _ls,
    "info": _info,
    "region": _region,
    "thumbnail": _thumbnail,
    "label": _label,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv: Union[Sequence[str], None], optional
        Arguments (default: ``sys.argv[1:]``)

    Returns
    -------
    int
        Exit code

    """
    from dicomslide.errors import DicomSlideError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG)
    else:
        # what dicomslide skipped or repaired, not other libraries' chatter
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s: %(message)s")
        logging.getLogger("dicomslide").setLevel(logging.WARNING)
    try:
        _COMMANDS[args.command](args)
    except CommandError as error:
        print(f"dicomslide: error: {error}", file=sys.stderr)
        return error.code
    except (DicomSlideError, ValueError, IndexError, OSError) as error:
        print(f"dicomslide: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    return EXIT_OK
