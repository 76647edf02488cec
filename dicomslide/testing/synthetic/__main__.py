"""Command line: ``python -m dicomslide.testing.synthetic PRESET FOLDER``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydicom.uid import UID

from dicomslide.testing.synthetic.presets import PRESETS, write_slide
from dicomslide.testing.synthetic.syntaxes import (
    _JPEG_XL_NAMES,
    encodable_transfer_syntaxes,
)


def iter_preset_descriptions() -> Iterator[tuple[str, str]]:
    """Yield ``(name, description)`` of every preset.

    Yields
    ------
    tuple[str, str]
        Preset name and description.
    """
    for key, preset in PRESETS.items():
        yield key, preset.description


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: write a preset slide to a folder.

    Parameters
    ----------
    argv : sequence of str or None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m dicomslide.testing.synthetic",
        description="Write a synthetic DICOM VL Whole Slide Microscopy slide.",
        epilog="Presets: "
        + "; ".join(f"{k}: {d}" for k, d in iter_preset_descriptions()),
    )
    parser.add_argument(
        "preset", nargs="?", choices=sorted(PRESETS), help="preset to write"
    )
    parser.add_argument("folder", nargs="?", type=Path, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="content seed")
    parser.add_argument(
        "--transfer-syntax",
        default=None,
        help="override the VOLUME transfer syntax UID",
    )
    parser.add_argument(
        "--icc",
        choices=["srgb", "wide"],
        default=None,
        help="ICC profile for RGB images",
    )
    parser.add_argument(
        "--uid-names", action="store_true", help="name files by SOP Instance UID"
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list presets and encodable transfer syntaxes",
    )
    args = parser.parse_args(argv)
    if args.list:
        for key, desc in iter_preset_descriptions():
            print(f"{key:24s} {desc}")
        print("\nencodable transfer syntaxes:")
        for ts in encodable_transfer_syntaxes():
            title = _JPEG_XL_NAMES[ts][0] if ts in _JPEG_XL_NAMES else UID(ts).name
            print(f"  {ts:26s} {title}")
        return 0
    if args.preset is None or args.folder is None:
        parser.error("preset and folder are required (or use --list)")
    slide = write_slide(
        args.folder,
        args.preset,
        seed=args.seed,
        transfer_syntax=args.transfer_syntax,
        icc=args.icc if args.icc is not None else "preset",
        file_names="uid" if args.uid_names else "flavor",
    )
    for f in slide.files:
        print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
