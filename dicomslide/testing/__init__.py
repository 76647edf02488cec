"""Synthetic slides for tests, benchmarks and the bundled sample.

Nothing here is needed to read slides, and :mod:`dicomslide` never imports it.
:mod:`dicomslide.testing.synthetic` writes small, fully known VL Whole Slide
Microscopy files; :mod:`dicomslide.testing.synthetic_derived` derives
segmentations and parametric maps from them with highdicom; and
:mod:`dicomslide.testing.synthetic_wild` writes the patterns other projects'
files show.
"""
