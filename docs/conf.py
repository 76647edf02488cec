"""Sphinx configuration of the dicomslide documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` from
the repository root. The package is documented from the working tree (it is put
first on ``sys.path``), so an editable install is not required.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dicomslide.version import __version__  # noqa: E402

project = "dicomslide"
author = "dicomslide contributors"
copyright = "dicomslide contributors"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]

exclude_patterns = ["_build"]
root_doc = "index"
# Literal blocks introduced with "::" are not Python unless they say so; every
# Python example is a ``code-block:: python`` and is run by tests/test_docs.py.
highlight_language = "none"

# -- autodoc and napoleon (the docstrings are in NumPy style) -----------------
autodoc_member_order = "bysource"
# Types are written out in the docstrings' Parameters and Returns sections.
autodoc_typehints = "none"
autodoc_default_options = {"show-inheritance": True}
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = False

# -- HTML ----------------------------------------------------------------------
html_theme = "furo"
html_title = f"dicomslide {release}"
html_static_path: list[str] = []
