"""``dicomslide serve``: a Deep Zoom viewer of the slides of any source.

The viewer is an ASGI application (Starlette, :mod:`dicomslide.serve.app`)
served by uvicorn: the slides of a folder, a file or a DICOMweb archive
(:mod:`.catalog`), their Deep Zoom tiles (:mod:`.tiles`; other channels and
overlays through :mod:`.layers` and :mod:`.colors`) and the pages
(:mod:`.pages`), with OpenSeadragon in the browser. It needs the ``serve``
extra (``pip install 'dicomslide[serve]'``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dicomslide.slide import Slide

__all__ = ["serve"]

logger = logging.getLogger(__name__)


def serve(
    slides: Sequence[Slide],
    host: str = "127.0.0.1",
    port: int = 8000,
    native: bool = True,
) -> None:
    """Serve the viewer until interrupted.

    Parameters
    ----------
    slides: Sequence[dicomslide.Slide]
        Slides to show (open them with ``correct_color=False``: the viewer
        shows the stored colours, as Deep Zoom tiles hold them)
    host: str, optional
        Address to listen on (loopback by default)
    port: int, optional
        Port to listen on
    native: bool, optional
        Whether stored JPEG frames are sent as tiles where they can be

    """
    import uvicorn

    from dicomslide.serve.app import create_app
    from dicomslide.serve.catalog import Catalog

    catalog = Catalog(slides, native=native)
    app = create_app(catalog)
    logger.info("serving %d slides on http://%s:%d/", len(catalog), host, port)
    uvicorn.run(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2
    )
