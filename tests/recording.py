"""A client wrapper that records the requests made through it."""

from __future__ import annotations

from collections import Counter
from typing import Any


class RecordingClient:
    """Passes every call to a client and counts the calls per method.

    It is not a ``DICOMfileClient`` itself, so dicomslide treats it like any
    remote client and asks it for frames.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.frame_requests: list[list[int]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "retrieve_instance_frames":
                self.frame_requests.append(list(kwargs["frame_numbers"]))
            return attribute(*args, **kwargs)

        return record
