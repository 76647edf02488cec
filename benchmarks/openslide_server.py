"""The comparison server of :mod:`benchmarks.serve`: openslide-python's Deep Zoom.

A minimal Deep Zoom server of ours on the same stack as ``dicomslide serve``
(a Starlette app served by uvicorn, tiles made in Starlette's thread pool and
encoded by Pillow as JPEG at the same quality), whose tiles come from
openslide-python's ``DeepZoomGenerator`` over OpenSlide 4 (``openslide-bin``).
It answers the same URLs as ``dicomslide serve`` for one slide::

    python -m benchmarks.openslide_server FILE --id ID --port P \\
        --tile-size 512 --overlap 0
"""

from __future__ import annotations

import argparse
import io
import sys

import openslide
import uvicorn
from openslide.deepzoom import DeepZoomGenerator
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dicomslide.serve.tiles import JPEG_QUALITY


def create_app(path: str, slide_id: str, tile_size: int, overlap: int) -> Starlette:
    """The app: DZI and JPEG tiles of one slide file."""
    slide = openslide.OpenSlide(path)
    generator = DeepZoomGenerator(slide, tile_size=tile_size, overlap=overlap)

    def tile(level: int, column: int, row: int) -> bytes:
        picture = generator.get_tile(level, (column, row))
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
        return buffer.getvalue()

    async def dzi(request: Request) -> Response:
        if request.path_params["slide"] != slide_id:
            return PlainTextResponse("no such slide", status_code=404)
        return Response(generator.get_dzi("jpeg"), media_type="application/xml")

    async def tiles(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            address, fmt = name.rsplit(".", 1)
            column, row = (int(v) for v in address.split("_"))
            level = int(request.path_params["level"])
            data = await run_in_threadpool(tile, level, column, row)
        except ValueError:
            return PlainTextResponse("no such tile", status_code=404)
        return Response(data, media_type="image/jpeg")

    async def listing(request: Request) -> Response:
        return Response(f'[{{"id": "{slide_id}"}}]', media_type="application/json")

    return Starlette(
        routes=[
            Route("/slides.json", listing),
            Route("/slides/{slide}.dzi", dzi),
            Route("/slides/{slide}_files/{level}/{name}", tiles),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path")
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tile-size", type=int, default=254)
    parser.add_argument("--overlap", type=int, default=1)
    args = parser.parse_args(argv)
    app = create_app(args.path, args.id, args.tile_size, args.overlap)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
