"""The viewer's web application: routes of an ASGI app (Starlette).

Routes::

    /                                          index of the slides
    /slides.json                               the same as JSON, with metrics
    /slides/<id>                               viewer page
    /slides/<id>.dzi                           DZI of the main view
    /slides/<id>_files/<level>/<col>_<row>.<jpeg|png>
    /slides/<id>/layers/<layer>.dzi            DZI of a layer (c<channel>z<plane>)
    /slides/<id>/layers/<layer>_files/<level>/<col>_<row>.<jpeg|png>
    /slides/<id>/thumbnail.png, label.png, macro.png
    /static/..., /openseadragon/...            the viewer's scripts

Tiles are made in Starlette's thread pool, so a server answers many at once;
they carry a strong ETag (which names the slide, layer, tile options and
address, so a conditional GET is answered 304 without reading anything) and
Cache-Control. Unknown slides, layers and tiles answer 404, malformed tile
names 400, both with a one-line message; failures answer 500 with the
error's message, never a traceback. Only the routes above read anything: no
path in a URL names a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dicomslide.errors import DicomSlideError
from dicomslide.openslide.library import OpenSlideError
from dicomslide.serve.catalog import Catalog, SlideEntry
from dicomslide.serve.pages import error_page, index_page, slide_summary, viewer_page
from dicomslide.serve.tiles import FORMATS, Layer
from dicomslide.version import __version__

__all__ = ["OPENSEADRAGON_VERSION", "create_app", "openseadragon_folder"]

logger = logging.getLogger(__name__)

#: The OpenSeadragon release the viewer is built and tested with
OPENSEADRAGON_VERSION = "6.1.1"

_STATIC = Path(__file__).parent / "static"
#: How long browsers may keep a tile (the files of a source rarely change)
_CACHE_CONTROL = "private, max-age=3600"

_SLIDE = r"(?P<slide>[0-9a-f]{16})"
_LAYER = r"(?:/layers/(?P<layer>c[0-9]+z[0-9]+))?"
_DZI = re.compile(rf"{_SLIDE}{_LAYER}\.dzi")
_TILE = re.compile(rf"{_SLIDE}{_LAYER}_files/(?P<level>[^/]+)/(?P<tile>[^/]+)")
_TILE_NAME = re.compile(r"(?P<column>[0-9]{1,9})_(?P<row>[0-9]{1,9})\.(?P<format>\w+)")
_PICTURE = re.compile(rf"{_SLIDE}/(?P<name>thumbnail|label|macro)\.png")
_VIEWER = re.compile(_SLIDE)


def openseadragon_folder() -> Path:
    """Where OpenSeadragon's build is served from.

    Returns
    -------
    pathlib.Path
        ``$DICOMSLIDE_OPENSEADRAGON`` if set, else ``static/openseadragon``
        in this package (filled by ``make viewer-assets``)

    """
    folder = os.environ.get("DICOMSLIDE_OPENSEADRAGON")
    return Path(folder) if folder else _STATIC / "openseadragon"


def _etag(entry: SlideEntry, layer: str, address: tuple[int, ...], fmt: str) -> str:
    options = entry.options
    text = (
        f"{__version__}:{entry.id}:{layer}:{options.tile_size}:{options.overlap}:"
        f"{address}:{fmt}"
    )
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:24] + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in (t.strip() for t in header.split(","))


class _Viewer:
    """Route handlers over a catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _entry(self, identifier: str) -> SlideEntry:
        try:
            return self.catalog[identifier]
        except KeyError:
            raise HTTPException(404, f"no slide {identifier}") from None

    def _layer(self, entry: SlideEntry, name: str | None) -> tuple[str, Layer]:
        name = name or "c0z0"
        try:
            return name, entry.layer(name)
        except KeyError:
            raise HTTPException(404, f"slide {entry.id} has no layer {name}") from None

    async def index(self, request: Request) -> Response:
        return HTMLResponse(await run_in_threadpool(index_page, self.catalog))

    async def slides_json(self, request: Request) -> Response:
        summaries = await run_in_threadpool(
            lambda: [
                {**slide_summary(entry), "metrics": entry.slide.metrics}
                for entry in self.catalog
            ]
        )
        return Response(json.dumps(summaries), media_type="application/json")

    async def slides(self, request: Request) -> Response:
        path = request.path_params["path"]
        for pattern, handler in (
            (_TILE, self._tile),
            (_DZI, self._dzi),
            (_PICTURE, self._picture),
            (_VIEWER, self._viewer),
        ):
            match = pattern.fullmatch(path)
            if match:
                return await handler(request, match.groupdict())
        raise HTTPException(404, "no such page")

    async def _viewer(self, request: Request, parts: dict[str, Any]) -> Response:
        entry = self._entry(parts["slide"])
        if not (openseadragon_folder() / "openseadragon.min.js").is_file():
            raise HTTPException(
                503,
                f"OpenSeadragon {OPENSEADRAGON_VERSION} is not installed: run "
                "'make viewer-assets' (npm pack openseadragon@"
                f"{OPENSEADRAGON_VERSION}) or set DICOMSLIDE_OPENSEADRAGON to the "
                "folder of its openseadragon.min.js",
            )

        def page() -> str:
            properties = dict(entry.facade.properties) if entry.facade else {}
            shown = {k: v for k, v in properties.items() if k.startswith("openslide.")}
            return viewer_page(entry, shown)

        return HTMLResponse(await run_in_threadpool(page))

    async def _dzi(self, request: Request, parts: dict[str, Any]) -> Response:
        entry = self._entry(parts["slide"])
        name, layer = await run_in_threadpool(self._layer, entry, parts["layer"])
        return Response(layer.dzi, media_type="application/xml")

    async def _picture(self, request: Request, parts: dict[str, Any]) -> Response:
        entry = self._entry(parts["slide"])
        name = parts["name"]
        if name == "thumbnail":
            data: bytes | None = await run_in_threadpool(entry.thumbnail)
        else:
            data = await run_in_threadpool(entry.associated, name)
        if data is None:
            raise HTTPException(404, f"slide {entry.id} has no {name} image")
        return Response(
            data, media_type="image/png", headers={"Cache-Control": _CACHE_CONTROL}
        )

    async def _tile(self, request: Request, parts: dict[str, Any]) -> Response:
        entry = self._entry(parts["slide"])
        tile = _TILE_NAME.fullmatch(parts["tile"])
        if not parts["level"].isdigit() or len(parts["level"]) > 3 or tile is None:
            raise HTTPException(400, "a tile is <level>/<column>_<row>.<jpeg|png>")
        fmt = tile["format"]
        if fmt not in FORMATS:
            raise HTTPException(400, f"tiles are jpeg or png, not {fmt}")
        level, column, row = int(parts["level"]), int(tile["column"]), int(tile["row"])
        name = parts["layer"] or "c0z0"
        etag = _etag(entry, name, (level, column, row), fmt)
        headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL}
        unchanged = _matches(request.headers.get("if-none-match"), etag)

        def read(layer: Layer | None, wait: bool) -> bytes | None:
            if layer is None:
                _, layer = self._layer(entry, name)
            try:
                layer.check(level, column, row)
            except ValueError:
                raise HTTPException(
                    404, f"no tile {column}_{row} at level {level}"
                ) from None
            if unchanged:
                return b""
            if not wait:
                return layer.cached_tile(level, column, row, fmt)
            return layer.tile(level, column, row, fmt)

        # a tile at hand is answered here; what waits goes to the thread pool
        layer = entry.made_layer(name)
        data = None if layer is None else read(layer, wait=False)
        if data is None:
            data = await run_in_threadpool(read, layer, True)
        if unchanged:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=FORMATS[fmt], headers=headers)


def _error_response(request: Request, status: int, message: str) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(error_page(status, message), status_code=status)
    return PlainTextResponse(message + "\n", status_code=status)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return _error_response(request, error.status_code, str(error.detail))


async def _failure(request: Request, error: Exception) -> Response:
    if isinstance(error, DicomSlideError | OpenSlideError | OSError | ValueError):
        logger.warning("%s: %s", request.url.path, error)
        return _error_response(request, 500, f"cannot read the slide: {error}")
    logger.exception("%s failed", request.url.path)
    return _error_response(request, 500, f"internal error ({type(error).__name__})")


def create_app(catalog: Catalog) -> Starlette:
    """The viewer's ASGI application.

    Parameters
    ----------
    catalog: dicomslide.serve.catalog.Catalog
        Slides to show

    Returns
    -------
    starlette.applications.Starlette
        The application (serve it with any ASGI server, e.g. uvicorn)

    """
    viewer = _Viewer(catalog)
    routes = [
        Route("/", viewer.index),
        Route("/slides.json", viewer.slides_json),
        Route("/slides/{path:path}", viewer.slides),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    assets = openseadragon_folder()
    if assets.is_dir():  # else /openseadragon/... is 404, as any unknown path
        routes.append(
            Mount("/openseadragon", StaticFiles(directory=assets), name="openseadragon")
        )
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _failure},
    )
