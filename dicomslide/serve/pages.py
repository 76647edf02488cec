"""The HTML pages of the viewer: the index of slides, a slide's viewer, errors.

Pages are plain HTML built with escaped values; the viewer page hands its
slide's description to ``viewer.js`` as JSON.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from dicomslide.serve.catalog import Catalog, SlideEntry

__all__ = ["error_page", "index_page", "slide_summary", "viewer_page"]

_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/static/viewer.css"></head>
<body>
"""


def _page(title: str, body: str) -> str:
    return _HEAD.format(title=escape(title)) + body + "\n</body></html>\n"


def slide_summary(entry: SlideEntry) -> dict[str, Any]:
    """What the index and ``/slides.json`` say about a slide.

    Parameters
    ----------
    entry: dicomslide.serve.catalog.SlideEntry
        Slide

    Returns
    -------
    Dict[str, Any]
        id, container, study, series, levels (width, height), layers and the
        DZI options of the main view

    """
    slide = entry.slide
    base = entry.base_metadata
    return {
        "id": entry.id,
        "container": slide.container_id,
        "study": str(base.get("StudyInstanceUID", "")),
        "series": str(base.get("SeriesInstanceUID", "")),
        "levels": [
            [columns, rows] for rows, columns in slide.total_pixel_matrix_dimensions
        ],
        "focal_planes": slide.num_focal_planes,
        "layers": [entry.describe_layer(name) for name in entry.layer_names()],
        "tile_size": entry.options.tile_size,
        "overlap": entry.options.overlap,
    }


def index_page(catalog: Catalog) -> str:
    """The index: a card per slide with its thumbnail and a link to the viewer."""
    cards = []
    for entry in catalog:
        summary = slide_summary(entry)
        levels = ", ".join(f"{w}&times;{h}" for w, h in summary["levels"])
        layers = ", ".join(escape(layer["label"]) for layer in summary["layers"])
        href = f"/slides/{entry.id}"
        cards.append(
            f'<li class="card"><a href="{href}"><img class="thumb" alt="thumbnail" '
            f'src="{href}/thumbnail.png"></a><div>'
            f'<h2><a href="{href}">{escape(summary["container"] or "(no container)")}'
            f"</a></h2><dl>"
            f"<dt>id</dt><dd><code>{entry.id}</code></dd>"
            f"<dt>study</dt><dd><code>{escape(summary['study'])}</code></dd>"
            f"<dt>series</dt><dd><code>{escape(summary['series'])}</code></dd>"
            f"<dt>levels</dt><dd>{len(summary['levels'])}: {levels} px</dd>"
            f"<dt>channels</dt><dd>{layers}</dd>"
            f"<dt>focal planes</dt><dd>{summary['focal_planes']}</dd></dl></div></li>"
        )
    body = (
        f"<header><h1>dicomslide: {len(catalog)} slide"
        f"{'s' if len(catalog) != 1 else ''}</h1></header>"
        f'<ul class="slides">{"".join(cards)}</ul>'
    )
    return _page("dicomslide slides", body)


def viewer_page(entry: SlideEntry, properties: dict[str, str]) -> str:
    """The viewer of a slide: OpenSeadragon, layers, properties, label, overview."""
    summary = slide_summary(entry)
    for layer in summary["layers"]:
        if layer["kind"] == "PARAMETER":
            layer["range"] = entry.value_range(layer["name"])
    config = json.dumps(summary).replace("</", "<\\/")
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>"
        for name, value in sorted(properties.items())
    )
    images = "".join(
        f'<figure><img alt="{name}" src="/slides/{entry.id}/{name}.png">'
        f"<figcaption>{name}</figcaption></figure>"
        for name in ("label", "macro")
        if entry.associated_name_exists(name)
    )
    body = f"""<header><a href="/">&larr; slides</a>
<h1>{escape(summary["container"] or entry.id)}</h1></header>
<main class="viewer-layout">
<div id="viewer" class="osd"></div>
<aside>
<section id="views"><h2>View</h2></section>
<section id="overlays"><h2>Overlays</h2></section>
<section><h2>Images</h2>{images or "<p>none</p>"}</section>
<section><h2>Properties</h2><table class="properties">{rows}</table></section>
</aside></main>
<script type="application/json" id="slide-config">{config}</script>
<script src="/openseadragon/openseadragon.min.js"></script>
<script src="/static/viewer.js"></script>"""
    return _page(f"{summary['container'] or entry.id} - dicomslide", body)


def error_page(status: int, message: str) -> str:
    """A short error page (never a traceback)."""
    return _page(
        f"{status} - dicomslide",
        f'<main class="error"><h1>{status}</h1><p>{escape(message)}</p>'
        f'<p><a href="/">slides</a></p></main>',
    )
