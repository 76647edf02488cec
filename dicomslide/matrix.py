"""The total pixel matrix of a tiled image, indexed like a NumPy array.

A :class:`TotalPixelMatrix` is one channel and focal plane of an image's pixel
values (:class:`dicomslide.pixels.ImagePixels`): NumPy semantics for pixel
indices, tiles for one-dimensional ones, Dask arrays. A
:class:`TotalPixelMatrixSampler` walks a grid of padded regions over one.
:class:`~dicomslide.TiledImage` makes the matrices of its image; a matrix
knows its image, but does not depend on it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from pydicom.dataset import Dataset

from dicomslide.color import ColorTransform
from dicomslide.pixels import ImagePixels

# names dicomslide 0.7 exported from this module
from dicomslide.tile import (
    assemble_total_pixel_matrix as assemble_total_pixel_matrix,
)
from dicomslide.tile import compute_frame_positions as compute_frame_positions
from dicomslide.utils import is_tiled_image as is_tiled_image

if TYPE_CHECKING:  # the image makes matrices; a matrix names its image
    from dicomslide.image import TiledImage

logger = logging.getLogger(__name__)


def _label_mask(labels: np.ndarray, label: int) -> np.ndarray:
    return cast("np.ndarray", (labels == label).astype(np.uint8))


def _real_world_values(
    stored: np.ndarray, slope: float, intercept: float
) -> np.ndarray:
    return stored.astype(np.float64) * slope + intercept


def normalize_padding(
    padding: float | Sequence[float],
) -> tuple[float, float, float, float]:
    """Expand padding to (left, top, right, bottom).

    Parameters
    ----------
    padding: Union[float, Sequence[float]]
        One value for all borders, two for left/right and top/bottom, or four
        for left, top, right and bottom

    Returns
    -------
    Tuple[float, float, float, float]
        Padding at the left, top, right and bottom

    Raises
    ------
    ValueError
        When a value is negative or the sequence has another length

    """
    if isinstance(padding, (int, float, np.integer, np.floating)):
        values = [padding] * 4
    elif len(padding) == 2:
        values = list(padding) * 2
    elif len(padding) == 4:
        values = list(padding)
    else:
        raise ValueError("padding must be a number or a sequence of 2 or 4 numbers")
    if any(v < 0 for v in values):
        raise ValueError("padding must not be negative")
    left, top, right, bottom = values
    return (left, top, right, bottom)


class TotalPixelMatrix:
    """Total Pixel Matrix.

    The class exposes a NumPy-like interface to index into a total pixel
    matrix of a tiled image, where each tile is encoded as a separate frame.
    When the caller indexes instances of the class, only the frames that the
    index touches are retrieved and decoded.

    A one-dimensional index (int, list or array of ints, slice) returns
    individual tiles: an array of shape ``tile_shape`` for an int, stacked
    tiles otherwise. A two- or three-dimensional index selects pixels with
    NumPy semantics: ``matrix[index].shape`` equals what NumPy gives for an
    array of shape ``matrix.shape``.

    Pixels outside the matrix (the overhang of edge tiles) and pixels of
    tiles that are absent from a TILED_SPARSE image read as the fill value:
    255 for colour (white glass), 0 otherwise. An absent tile of a label map
    segmentation holds label 0 (background): in the channel of segment 0 its
    pixels read 1, in every other segment's channel 0.

    Examples
    --------
    >>> matrix = TotalPixelMatrix(client, metadata)  # doctest: +SKIP
    >>> region = matrix[:256, 256:512, :]  # doctest: +SKIP
    >>> tile = matrix[matrix.get_tile_index((2, 4))]  # doctest: +SKIP

    Warning
    -------
    The total pixel matrix may be very large and indexing the row or column
    dimension with ``:`` may consume a lot of time and memory.

    Parameters
    ----------
    client: dicomweb_client.api.DICOMClient
        DICOMweb client
    image_metadata: Union[pydicom.dataset.Dataset, Sequence[pydicom.dataset.Dataset]]
        Metadata of a tiled DICOM image (or of every instance of a
        concatenation)
    channel_index: int, optional
        Zero-based index into channels along the direction defined by
        successive items of the appropriate DICOM attribute(s).
    focal_plane_index: int, optional
        Zero-based index into focal planes along depth direction from the
        glass slide towards the coverslip in the slide coordinate system
        specified by the Z Offset in Slide Coordinate System attribute.
        Values must be in the range [0, Total Pixel Matrix Focal Planes).
    max_frame_cache_size: int, optional
        Number of frames the cache holds at least (the cache is bounded in
        bytes, see :class:`dicomslide.cache.FrameCache`)
    correct_color: bool, optional
        Whether pixel values should be color corrected with the image's ICC
        profile

    """

    def __init__(
        self,
        client: Any,
        image_metadata: Dataset | Sequence[Dataset],
        channel_index: int = 0,
        focal_plane_index: int = 0,
        max_frame_cache_size: int = 9,
        correct_color: bool = True,
    ) -> None:
        parts = (
            [image_metadata]
            if isinstance(image_metadata, Dataset)
            else list(image_metadata)
        )
        pixels = ImagePixels(client, parts, max_frame_cache_size)
        self._init(pixels, channel_index, focal_plane_index, correct_color, None)

    @classmethod
    def of_image(
        cls,
        pixels: ImagePixels,
        channel_index: int,
        focal_plane_index: int,
        correct_color: bool,
        image: TiledImage,
    ) -> TotalPixelMatrix:
        """A matrix of an image's pixels (package-internal: what
        :meth:`dicomslide.TiledImage.get_total_pixel_matrix` gives).

        Parameters
        ----------
        pixels: dicomslide.pixels.ImagePixels
            Pixel values of the image
        channel_index: int
            Zero-based channel index
        focal_plane_index: int
            Zero-based focal plane index
        correct_color: bool
            Whether pixels are colour corrected with the image's ICC profile
        image: dicomslide.TiledImage
            The image, which :attr:`image` gives

        Returns
        -------
        dicomslide.TotalPixelMatrix
            The matrix

        """
        matrix = cls.__new__(cls)
        matrix._init(pixels, channel_index, focal_plane_index, correct_color, image)
        return matrix

    def _init(
        self,
        pixels: ImagePixels,
        channel_index: int,
        focal_plane_index: int,
        correct_color: bool,
        image: TiledImage | None,
    ) -> None:
        store = pixels.store
        channels = len(pixels.channel_identifiers)
        planes = len(store.z_planes)
        if not 0 <= channel_index < channels:
            raise ValueError(
                f"channel index {channel_index} is out of range [0, {channels})"
            )
        if not 0 <= focal_plane_index < planes:
            raise ValueError(
                f"focal plane index {focal_plane_index} is out of range [0, {planes})"
            )
        self._image = image
        self._pixels = pixels
        self._store = store
        self._channel_index = int(channel_index)
        self._focal_plane_index = int(focal_plane_index)
        self._correct_color = correct_color
        self._fill = pixels.fill_value
        # Value of the pixels of tiles absent from the image, if not the fill
        self._absent: float | None = None
        # How stored values become the values of this matrix
        self._stored_channel = self._channel_index
        self._value_transform: Callable[[np.ndarray], np.ndarray] | None = None
        self._dtype = store.dtype
        if pixels.is_label_map:
            # every segment of a label map is a channel: its mask
            self._stored_channel = 0
            label = int(pixels.channel_identifiers[channel_index])
            self._value_transform = functools.partial(_label_mask, label=label)
            self._dtype = np.dtype(np.uint8)
            # an absent tile holds label 0: the background segment's mask is 1
            self._absent = 1 if label == 0 else None
        elif pixels.value_mapping is not None:
            slope, intercept = pixels.value_mapping
            self._value_transform = functools.partial(
                _real_world_values, slope=slope, intercept=intercept
            )
            self._dtype = np.dtype(np.float64)

    def __repr__(self) -> str:
        return (
            f"<TotalPixelMatrix {self._store.metadata.SOPInstanceUID} "
            f"shape (rows, columns, samples)={self.shape} "
            f"channel={self._channel_index} "
            f"focal_plane={self._focal_plane_index}>"
        )

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @property
    def image(self) -> TiledImage | None:
        """Union[dicomslide.TiledImage, None]: the image the matrix was
        obtained from (:meth:`dicomslide.TiledImage.get_total_pixel_matrix`);
        None for a matrix constructed from a client and metadata"""
        return self._image

    @property
    def metrics(self) -> dict[str, int]:
        """Dict[str, int]: what reading the matrix's image cost so far (see
        :attr:`dicomslide.TiledImage.metrics`)"""
        return self._store.metrics.as_dict()

    @property
    def channel_index(self) -> int:
        """int: zero-based channel index"""
        return self._channel_index

    @property
    def focal_plane_index(self) -> int:
        """int: zero-based focal plane index"""
        return self._focal_plane_index

    @property
    def dtype(self) -> np.dtype:
        """numpy.dtype: Data type"""
        return self._dtype

    @property
    def ndim(self) -> int:
        """int: Number of dimensions"""
        return 3

    @property
    def shape(self) -> tuple[int, int, int]:
        """Tuple[int, int, int]: Rows, Columns, and Samples per Pixel"""
        rows, columns = self._store.total_shape
        return (rows, columns, self._store.samples_per_pixel)

    @property
    def size(self) -> int:
        """int: Size (rows x columns x samples)"""
        rows, columns, samples = self.shape
        return rows * columns * samples

    @property
    def tile_shape(self) -> tuple[int, int, int]:
        """Tuple[int, int, int]: Number of pixel rows, pixel columns, and
        samples per pixel of an individual tile"""
        rows, columns = self._store.tile_shape
        return (rows, columns, self._store.samples_per_pixel)

    @property
    def tile_size(self) -> int:
        """int: Size of an individual tile (rows x columns x samples)"""
        rows, columns, samples = self.tile_shape
        return rows * columns * samples

    @property
    def tile_grid_shape(self) -> tuple[int, int]:
        """Tuple[int, int]: Number of tiles along the column (top to bottom)
        and row (left to right) direction of the tile grid"""
        grid_rows = -(-self.shape[0] // self.tile_shape[0])
        grid_columns = -(-self.shape[1] // self.tile_shape[1])
        return (grid_rows, grid_columns)

    @property
    def num_tiles(self) -> int:
        """int: Number of tiles"""
        grid_rows, grid_columns = self.tile_grid_shape
        return grid_rows * grid_columns

    def __len__(self) -> int:
        return self.num_tiles

    @property
    def tile_grid_positions(self) -> np.ndarray:
        """numpy.ndarray: Zero-based (row, column) grid position of every tile,
        in the row-major order of tile indices"""
        grid_rows, grid_columns = self.tile_grid_shape
        rows, columns = np.meshgrid(
            np.arange(grid_rows), np.arange(grid_columns), indexing="ij"
        )
        return np.column_stack([rows.ravel(), columns.ravel()])

    @property
    def tile_presence(self) -> np.ndarray:
        """numpy.ndarray: Boolean array of shape ``tile_grid_shape``, True
        where a frame is stored for the tile (False for tiles a TILED_SPARSE
        image omits; they read as the fill value, or as label 0 in a label
        map)"""
        grid = self._store.grid(self._stored_channel, self._focal_plane_index)
        if grid.grid is not None:
            return grid.grid >= 0
        presence = np.zeros(self.tile_grid_shape, dtype=bool)
        tile_rows, tile_columns, _ = self.tile_shape
        for _, row, column in grid.frames_in(0, self.shape[0], 0, self.shape[1]):
            presence[row // tile_rows, column // tile_columns] = True
        return presence

    @property
    def tile_positions(self) -> np.ndarray:
        """numpy.ndarray: Zero-based (row, column) offset of every tile from
        the top left pixel of the total pixel matrix"""
        return cast(
            "np.ndarray", self.tile_grid_positions * np.array(self.tile_shape[:2])
        )

    def get_tile_grid_position(self, index: int) -> tuple[int, int]:
        """Get position of a tile in the tile grid.

        Parameters
        ----------
        index: int
            Zero-based index of the tile in the flattened total pixel matrix

        Returns
        -------
        Tuple[int, int]
            Zero-based (row, column) index of a tile in the tile grid

        """
        index = self._check_tile_index(index)
        return divmod(index, self.tile_grid_shape[1])

    def get_tile_position(self, index: int) -> tuple[int, int]:
        """Get position of a tile.

        Parameters
        ----------
        index: int
            Zero-based index of the tile in the flattened total pixel matrix

        Returns
        -------
        Tuple[int, int]
            Zero-based (row, column) offset of a tile in the total pixel matrix

        """
        grid_row, grid_column = self.get_tile_grid_position(index)
        return (grid_row * self.tile_shape[0], grid_column * self.tile_shape[1])

    def get_tile_bounding_box(
        self, index: int
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Get the bounding box of a tile.

        Parameters
        ----------
        index: int
            Tile index

        Returns
        -------
        offset: Tuple[int, int]
            Zero-based (row, column) pixel indices in the total pixel matrix
        size: Tuple[int, int]
            Height (rows) and width (columns) of the tile inside the matrix

        """
        row, column = self.get_tile_position(index)
        height = min(self.tile_shape[0], self.shape[0] - row)
        width = min(self.tile_shape[1], self.shape[1] - column)
        return ((row, column), (height, width))

    def get_tile_index(
        self,
        position: tuple[int, int] | None = None,
        frame_number: int | None = None,
    ) -> int:
        """Get index of a tile.

        Parameters
        ----------
        position: Union[Tuple[int, int], None], optional
            Zero-based (row, column) index of a tile in the tile grid
        frame_number: Union[int, None], optional
            One-based number of the corresponding frame item in the Pixel Data
            element (counted over all instances of a concatenation)

        Returns
        -------
        int
            Zero-based index of the tile in the flattened total pixel matrix

        Note
        ----
        Either `position` or `frame_number` must be provided.

        """
        if (position is None) == (frame_number is None):
            raise TypeError("either position or frame_number must be given")
        grid_rows, grid_columns = self.tile_grid_shape
        if frame_number is not None:
            index = int(frame_number) - 1
            store = self._store
            if not 0 <= index < store.number_of_frames:
                raise IndexError(f"frame number {frame_number} is out of range")
            if (
                store.channels[index] != self._stored_channel
                or store.planes[index] != self._focal_plane_index
            ):
                raise ValueError(
                    f"frame {frame_number} belongs to another channel or focal plane"
                )
            row, column = store.positions[index]
            position = (
                int(row) // self.tile_shape[0],
                int(column) // self.tile_shape[1],
            )
        assert position is not None
        grid_row, grid_column = (int(v) for v in position)
        if not (0 <= grid_row < grid_rows and 0 <= grid_column < grid_columns):
            raise IndexError(f"tile grid position {position} is out of range")
        return grid_row * grid_columns + grid_column

    def _check_tile_index(self, index: int) -> int:
        index = int(index)
        if index < 0:
            index += self.num_tiles
        if not 0 <= index < self.num_tiles:
            raise IndexError(
                f"tile index {index} is out of range for {self.num_tiles} tiles "
                "(a 1-D index selects tiles; index pixels with two indices, "
                f"e.g. matrix[{index}, :] for row {index})"
            )
        return index

    def _color_transform(self) -> ColorTransform | None:
        return self._pixels.color_transform() if self._correct_color else None

    def _fill_of(self, transform: ColorTransform | None) -> float | np.ndarray:
        """The fill value as reads give it: colour corrected, if they are."""
        return self._fill if transform is None else transform.colour_of(self._fill)

    def read_region(
        self,
        offset: tuple[int, int],
        size: tuple[int, int],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Read a region of the matrix.

        Parameters
        ----------
        offset: Tuple[int, int]
            Zero-based (row, column) offset; may be negative
        size: Tuple[int, int]
            Rows and columns of the region
        out: Union[numpy.ndarray, None], optional
            Array of shape (rows, columns, samples) and the matrix's data type
            to write the pixels into, as NumPy's ``out`` arguments do; it may
            be a view (e.g. the colour bands of an RGBA array)

        Returns
        -------
        numpy.ndarray
            Pixels of shape (rows, columns, samples), `out` when given; pixels
            outside the matrix have the fill value

        Raises
        ------
        ValueError
            When `size` is negative, or `out` has another shape

        """
        rows, columns = (int(v) for v in size)
        if rows < 0 or columns < 0:
            raise ValueError(f"region size must not be negative, got {size}")
        row, column = (int(v) for v in offset)
        span = ((row, row + rows), (column, column + columns))
        transform = self._color_transform()
        if transform is not None and not self._store.transforms_frames(
            self._stored_channel, self._focal_plane_index, *span, transform
        ):
            # a small read of large frames: correct the region alone
            corrected = transform(self._read(span, None, None))
            if out is None:
                return corrected
            out[...] = corrected
            return out
        # otherwise frames are corrected as they are decoded, and cached so
        return self._read(span, transform, out)

    def _read(
        self,
        span: tuple[tuple[int, int], tuple[int, int]],
        transform: ColorTransform | None,
        out: np.ndarray | None,
    ) -> np.ndarray:
        return self._store.read_region(
            self._stored_channel,
            self._focal_plane_index,
            *span,
            self._fill_of(transform),
            self._value_transform,
            self._dtype,
            out=out,
            absent=self._absent,
            frame_transform=transform,
        )

    def _read_tiles(self, indices: Sequence[int]) -> np.ndarray:
        tile_rows, tile_columns, _ = self.tile_shape
        positions = [self.get_tile_position(self._check_tile_index(i)) for i in indices]
        store = self._store
        grid = store.grid(self._stored_channel, self._focal_plane_index)
        transform = self._color_transform()
        tiles = np.full(
            (len(indices), *self.tile_shape), self._fill_of(transform), self.dtype
        )
        wanted: dict[int, list[int]] = {}
        total_rows, total_columns = store.total_shape
        for k, (row, column) in enumerate(positions):
            frame = grid.frame_at(row // tile_rows, column // tile_columns)
            if frame >= 0:
                wanted.setdefault(frame, []).append(k)
            elif self._absent is not None:
                height = min(tile_rows, total_rows - row)
                width = min(tile_columns, total_columns - column)
                tiles[k, :height, :width] = self._absent

        def place(frame_index: int, frame: np.ndarray) -> None:
            for k in wanted[frame_index]:
                row, column = positions[k]
                height = min(tile_rows, total_rows - row)
                width = min(tile_columns, total_columns - column)
                part = frame[:height, :width]
                if self._value_transform is not None:
                    part = self._value_transform(part)
                tiles[k, :height, :width] = part

        store.load_frames(list(wanted), place, transform)
        return tiles

    def __getitem__(self, key: Any) -> np.ndarray:
        """Read tiles, or pixels.

        A 1-D index (an int, a list or array of ints, a slice) selects
        **tiles**, as in dicomslide 0.7: ``matrix[5]`` is tile 5 in row-major
        order of the tile grid (see :meth:`get_tile_index`), of shape
        :attr:`tile_shape`; ``matrix[[0, 1]]`` stacks tiles. A 2- or 3-D index
        selects **pixels** with NumPy semantics: ``matrix[5, :]`` is row 5,
        ``matrix[100:612, 200:712]`` a region, ``matrix[..., 0]`` one sample.
        Only the frames the index touches are read.

        Parameters
        ----------
        key: Any
            Tile index (1-D), or pixel index (2- or 3-D)

        Returns
        -------
        numpy.ndarray
            Tiles, or pixels with the shape NumPy gives for an array of
            :attr:`shape`

        Raises
        ------
        IndexError
            When a tile index or an integer pixel index is out of range

        """
        if not isinstance(key, tuple):
            return self._get_tiles(key)
        if len(key) == 1 and key[0] is not Ellipsis:
            return self._get_tiles(key[0])
        return self._get_pixels(key)

    def _get_tiles(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            return self._read_tiles(list(range(self.num_tiles))[key])
        if isinstance(key, (int, np.integer)):
            return cast("np.ndarray", self._read_tiles([int(key)])[0])
        indices = np.asarray(key)
        if indices.dtype == bool:
            indices = np.nonzero(indices)[0]
        if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
            raise IndexError("a one-dimensional index must be int, slice or ints")
        return self._read_tiles([int(i) for i in indices])

    def _get_pixels(self, key: tuple[Any, ...]) -> np.ndarray:
        key = _expand_ellipsis(key, self.ndim)
        row_key, column_key = key[0], key[1]
        row_key, row_span = _shift_axis_index(row_key, self.shape[0], 0)
        column_key, column_span = _shift_axis_index(column_key, self.shape[1], 1)
        region = self.read_region(
            (row_span[0], column_span[0]),
            (row_span[1] - row_span[0], column_span[1] - column_span[0]),
        )
        return cast("np.ndarray", region[(row_key, column_key, *key[2:])])

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self.num_tiles):
            yield self[index]

    def to_dask(self, tiles_per_chunk: int = 1) -> Any:
        """Get the matrix as a lazy Dask array.

        Chunks are the image's tiles (or squares of ``tiles_per_chunk`` ×
        ``tiles_per_chunk`` tiles), so computing the whole array reads each
        frame once. The array's tasks hold a picklable reference to this
        matrix that reconnects in worker processes (``dask.distributed``).

        Parameters
        ----------
        tiles_per_chunk: int, optional
            Tiles along each axis of a chunk

        Returns
        -------
        dask.array.Array
            Array of shape (rows, columns, samples) and this matrix's dtype

        Raises
        ------
        ImportError
            When Dask is not installed (``pip install "dask[array]"``, or this
            package with its ``dask`` extra)

        """
        try:
            import dask.array as da
        except ImportError as error:
            raise ImportError(
                "to_dask needs Dask: pip install 'dask[array]' (or install "
                "dicomslide with its dask extra: pip install '.[dask]' in a clone)"
            ) from error
        if tiles_per_chunk < 1:
            raise ValueError("tiles_per_chunk must be at least 1")
        rows, columns, samples = self.tile_shape
        chunks = (rows * tiles_per_chunk, columns * tiles_per_chunk, samples)
        name = "dicomslide-" + "-".join(
            [
                *self._pixels.sop_instance_uids,
                str(self._channel_index),
                str(self._focal_plane_index),
                str(self._correct_color),
            ]
        )
        from_array: Any = da.from_array  # (untyped)
        return from_array(
            self,
            chunks=chunks,
            name=name,
            asarray=False,
            fancy=False,
            meta=np.empty((0, 0, 0), self.dtype),
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self[:, :, :]
        return array.astype(dtype) if dtype is not None else array


def _expand_ellipsis(key: tuple[Any, ...], ndim: int) -> tuple[Any, ...]:
    if any(k is None for k in key):
        raise IndexError("numpy.newaxis is not supported in a matrix index")
    ellipses = [i for i, k in enumerate(key) if k is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        i = ellipses[0]
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    if len(key) > ndim:
        raise IndexError(
            f"too many indices for matrix: matrix is {ndim}-dimensional, "
            f"but {len(key)} were indexed"
        )
    return key + (slice(None),) * (ndim - len(key))


def _shift_axis_index(key: Any, length: int, axis: int) -> tuple[Any, tuple[int, int]]:
    """Find the span an axis index touches, and the index relative to it.

    Returns the index shifted so that it applies to the span [start, stop).
    """
    if isinstance(key, slice):
        start, stop, step = key.indices(length)
        selected = range(start, stop, step)
        if len(selected) == 0:
            return slice(0, 0), (0, 0)
        low, high = min(selected), max(selected) + 1
        new_stop = stop - low
        return (
            slice(start - low, new_stop if new_stop >= 0 else None, step),
            (low, high),
        )
    if isinstance(key, (int, np.integer)):
        index = int(key)
        if not -length <= index < length:
            raise IndexError(
                f"index {index} is out of bounds for axis {axis} with size {length}"
            )
        index %= length
        return 0, (index, index + 1)
    indices = np.asarray(key)
    if indices.dtype == bool:
        if indices.shape != (length,):
            raise IndexError(
                f"boolean index did not match axis {axis} of size {length}"
            )
        indices = np.nonzero(indices)[0]
    if not np.issubdtype(indices.dtype, np.integer):
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    if indices.size == 0:
        return indices, (0, 0)
    if np.any(indices < -length) or np.any(indices >= length):
        raise IndexError(f"index out of bounds for axis {axis} with size {length}")
    indices = np.where(indices < 0, indices + length, indices)
    low, high = int(indices.min()), int(indices.max()) + 1
    return indices - low, (low, high)


def _regions_holding(start: int, length: int, region_length: int) -> range:
    """Grid positions, along one axis, of the regions of a grid that starts at
    pixel 0 which hold a pixel of ``[start, start + length)``."""
    if length <= 0:
        return range(0)
    return range(start // region_length, -(-(start + length) // region_length))


class TotalPixelMatrixSampler:
    """Class for sampling regions of a total pixel matrix.

    Regions are sampled from a regular 2D Cartesian grid, where each region
    has the same dimensions. Upon sampling, individual regions may optionally
    be padded at one or more borders using pixels from adjacent regions (or
    the fill value past the edge of the matrix). Sampling can be constrained
    to a subset of the grid.

    Parameters
    ----------
    matrix: dicomslide.TotalPixelMatrix
        Total pixel matrix
    region_dimensions: Tuple[int, int]
        Height (rows) and width (columns) of sampled regions
    bounding_box: Union[Tuple[Tuple[int, int], Tuple[int, int]], None], optional
        Bounding box of region of interest within total pixel matrix from
        which regions should be sampled: zero-based (row, column) offset and
        (rows, columns) size. The regions sampled are those of the grid over
        the whole matrix that hold a pixel of the box; the box must lie
        within the matrix.
    tile_grid_positions: Union[Sequence[Tuple[int, int]], numpy.ndarray, None], optional
        Grid position of tiles that intersect with the region of interest
        within the total pixel matrix from which regions should be sampled.
        Each grid position is a zero-based (row, column) index into the tile
        grid of the total pixel matrix.
    padding: Union[int, Tuple[int, int], Tuple[int, int, int, int]], optional
        Padding on each border of the sampled region using pixels from
        neighboring regions. If a single integer is provided, the value is used
        to pad all four borders with the same number of pixels. If a sequence
        of length 2 is provided, the two values are used to pad the left/right
        and top/bottom border, respectively. If a sequence of length 4 is
        provided, the four values are used to pad the left, top, right, and
        bottom borders respectively.

    Note
    ----
    If `bounding_box` and `tile_grid_positions` are provided,
    `tile_grid_positions` are ignored.

    """  # noqa: E501

    def __init__(
        self,
        matrix: TotalPixelMatrix,
        region_dimensions: tuple[int, int],
        bounding_box: tuple[tuple[int, int], tuple[int, int]] | None = None,
        tile_grid_positions: Sequence[tuple[int, int]] | np.ndarray | None = None,
        padding: int | tuple[int, int] | tuple[int, int, int, int] = 0,
    ) -> None:
        self._matrix = matrix
        region_rows, region_columns = (int(v) for v in region_dimensions)
        if region_rows <= 0 or region_columns <= 0:
            raise ValueError("region dimensions must be positive")
        self._region_dimensions = (region_rows, region_columns)
        left, top, right, bottom = (int(v) for v in normalize_padding(padding))
        self._padding = (left, top, right, bottom)
        # The grid of regions starts at the matrix's first pixel; the regions
        # sampled are those that hold a pixel of the bounding box.
        (row, column), (height, width) = (
            ((0, 0), matrix.shape[:2])
            if bounding_box is None
            else self._check_box(bounding_box)
        )
        row_range = _regions_holding(row, height, region_rows)
        column_range = _regions_holding(column, width, region_columns)
        grid_rows, grid_columns = np.meshgrid(
            np.asarray(row_range), np.asarray(column_range), indexing="ij"
        )
        positions = np.column_stack([grid_rows.ravel(), grid_columns.ravel()])
        positions = positions.astype(np.int64).reshape(-1, 2)
        if bounding_box is None and tile_grid_positions is not None:
            positions = self._select_by_tiles(
                positions, np.asarray(tile_grid_positions)
            )
        self._grid_positions = positions

    def _check_box(
        self, bounding_box: tuple[tuple[int, int], tuple[int, int]]
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        (row, column), (height, width) = bounding_box
        offset, size = (int(row), int(column)), (int(height), int(width))
        rows, columns = self._matrix.shape[:2]
        if (
            min(offset) < 0
            or min(size) < 0
            or offset[0] + size[0] > rows
            or offset[1] + size[1] > columns
        ):
            raise ValueError(
                f"bounding box {bounding_box} (offset, size) must lie within the "
                f"total pixel matrix of {rows} x {columns} pixels"
            )
        return offset, size

    def _select_by_tiles(
        self, positions: np.ndarray, tile_grid_positions: np.ndarray
    ) -> np.ndarray:
        tile_rows, tile_columns, _ = self._matrix.tile_shape
        region_rows, region_columns = self._region_dimensions
        tiles = tile_grid_positions.reshape(-1, 2)
        keep = np.zeros(len(positions), dtype=bool)
        for i, (grid_row, grid_column) in enumerate(positions):
            r0, c0 = grid_row * region_rows, grid_column * region_columns
            keep[i] = bool(
                np.any(
                    (tiles[:, 0] * tile_rows < r0 + region_rows)
                    & ((tiles[:, 0] + 1) * tile_rows > r0)
                    & (tiles[:, 1] * tile_columns < c0 + region_columns)
                    & ((tiles[:, 1] + 1) * tile_columns > c0)
                )
            )
        return positions[keep]

    @property
    def matrix(self) -> TotalPixelMatrix:
        """dicomslide.TotalPixelMatrix: Total pixel matrix"""
        return self._matrix

    @property
    def padding(self) -> tuple[int, int, int, int]:
        """Tuple[int, int, int, int]: Padding at the left, top, right, and
        bottom of each sampled region"""
        return self._padding

    @property
    def region_shape(self) -> tuple[int, int, int]:
        """Tuple[int, int, int]: Number of pixel rows, pixel columns, and
        samples per pixel of a region"""
        return (*self._region_dimensions, self._matrix.shape[2])

    @property
    def padded_region_shape(self) -> tuple[int, int, int]:
        """Tuple[int, int, int]: Number of pixel rows, pixel columns, and
        samples per pixel of sampled region with overlapping pixels from
        neighboring regions"""
        left, top, right, bottom = self._padding
        rows, columns, samples = self.region_shape
        return (rows + top + bottom, columns + left + right, samples)

    def __len__(self) -> int:
        return len(self._grid_positions)

    def get_region_grid_position(self, index: int) -> tuple[int, int]:
        """Get position of sampled region in the grid.

        Parameters
        ----------
        index: int
            Zero-based index of the sampled region

        Returns
        -------
        Tuple[int, int]
            Zero-based (row, column) position in the grid of regions, which
            starts at the first pixel of the matrix: the region covers rows
            from ``row * region_shape[0]`` and columns from
            ``column * region_shape[1]`` on

        """
        row, column = self._grid_positions[index]
        return (int(row), int(column))

    def get_region_bounding_box(
        self, index: int
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Get the pixels a sampled region covers, padding included.

        Parameters
        ----------
        index: int
            Zero-based index of the sampled region

        Returns
        -------
        offset: Tuple[int, int]
            Zero-based (row, column) offset in the total pixel matrix (may be
            negative where padding reaches past the matrix)
        size: Tuple[int, int]
            Rows and columns of the padded region

        """
        grid_row, grid_column = self.get_region_grid_position(index)
        left, top, _, _ = self._padding
        region_rows, region_columns = self._region_dimensions
        row = grid_row * region_rows - top
        column = grid_column * region_columns - left
        return ((row, column), self.padded_region_shape[:2])

    def __getitem__(self, index: int) -> np.ndarray:
        if not -len(self) <= index < len(self):
            raise IndexError(f"region index {index} is out of range")
        offset, size = self.get_region_bounding_box(index % len(self))
        return self._matrix.read_region(offset, size)

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self)):
            yield self[index]
