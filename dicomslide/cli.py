"""The ``dicomslide`` command line: look at slides before writing code.

::

    dicomslide ls SOURCE
    dicomslide info SOURCE [--container ID]
    dicomslide region SOURCE --level L --offset X Y --size WIDTH HEIGHT [-o out.png]
    dicomslide thumbnail SOURCE [--size 512] [-o thumbnail.png]
    dicomslide label SOURCE [-o label.png]
    dicomslide overview SOURCE [-o overview.png]
    dicomslide serve SOURCE [--host 127.0.0.1] [--port 8000]

SOURCE is a local folder, one file of a slide, or a DICOMweb URL
(``--user``/``--password`` or ``--token`` for authentication; the password may
also come from the ``DICOMSLIDE_PASSWORD`` environment variable).

The command line speaks OpenSlide's language: positions are x (to the right)
and y (down) in pixels of level 0, sizes are width x height, and every pair it
prints is labelled. (The Python API uses NumPy's (row, column) order.)

Errors are one line on standard error; exit codes: 0 success, 1 error, 2 bad
usage (a bad argument is named), 3 nothing found.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3

_EXAMPLES = """\
examples:
  dicomslide ls data/sample
  dicomslide info data/sample
  dicomslide region data/sample --level 1 --offset 1500 1000 --size 768 512
  dicomslide thumbnail data/sample --size 1024 -o thumbnail.png
  dicomslide ls https://host/dicom-web --token TOKEN
  dicomslide serve data/sample

Positions are x y in pixels of level 0, sizes width height (OpenSlide's
order); exit codes: 0 success, 1 error, 2 bad usage, 3 nothing found.
"""


class CommandError(Exception):
    """An error the command line reports in one line."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class _HelpFormatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Help with examples as written and the defaults of the options."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"dicomslide: error: {message} (see '{self.prog} --help')\n",
        )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip().lstrip("+"):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number, got {text!r}"
        ) from None


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


def _source(args: argparse.Namespace) -> Any:
    source = args.source
    if source.startswith(("http://", "https://")):
        from dicomslide.client import open_web_client
        from dicomslide.transport import new_session

        session = new_session()
        password = args.password or os.environ.get("DICOMSLIDE_PASSWORD")
        if args.user:
            session.auth = (args.user, password or "")
        if args.token:
            session.headers["Authorization"] = f"Bearer {args.token}"
        return open_web_client(source, session)
    from dicomslide.urls import is_object_url

    if is_object_url(source):
        return source
    if not os.path.exists(source):
        raise CommandError(f"no such file or folder: {source}", EXIT_NOT_FOUND)
    return source  # a folder, or one file of the slide to open


def _storage_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The --storage-option KEY=VALUE pairs (a VALUE that is JSON is parsed:
    numbers, true/false, objects), else None (DICOMSLIDE_STORAGE_OPTIONS)."""
    pairs = getattr(args, "storage_option", None)
    if not pairs:
        return None
    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            raise CommandError(f"--storage-option takes KEY=VALUE, got {key!r}")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


def _slides(args: argparse.Namespace) -> list[Any]:
    import dicomslide

    container = getattr(args, "container", None)
    with _progress(0, "finding slides") as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        slides = dicomslide.find_slides(
            _source(args),
            storage_options=_storage_options(args),
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
        names = ", ".join(sorted(s.container_id or "(none)" for s in slides))
        raise CommandError(
            f"several slides found ({names}): choose one with --container",
            EXIT_USAGE,
        )
    return slides[0]


def _table(rows: Sequence[Sequence[Any]]) -> Iterator[str]:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        yield "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()


def _size(rows_columns: tuple[int, int]) -> str:
    """A (rows, columns) size as OpenSlide users read it."""
    return f"{rows_columns[1]} x {rows_columns[0]}"


def _derived_channels(slide: Any) -> list[int]:
    from dicomslide.enum import ChannelTypes

    return [
        i
        for i in range(slide.num_channels)
        if slide.get_channel_type(i) != ChannelTypes.OPTICAL_PATH
    ]


def _ls(args: argparse.Namespace) -> None:
    rows: list[Sequence[Any]] = [
        (
            "CONTAINER",
            "LEVELS",
            "SIZE (W x H px)",
            "µm/px",
            "OPTICAL PATHS",
            "FOCAL PLANES",
            "DERIVED CHANNELS",
        )
    ]
    for slide in _slides(args):
        derived = len(_derived_channels(slide))
        rows.append(
            (
                slide.container_id or "-",
                slide.num_levels,
                _size(slide.size),
                f"{slide.microns_per_pixel[0][0]:.3f}",
                slide.num_channels - derived,
                slide.num_focal_planes,
                derived,
            )
        )
    print("\n".join(_table(rows)))


def _levels_of(slide: Any, channel: int) -> list[int]:
    levels = []
    for level in range(slide.num_levels):
        try:
            slide.get_image(level, channel)
        except ValueError:
            continue
        levels.append(level)
    return levels


def _describe_channel(slide: Any, index: int) -> str:
    """What a channel shows, its series, levels and values, in one line."""
    from dicomslide.channels import channel_item

    channel_type = slide.get_channel_type(index)
    kind = channel_type.value
    identifier = slide.get_channel_identifier(index)
    metadata = slide.get_volume_images(index)[0].metadata
    item = channel_item(metadata, channel_type, identifier)
    if kind == "OPTICAL_PATH":
        description = item.get("OpticalPathDescription", "") if item else ""
        return f"{kind} {identifier}" + (f" {description!r}" if description else "")
    levels = ", ".join(str(level) for level in _levels_of(slide, index))
    series = f"series {metadata.SeriesNumber or '-'} ({metadata.SeriesInstanceUID})"
    if kind == "SEGMENT":
        label = item.get("SegmentLabel", "") if item else ""
        kind_of = str(metadata.get("SegmentationType", ""))
        maximum = (
            int(metadata.get("MaximumFractionalValue", 255))
            if kind_of == "FRACTIONAL"
            else 1
        )
        values = f"{kind_of.lower() or 'binary'} 0-{maximum}"
    else:
        mappings = metadata.get("RealWorldValueMappingSequence") or [{}]
        mapping = mappings[0]
        label = str(mapping.get("LUTLabel", "") or mapping.get("LUTExplanation", ""))
        units = mapping.get("MeasurementUnitsCodeSequence") or []
        values = "real-world values" + (
            f" in {units[0].get('CodeMeaning', '')}" if units else ""
        )
    name = f" {label!r}" if label else ""
    return f"{kind} {identifier}{name}, {series}, levels {levels}, {values}"


def _info(args: argparse.Namespace) -> None:
    slide = _one_slide(args)
    base = slide.get_volume_images()[0].metadata
    print(f"container:          {slide.container_id or '-'}")
    print(f"study:              {base.get('StudyInstanceUID', '-')}")
    print(f"series:             {base.get('SeriesInstanceUID', '-')}")
    print(f"frame of reference: {slide.frame_of_reference_uid or '-'}")
    x, y = slide.physical_offset
    width, height = slide.physical_size
    print(
        f"area on the slide:  {width:.3f} mm wide (x) x {height:.3f} mm high (y), "
        f"from x {x:.3f} mm, y {y:.3f} mm"
    )
    power = slide.objective_power
    print(f"objective power:    {f'{power:g}x' if power else '-'}")
    print("levels:")
    rows: list[Sequence[Any]] = [
        (
            "  LEVEL",
            "SIZE (W x H px)",
            "µm/px (x, y)",
            "DOWNSAMPLE",
            "TILE (W x H px)",
            "FRAMES",
        )
    ]
    for level, image in enumerate(slide.get_volume_images()):
        mpp_x, mpp_y = slide.microns_per_pixel[level]
        matrix = image.get_total_pixel_matrix()
        rows.append(
            (
                f"  {level}",
                _size(image.size),
                f"{mpp_x:.3f}, {mpp_y:.3f}",
                f"{slide.downsampling_factors[level]:g}",
                _size(matrix.tile_shape),
                image.num_frames,
            )
        )
    print("\n".join(_table(rows)))
    derived = _derived_channels(slide)
    print("channels:")
    for index in range(slide.num_channels):
        if index not in derived:
            print(f"  {index}: {_describe_channel(slide, index)}")
    if derived:
        print("derived channels:")
        for index in derived:
            print(f"  {index}: {_describe_channel(slide, index)}")
    offsets = [slide.get_focal_plane_offset(i) for i in range(slide.num_focal_planes)]
    print("focal planes (µm): " + ", ".join(f"{z:g}" for z in offsets))
    icc = slide.get_volume_images()[0].icc_profile
    print(f"ICC profile:        {f'{len(icc)} bytes' if icc else 'none'}")
    for name, images in (
        ("label", slide.label_images),
        ("overview", slide.overview_images),
    ):
        for image in images:
            print(f"{name + ' image:':20}{_size(image.size)} px (W x H)")


def _picture(pixels: np.ndarray, slide: Any, channel: int) -> tuple[np.ndarray, str]:
    """8-bit pixels to write for a channel, and what their values mean."""
    from dicomslide.enum import ChannelTypes

    kind = slide.get_channel_type(channel)
    array = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
    if kind == ChannelTypes.SEGMENT:
        metadata = slide.get_volume_images(channel)[0].metadata
        maximum = 1
        if metadata.get("SegmentationType") == "FRACTIONAL":
            maximum = int(metadata.get("MaximumFractionalValue", 255))
        scaled = np.round(array.astype(np.float64) * (255.0 / maximum))
        return scaled.astype(np.uint8), f"mask 0-{maximum} written as 0-255"
    if kind == ChannelTypes.PARAMETER or array.dtype != np.uint8:
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 0.0
        span = high - low or 1.0
        clean = np.nan_to_num(array.astype(np.float64), nan=low)
        scaled = np.round((clean - low) * (255.0 / span))
        return (
            np.clip(scaled, 0, 255).astype(np.uint8),
            f"values {low:g} to {high:g} written as 0-255",
        )
    return array, ""


def _save(pixels: np.ndarray, path: str, note: str = "") -> None:
    from PIL import Image

    array = pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    Image.fromarray(array).save(path)
    height, width = array.shape[:2]
    print(f"wrote {path} ({width} x {height} px, W x H{'; ' + note if note else ''})")


def _output(args: argparse.Namespace, slide: Any) -> str:
    if args.output:
        return str(args.output)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", slide.container_id or "slide")
    return f"{name}-{args.command}.png"


def _check_index(value: int, count: int, what: str, option: str) -> None:
    if not -count <= value < count:
        raise CommandError(
            f"{option} {value} is out of range: the slide has {count} {what} "
            f"(0 to {count - 1})",
            EXIT_USAGE,
        )


def _check_channel(args: argparse.Namespace, slide: Any) -> None:
    _check_index(args.channel, slide.num_channels, "channels", "--channel")
    planes = getattr(args, "focal_plane", 0)
    _check_index(planes, slide.num_focal_planes, "focal planes", "--focal-plane")


def _region(args: argparse.Namespace) -> None:
    slide = _one_slide(args)
    _check_index(args.level, slide.num_levels, "levels", "--level")
    _check_channel(args, slide)
    levels = _levels_of(slide, args.channel)
    level = args.level % slide.num_levels
    if level not in levels:
        raise CommandError(
            f"channel {args.channel} has no image at level {args.level}; its levels "
            f"are {', '.join(str(v) for v in levels)}",
            EXIT_USAGE,
        )
    x, y = args.offset
    width, height = args.size
    factors = slide.pyramid[level].downsampling_factors
    band = max(1, 4096 * 4096 // width)
    parts = []
    with _progress(height, "reading") as bar:
        for start in range(0, height, band):
            rows = min(band, height - start)
            parts.append(
                slide.get_image_region(
                    (y + int(round(start * factors[0])), x),
                    level,
                    (rows, width),
                    args.channel,
                    args.focal_plane,
                )
            )
            bar.update(rows)
    pixels, note = _picture(np.concatenate(parts), slide, args.channel)
    _save(pixels, _output(args, slide), note)


def _thumbnail(args: argparse.Namespace) -> None:
    from PIL import Image

    slide = _one_slide(args)
    _check_channel(args, slide)
    levels = _levels_of(slide, args.channel)
    dimensions = slide.total_pixel_matrix_dimensions
    large = [v for v in levels if max(dimensions[v]) >= args.size] or levels[:1]
    level = max(large)
    pixels = slide.get_image_region((0, 0), level, dimensions[level], args.channel)
    array, note = _picture(pixels, slide, args.channel)
    picture = Image.fromarray(array)
    picture.thumbnail((args.size, args.size), Image.Resampling.LANCZOS)
    _save(np.asarray(picture), _output(args, slide), note)


def _associated(args: argparse.Namespace) -> None:
    slide = _one_slide(args)
    images = slide.label_images if args.command == "label" else slide.overview_images
    if not images:
        raise CommandError(
            f"slide {slide.container_id!r} has no {args.command} image",
            EXIT_NOT_FOUND,
        )
    image = images[0]
    _save(image.get_image_region((0, 0), image.size), _output(args, slide))


def _serve(args: argparse.Namespace) -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise CommandError(
            f"dicomslide serve needs starlette and uvicorn, the 'serve' extra "
            f"({error.name} is missing): pip install starlette uvicorn"
        ) from None
    from dicomslide.serve import serve

    slides = _slides(args)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"dicomslide: serving {len(slides)} slide{'s' if len(slides) != 1 else ''} "
        f"of {args.source}: open http://{host}:{args.port}/ in a browser "
        "(Ctrl+C stops)",
        flush=True,
    )
    serve(slides, args.host, args.port, native=not args.no_native)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser.

    Returns
    -------
    argparse.ArgumentParser
        Parser of the ``dicomslide`` command

    """
    from dicomslide.version import __version__

    parser = _Parser(
        prog="dicomslide",
        description="Look at DICOM whole slide images in a folder, a file or a "
        "DICOMweb archive.",
        epilog=_EXAMPLES,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens (requests too)"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    def command(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {example}",
            formatter_class=_HelpFormatter,
        )
        sub.add_argument(
            "source",
            help="local folder, one file of a slide, DICOMweb URL, or URL of "
            "object storage (s3://bucket/prefix/, gs://...)",
        )
        sub.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log what happens (requests too)",
        )
        access = sub.add_argument_group("DICOMweb authentication")
        access.add_argument("--user", help="user name for HTTP basic authentication")
        access.add_argument("--password", help="password (or set DICOMSLIDE_PASSWORD)")
        access.add_argument("--token", help="bearer token")
        storage = sub.add_argument_group("object storage (s3://, gs://, ...)")
        storage.add_argument(
            "--storage-option",
            action="append",
            metavar="KEY=VALUE",
            help="option of the fsspec filesystem, e.g. anon=true or "
            "endpoint_url=http://127.0.0.1:9000 (repeat for more; default: "
            "the JSON object in DICOMSLIDE_STORAGE_OPTIONS)",
        )
        if name != "ls":
            sub.add_argument(
                "--container", help="container (slide) identifier of the slide to use"
            )
        return sub

    command("ls", "list the slides found", "dicomslide ls data/sample")
    command("info", "describe one slide", "dicomslide info data/sample")
    region = command(
        "region",
        "write a region of a level as a picture",
        "dicomslide region data/sample --level 1 --offset 1500 1000 --size 768 512",
    )
    region.add_argument(
        "--level", type=_whole, default=0, help="pyramid level (0 is the largest)"
    )
    region.add_argument(
        "--offset",
        type=_whole,
        nargs=2,
        metavar=("X", "Y"),
        default=(0, 0),
        help="top left corner in pixels of level 0: x to the right, y down",
    )
    region.add_argument(
        "--size",
        type=_positive,
        nargs=2,
        metavar=("WIDTH", "HEIGHT"),
        required=True,
        help="width and height in pixels of the level",
    )
    thumbnail = command(
        "thumbnail",
        "write a thumbnail of the slide",
        "dicomslide thumbnail data/sample --size 1024",
    )
    thumbnail.add_argument(
        "--size",
        type=_positive,
        default=512,
        help="longest side in pixels (at most the size of level 0)",
    )
    label = command("label", "write the label image", "dicomslide label data/sample")
    overview = command(
        "overview",
        "write the overview (macro) image",
        "dicomslide overview data/sample",
    )
    for sub in (region, thumbnail):
        sub.add_argument(
            "--channel",
            type=_whole,
            default=0,
            help="channel index (see 'dicomslide info'): optical paths first, then "
            "segments and parametric maps",
        )
        sub.add_argument(
            "--raw-colors", action="store_true", help="do not apply the ICC profile"
        )
    region.add_argument(
        "--focal-plane",
        type=_whole,
        default=0,
        help="focal plane index (see 'dicomslide info')",
    )
    serve = command(
        "serve",
        "show the slides in a web browser (a Deep Zoom viewer)",
        "dicomslide serve data/sample --port 8000",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (loopback)"
    )
    serve.add_argument("--port", type=_whole, default=8000, help="port to listen on")
    serve.add_argument(
        "--no-native",
        action="store_true",
        help="render every tile, never send stored JPEG frames as they are",
    )
    serve.set_defaults(raw_colors=True)  # tiles hold the stored colours
    for sub in (region, thumbnail, label, overview):
        sub.add_argument(
            "-o",
            "--output",
            help="picture file (.png, .jpg, ...); default: CONTAINER-COMMAND.png",
        )
    return parser


_COMMANDS = {
    "ls": _ls,
    "info": _info,
    "region": _region,
    "thumbnail": _thumbnail,
    "label": _associated,
    "overview": _associated,
    "serve": _serve,
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
