"""One small adapter per implementation under test.

Every adapter has the same life cycle, driven by :mod:`benchmarks.child`:

1. ``load()`` imports the library (timed separately: import cost);
2. ``open(folder)`` opens the slide;
3. ``bind(levels)`` maps the canonical levels (:mod:`benchmarks.workloads`)
   to the adapter's own level numbers by exact size, and ``prepare(levels)``
   does any untimed preparation (only the decode limit loads frames there);
4. ``read(level, row, col, h, w)`` returns an (h, w, 3) uint8 array, the
   offset being in pixels of that (canonical) level.

Libraries are imported inside ``load()`` only, so the parent process never
imports OpenSlide or wsidicom and each child imports only what it measures.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmarks.limit import LimitReader, cpu_threads
from benchmarks.workloads import Level


class Adapter:
    """Base class: level binding and the common interface."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    """"dicomslide", "colour", "limit" or "other": which tolerance the
    cross-check uses (``colour``: ±1 of LittleCMS on the reference)."""
    description: ClassVar[str] = ""

    def __init__(self) -> None:
        self._level_map: dict[int, int] = {}
        self.extra: dict[str, Any] = {}
        """Facts a child reports besides timings (e.g. OpenSlide's alpha)."""

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the implementation cannot run here, or None when it can."""
        return None

    def load(self) -> None:
        """Import the library."""

    def open(self, folder: Path) -> None:
        """Open the slide in `folder`."""
        raise NotImplementedError

    def level_shapes(self) -> list[tuple[int, int]]:
        """(rows, columns) of the adapter's own levels, in its own order."""
        raise NotImplementedError

    def bind(self, levels: Sequence[tuple[int, int]]) -> None:
        """Map canonical level indices to own level indices by exact size.

        Raises
        ------
        LookupError
            When a canonical level has no counterpart

        """
        own = self.level_shapes()
        for index, shape in enumerate(levels):
            matches = [i for i, s in enumerate(own) if tuple(s) == tuple(shape)]
            if not matches:
                raise LookupError(f"{self.name}: no level of size {shape} (has {own})")
            self._level_map[index] = matches[0]

    def prepare(self, levels: Sequence[int]) -> None:
        """Untimed preparation before the reads (canonical level indices)."""

    def read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        """Read a region; offset in pixels of canonical level `level`."""
        return self._read(self._level_map[level], row, col, h, w)

    def _read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources."""

    @staticmethod
    def versions() -> dict[str, str]:
        """Versions of the libraries involved (importing them)."""
        return {}


def _largest_dcm(folder: Path) -> Path:
    files = [p for p in Path(folder).glob("*.dcm") if p.is_file()]
    if not files:
        raise FileNotFoundError(f"no .dcm file in {folder}")
    return max(files, key=lambda p: (p.stat().st_size, p.name))


def _rgb(image: Any) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 4:
        return array[:, :, :3]
    return array


class DicomslideRegion(Adapter):
    """dicomslide: ``Slide.get_image_region``."""

    name = "dicomslide"
    family = "dicomslide"
    description = (
        "dicomslide.find_slides(folder, correct_color=False)[0].get_image_region"
    )

    def load(self) -> None:
        self._dicomslide = importlib.import_module("dicomslide")

    def open(self, folder: Path) -> None:
        self.slide = self._dicomslide.find_slides(str(folder), correct_color=False)[0]

    def level_shapes(self) -> list[tuple[int, int]]:
        return [tuple(d) for d in self.slide.total_pixel_matrix_dimensions]

    def _read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        factors = self.slide.downsampling_factors[level]
        # get_image_region takes a level-0 offset and floors it back.
        offset = (int(round(row * factors)), int(round(col * factors)))
        return self.slide.get_image_region(offset=offset, level=level, size=(h, w))

    @staticmethod
    def versions() -> dict[str, str]:
        import dicomslide

        return {"dicomslide": dicomslide.__version__}


class DicomslideMatrix(DicomslideRegion):
    """dicomslide: ``TotalPixelMatrix`` slicing."""

    name = "dicomslide-matrix"
    description = (
        "get_volume_images()[i].get_total_pixel_matrix(correct_color=False)"
        "[r:r+h, c:c+w]"
    )

    def open(self, folder: Path) -> None:
        super().open(folder)
        self._images = self.slide.get_volume_images()
        self._matrices: dict[int, Any] = {}

    def level_shapes(self) -> list[tuple[int, int]]:
        return [(int(i.size[0]), int(i.size[1])) for i in self._images]

    def _read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        matrix = self._matrices.get(level)
        if matrix is None:
            matrix = self._images[level].get_total_pixel_matrix(correct_color=False)
            self._matrices[level] = matrix
        return matrix[row : row + h, col : col + w]


class DicomslideColour(DicomslideRegion):
    """dicomslide with its default colour management."""

    name = "dicomslide-colour"
    family = "colour"
    description = (
        "dicomslide.find_slides(folder)[0].get_image_region: the default "
        "correct_color=True (the ICC profile applied); checked within ±1 of "
        "PIL.ImageCms (LittleCMS) applied to the limit's raw region"
    )

    def open(self, folder: Path) -> None:
        self.slide = self._dicomslide.find_slides(str(folder))[0]


class DicomslideOpenSlide(Adapter):
    """dicomslide's OpenSlide facade, when the library has one."""

    name = "dicomslide-openslide"
    family = "dicomslide"
    description = "dicomslide.openslide.OpenSlide(path).read_region"

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            spec = importlib.util.find_spec("dicomslide.openslide")
        except ImportError as error:  # pragma: no cover - broken install
            return f"dicomslide cannot be imported: {error}"
        if spec is None:
            return "dicomslide.openslide does not exist (yet)"
        try:
            module = importlib.import_module("dicomslide.openslide")
        except Exception as error:  # a facade in the works may not import yet
            return f"dicomslide.openslide cannot be imported: {error}"
        if not hasattr(module, "OpenSlide"):
            return "dicomslide.openslide has no OpenSlide class (yet)"
        return None

    def load(self) -> None:
        self._module = importlib.import_module("dicomslide.openslide")

    def open(self, folder: Path) -> None:
        # OpenSlide takes a file; the facade may take the folder as well.  When
        # both fail, the folder's error is the one reported.
        try:
            self.slide = self._module.OpenSlide(str(folder))
        except Exception as folder_error:
            try:
                self.slide = self._module.OpenSlide(str(_largest_dcm(folder)))
            except Exception:
                raise folder_error from None
        self.extra["alpha_min"] = 255

    def level_shapes(self) -> list[tuple[int, int]]:
        return [(int(h), int(w)) for w, h in self.slide.level_dimensions]

    def _read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        factor = float(self.slide.level_downsamples[level])
        location = (int(round(col * factor)), int(round(row * factor)))
        self._last = np.asarray(self.slide.read_region(location, level, (w, h)))
        return _rgb(self._last)

    def inspect_last(self) -> None:
        """Record the smallest alpha of the last read (called on checked reads)."""
        if self._last.ndim == 3 and self._last.shape[2] == 4:
            alpha = int(self._last[:, :, 3].min())
            self.extra["alpha_min"] = min(self.extra["alpha_min"], alpha)

    def close(self) -> None:
        close = getattr(self.slide, "close", None)
        if close is not None:
            close()

    @staticmethod
    def versions() -> dict[str, str]:
        import dicomslide

        return {"dicomslide": dicomslide.__version__}


class OpenSlideAdapter(Adapter):
    """OpenSlide 4 (openslide-bin) through openslide-python."""

    name = "openslide"
    family = "other"
    description = "openslide.OpenSlide(largest .dcm of the series).read_region, RGBA"

    @classmethod
    def unavailable(cls) -> str | None:
        if importlib.util.find_spec("openslide") is None:
            return "openslide-python is not installed"
        try:
            importlib.import_module("openslide")
        except Exception as error:  # e.g. the shared library is missing
            return f"openslide cannot be imported: {error}"
        return None

    def load(self) -> None:
        self._openslide = importlib.import_module("openslide")

    def open(self, folder: Path) -> None:
        self.slide = self._openslide.OpenSlide(str(_largest_dcm(folder)))
        self.extra["alpha_min"] = 255
        self.extra["openslide_library"] = self._openslide.__library_version__

    def level_shapes(self) -> list[tuple[int, int]]:
        return [(int(h), int(w)) for w, h in self.slide.level_dimensions]

    def _read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        factor = float(self.slide.level_downsamples[level])
        location = (int(round(col * factor)), int(round(row * factor)))
        rgba = np.asarray(self.slide.read_region(location, level, (w, h)))
        self._last = rgba
        return rgba[:, :, :3]

    def inspect_last(self) -> None:
        """Record the smallest alpha of the last read (called on checked reads)."""
        self.extra["alpha_min"] = min(
            self.extra["alpha_min"], int(self._last[:, :, 3].min())
        )

    def close(self) -> None:
        self.slide.close()

    @staticmethod
    def versions() -> dict[str, str]:
        import openslide

        out = {
            "openslide-python": openslide.__version__,
            "OpenSlide": openslide.__library_version__,
        }
        try:
            from importlib.metadata import version

            out["openslide-bin"] = version("openslide-bin")
        except Exception:
            pass
        return out


class WsidicomAdapter(Adapter):
    """wsidicom: ``WsiDicom.open(folder).read_region``."""

    name = "wsidicom"
    family = "other"
    description = "wsidicom.WsiDicom.open(folder).read_region (as_array when available)"

    @classmethod
    def unavailable(cls) -> str | None:
        if importlib.util.find_spec("wsidicom") is None:
            return "wsidicom is not installed"
        return None

    def load(self) -> None:
        self._wsidicom = importlib.import_module("wsidicom")

    def open(self, folder: Path) -> None:
        import inspect

        self.slide = self._wsidicom.WsiDicom.open(str(folder))
        signature = inspect.signature(self.slide.read_region)
        self._as_array = "as_array" in signature.parameters
        self.extra["as_array"] = self._as_array
        self._levels = list(self.slide.levels)

    def level_shapes(self) -> list[tuple[int, int]]:
        return [(int(lv.size.height), int(lv.size.width)) for lv in self._levels]

    def _read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        # wsidicom numbers levels by their power of two and takes the offset in
        # pixels of that level.
        wsi_level = self._levels[level].level
        if self._as_array:
            return self.slide.read_region((col, row), wsi_level, (w, h), as_array=True)
        return np.asarray(self.slide.read_region((col, row), wsi_level, (w, h)))

    def close(self) -> None:
        self.slide.close()

    @staticmethod
    def versions() -> dict[str, str]:
        import wsidicom

        return {"wsidicom": wsidicom.__version__}


class _Limit(Adapter):
    family = "limit"
    threads: ClassVar[int] = 1
    cache: ClassVar[bool] = False

    def load(self) -> None:
        import pydicom  # noqa: F401

    def open(self, folder: Path) -> None:
        self.reader = LimitReader(threads=self.threads, cache=self.cache)
        self.reader.open(folder)

    def level_shapes(self) -> list[tuple[int, int]]:
        return [s.level.shape for s in self.reader.levels]

    def prepare(self, levels: Sequence[int]) -> None:
        self.reader.load([self._level_map[i] for i in levels])

    def _read(self, level: int, row: int, col: int, h: int, w: int) -> np.ndarray:
        return self.reader.read(level, row, col, h, w)

    def close(self) -> None:
        self.extra["decodes"] = self.reader.decodes
        self.reader.close()

    @staticmethod
    def versions() -> dict[str, str]:
        from importlib.metadata import version

        out = {}
        for package in ("pydicom", "simplejpeg", "imagecodecs", "numpy"):
            try:
                out[package] = version(package)
            except Exception:
                out[package] = "not installed"
        return out


class Limit1T(_Limit):
    """Decode limit, one thread, no cache."""

    name = "limit-1t"
    description = "frames in memory, decoded in 1 thread, no cache"


class LimitNT(_Limit):
    """Decode limit, os.cpu_count() threads, no cache."""

    name = "limit-Nt"
    threads = cpu_threads()
    description = f"frames in memory, decoded in {cpu_threads()} threads, no cache"


class LimitCache(_Limit):
    """Decode limit, one thread, every frame decoded once per workload."""

    name = "limit-cache"
    cache = True
    description = "frames in memory, 1 thread, every frame decoded once (dict cache)"


#: All implementations, in the default order.
IMPLS: dict[str, type[Adapter]] = {
    cls.name: cls
    for cls in (
        DicomslideRegion,
        DicomslideColour,
        DicomslideMatrix,
        DicomslideOpenSlide,
        OpenSlideAdapter,
        WsidicomAdapter,
        Limit1T,
        LimitNT,
        LimitCache,
    )
}


def create(name: str) -> Adapter:
    """Instantiate an adapter by name."""
    return IMPLS[name]()


def canonical_levels(levels: Sequence[Level]) -> list[tuple[int, int]]:
    """The (rows, columns) list a child binds to."""
    return [level.shape for level in levels]
