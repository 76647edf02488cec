"""OpenSlide-compatible interface."""
