"""Cross-library benchmark suite for dicomslide (run ``python -m benchmarks.run``).

See ``benchmarks/README.md``.  Nothing here is imported by the library or its
tests; the third-party readers it compares against (OpenSlide, wsidicom) are
imported lazily, inside the subprocess that measures them.
"""
