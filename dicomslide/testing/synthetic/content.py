"""Pixel content: procedural tissue, label and overview pictures."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _max_value(bits: int) -> int:
    return (1 << bits) - 1


def _tile_hash(*values: int) -> int:
    digest = hashlib.blake2b(repr(values).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def _random_pixels(shape: tuple[int, ...], bits: int, seed: int) -> np.ndarray:
    planes, paths = shape[:2]
    dtype = np.uint8 if bits <= 8 else np.uint16
    out = np.empty(shape, dtype=dtype)
    for p in range(planes):
        for o in range(paths):
            rng = np.random.default_rng([seed, p, o, 17])
            out[p, o] = rng.integers(
                0, _max_value(bits) + 1, size=shape[2:], dtype=dtype
            )
    return out


def _smooth_pixels(
    shape: tuple[int, ...], bits: int, seed: int, tile_rows: int, tile_cols: int
) -> np.ndarray:
    """JPEG-friendly content that differs per tile, plane, path and sample.

    A global gradient plus, inside each tile, two low-frequency sinusoids
    whose periods (16-64 px), directions and phases are drawn per (plane,
    path, sample, tile), a per-(plane, path) offset, plus low-amplitude
    noise.
    Two different tiles, or the same tile of two planes/paths, differ by
    about 10 units or more on average, far above JPEG errors.
    """
    planes, paths, rows, cols, samples = shape
    rr = np.arange(rows, dtype=np.float64)[:, None]
    cc = np.arange(cols, dtype=np.float64)[None, :]
    ramp = 0.5 * rr / max(rows - 1, 1) + 0.5 * cc / max(cols - 1, 1)
    grid_rows, grid_cols = -(-rows // tile_rows), -(-cols // tile_cols)
    out = np.empty(shape, dtype=np.float64)
    step = min(14.0, 60.0 / max(planes * paths - 1, 1))
    for p in range(planes):
        for o in range(paths):
            rng = np.random.default_rng([seed, p, o, 29])
            params = rng.random((samples, grid_rows, grid_cols, 2, 3))
            level = 40 + step * (p * paths + o)
            for s in range(samples):
                plane = level + 60 * ramp + rng.normal(0.0, 2.0, size=(rows, cols))
                for tr in range(grid_rows):
                    for tc in range(grid_cols):
                        r0, c0 = tr * tile_rows, tc * tile_cols
                        y = rr[r0 : r0 + tile_rows] - r0
                        x = cc[:, c0 : c0 + tile_cols] - c0
                        for period_u, angle_u, phase_u in params[s, tr, tc]:
                            period = 16 + 48 * period_u
                            angle = math.pi * angle_u
                            wave = np.sin(
                                2
                                * math.pi
                                * (x * math.cos(angle) + y * math.sin(angle))
                                / period
                                + 2 * math.pi * phase_u
                            )
                            plane[r0 : r0 + tile_rows, c0 : c0 + tile_cols] += 30 * (
                                0.5 + 0.5 * wave
                            )
                out[p, o, :, :, s] = plane
    if bits > 8:
        out = out * (_max_value(bits) / 255.0)
    out = np.clip(np.rint(out), 0, _max_value(bits))
    return out.astype(np.uint8 if bits <= 8 else np.uint16)


def _smooth_noise(
    rng: np.random.Generator, rows: int, cols: int, cell: float
) -> np.ndarray:
    """Smooth value noise in [0, 1] with feature size about `cell` pixels."""
    small_r = max(2, int(rows / cell) + 3)
    small_c = max(2, int(cols / cell) + 3)
    small = rng.random((small_r, small_c)).astype(np.float32)
    img = Image.fromarray(small, mode="F")
    big = img.resize(
        (int(small_c * cell), int(small_r * cell)), resample=Image.Resampling.BICUBIC
    )
    arr = np.asarray(big, dtype=np.float32)[:rows, :cols]
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / max(hi - lo, 1e-6)


def _fractal_noise(
    rng: np.random.Generator, rows: int, cols: int, cell: float, octaves: int = 4
) -> np.ndarray:
    total = np.zeros((rows, cols), dtype=np.float32)
    amp, norm = 1.0, 0.0
    for _ in range(octaves):
        total += amp * _smooth_noise(rng, rows, cols, max(cell, 2.0))
        norm += amp
        amp *= 0.5
        cell /= 2.0
    return total / norm


def _box_blur_axis(arr: np.ndarray, radius: int, axis: int) -> np.ndarray:
    pad = [(0, 0)] * arr.ndim
    pad[axis] = (radius + 1, radius)
    padded = np.pad(arr, pad, mode="edge")
    csum = np.cumsum(padded, axis=axis, dtype=np.float64)
    n = arr.shape[axis]
    upper = np.take(csum, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
    lower = np.take(csum, np.arange(0, n), axis=axis)
    return ((upper - lower) / (2 * radius + 1)).astype(np.float32)


def _blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    """Approximate Gaussian blur (three box passes per axis)."""
    radius = max(1, round(math.sqrt(12 * sigma * sigma / 3 + 1) / 2))
    out = arr.astype(np.float32)
    for _ in range(3):
        out = _box_blur_axis(out, radius, 0)
        out = _box_blur_axis(out, radius, 1)
    return out


def _streaks(
    rng: np.random.Generator,
    rows: int,
    cols: int,
    angle_deg: float,
    across: float,
    along: float,
) -> np.ndarray:
    """Anisotropic noise: thin streaks along `angle_deg`, values in [0, 1]."""
    diag = int(math.hypot(rows, cols)) + 4
    small = rng.random((int(diag / across) + 3, int(diag / along) + 3))
    img = Image.fromarray(small.astype(np.float32), mode="F")
    img = img.resize(
        (int(small.shape[1] * along), int(small.shape[0] * across)),
        resample=Image.Resampling.BICUBIC,
    )
    img = img.rotate(angle_deg, resample=Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32)
    r0 = (arr.shape[0] - rows) // 2
    c0 = (arr.shape[1] - cols) // 2
    arr = arr[r0 : r0 + rows, c0 : c0 + cols]
    lo, hi = float(np.percentile(arr, 1)), float(np.percentile(arr, 99))
    return np.asarray(np.clip((arr - lo) / max(hi - lo, 1e-6), 0.0, 1.0))


def _ellipse_polygon(
    cx: float,
    cy: float,
    a: float,
    b: float,
    theta: float,
    n: int = 24,
    wobble: Sequence[float] = (),
) -> list[tuple[float, float]]:
    """Polygon of a rotated ellipse; `wobble` = (amplitude, k, phase)..."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    scale = np.ones_like(t)
    for i in range(0, len(wobble) - 2, 3):
        scale += wobble[i] * np.sin(wobble[i + 1] * t + wobble[i + 2])
    ex, ey = a * scale * np.cos(t), b * scale * np.sin(t)
    ct, st = math.cos(theta), math.sin(theta)
    return list(
        zip((cx + ex * ct - ey * st).tolist(), (cy + ex * st + ey * ct).tolist())
    )


def _warp(
    rng: np.random.Generator, arr: np.ndarray, amplitude: float, cell: float
) -> np.ndarray:
    """Displace `arr` by a smooth random field (nearest-neighbour sampling)."""
    rows, cols = arr.shape
    dy = (_smooth_noise(rng, rows, cols, cell) - 0.5) * 2 * amplitude
    dx = (_smooth_noise(rng, rows, cols, cell) - 0.5) * 2 * amplitude
    r = np.clip(np.arange(rows)[:, None] + dy.astype(np.int32), 0, rows - 1)
    c = np.clip(np.arange(cols)[None, :] + dx.astype(np.int32), 0, cols - 1)
    return arr[r, c]


def make_tissue_image(
    rows: int, cols: int, seed: int = 0, *, pixel_size_um: float = 1.0
) -> np.ndarray:
    """Render an H&E-stained tissue section on white glass.

    Procedural: fractal noise thresholded into a ragged tissue mask; pink
    eosin stroma with wavy collagen fibres and sparse elongated nuclei;
    glands (white lumen, purple-pink epithelium with a ring of nuclei);
    clusters of round dark nuclei (inflammatory cells); colours from a
    Beer-Lambert hematoxylin/eosin stain model.

    Parameters
    ----------
    rows, cols : int
        Image size in pixels.
    seed : int, optional
        Random seed (the result is deterministic).
    pixel_size_um : float, optional
        Pixel size in µm; structures have realistic physical sizes (nuclei
        about 7 µm across).

    Returns
    -------
    numpy.ndarray
        uint8 RGB array of shape ``(rows, cols, 3)``.
    """
    rng = np.random.default_rng([seed, 4242])
    um = 1.0 / pixel_size_um  # pixels per µm
    scale = max(rows, cols)
    yy = (np.arange(rows, dtype=np.float32)[:, None] - rows / 2) / (scale / 2)
    xx = (np.arange(cols, dtype=np.float32)[None, :] - cols / 2) / (scale / 2)

    # Tissue mask: two overlapping lobes distorted by noise.
    lobes = np.maximum(
        1.0 - ((xx + 0.18) / 0.62) ** 2 - ((yy + 0.02) / 0.50) ** 2,
        1.0 - ((xx - 0.35) / 0.42) ** 2 - ((yy - 0.12) / 0.42) ** 2,
    )
    shape_noise = _fractal_noise(rng, rows, cols, scale / 6, octaves=6)
    mask = np.clip((lobes + 0.9 * (shape_noise - 0.5) - 0.05) / 0.03, 0.0, 1.0)
    mask = _blur(mask, 1.5 * um)

    # Stroma: wavy collagen fibres in two slowly varying directions.
    region = _smooth_noise(rng, rows, cols, 500 * um)
    fib_a = _streaks(rng, rows, cols, 25.0, 7 * um, 70 * um)
    fib_b = _streaks(rng, rows, cols, -40.0, 7 * um, 70 * um)
    fibres = _warp(rng, fib_a * region + fib_b * (1.0 - region), 25 * um, 120 * um)
    density = _fractal_noise(rng, rows, cols, 150 * um, octaves=4)
    eosin = (0.16 + 0.22 * density + 0.30 * fibres**2).astype(np.float32)
    hema = np.full((rows, cols), 0.035, dtype=np.float32)
    # Loose areas / cracks.
    loose = np.clip(
        (_fractal_noise(rng, rows, cols, 80 * um, octaves=3) - 0.70) / 0.06, 0.0, 1.0
    )
    eosin *= 1.0 - 0.8 * loose

    nuc_img = Image.new("L", (cols, rows), 0)
    nuc_draw = ImageDraw.Draw(nuc_img)
    epi_img = Image.new("L", (cols, rows), 0)
    epi_draw = ImageDraw.Draw(epi_img)
    lumen_img = Image.new("L", (cols, rows), 0)
    lumen_draw = ImageDraw.Draw(lumen_img)

    def nucleus(
        cx: float, cy: float, a: float, b: float, theta: float, dark: float
    ) -> None:
        nuc_draw.polygon(
            _ellipse_polygon(cx, cy, a, b, theta, 12), fill=int(255 * dark)
        )

    # Glands.
    area_um2 = rows * cols / um**2
    n_glands = int(area_um2 / 60000)
    inside_r, inside_c = np.nonzero(mask[::8, ::8] > 0.99)
    glandular = _smooth_noise(rng, rows, cols, 700 * um)
    placed: list[tuple[float, float, float]] = []
    for _ in range(n_glands):
        if len(inside_r) == 0:
            break
        k = rng.integers(len(inside_r))
        cy, cx = inside_r[k] * 8.0, inside_c[k] * 8.0
        if glandular[int(cy), int(cx)] < 0.45:
            continue
        a = rng.uniform(18, 55) * um
        b = a * rng.uniform(0.45, 0.9)
        theta = rng.uniform(0, math.pi)
        wall = rng.uniform(12, 18) * um
        if any(
            math.hypot(cx - px, cy - py) < a + wall + pr + 10 * um
            for px, py, pr in placed
        ):
            continue
        placed.append((cx, cy, a + wall))
        wobble = [
            rng.uniform(0.03, 0.10),
            int(rng.integers(2, 5)),
            rng.uniform(0, 2 * math.pi),
            rng.uniform(0.02, 0.05),
            int(rng.integers(5, 8)),
            rng.uniform(0, 2 * math.pi),
        ]
        epi_draw.polygon(
            _ellipse_polygon(cx, cy, a + wall, b + wall, theta, 64, wobble), fill=255
        )
        lumen_draw.polygon(_ellipse_polygon(cx, cy, a, b, theta, 64, wobble), fill=255)
        perimeter = math.pi * (a + b + 2 * wall)
        n_nuc = int(perimeter / (6.5 * um))
        for i in range(n_nuc):
            phi = 2 * math.pi * (i + rng.uniform(-0.2, 0.2)) / n_nuc
            rad = rng.uniform(0.55, 0.85)
            w = 1.0 + sum(
                wobble[j] * math.sin(wobble[j + 1] * phi + wobble[j + 2])
                for j in (0, 3)
            )
            ex = (a * w + wall * rad) * math.cos(phi)
            ey = (b * w + wall * rad) * math.sin(phi)
            ct, st = math.cos(theta), math.sin(theta)
            px, py = cx + ex * ct - ey * st, cy + ex * st + ey * ct
            radial = math.atan2(py - cy, px - cx)
            nucleus(
                px,
                py,
                rng.uniform(4.0, 5.5) * um,
                rng.uniform(2.2, 3.0) * um,
                radial,
                rng.uniform(0.75, 1.0),
            )
    epithelium = np.asarray(epi_img, dtype=np.float32) / 255.0
    lumen = np.asarray(lumen_img, dtype=np.float32) / 255.0
    epithelium = np.clip(epithelium - lumen, 0.0, 1.0)

    # Stromal nuclei: sparse, elongated along the local fibre direction.
    stroma_ok = (mask > 0.5) & (np.asarray(epi_img) == 0)
    n_stromal = int(area_um2 / 900)
    ys = rng.random(n_stromal) * rows
    xs = rng.random(n_stromal) * cols
    for y, x in zip(ys, xs):
        yi, xi = int(y), int(x)
        if not stroma_ok[yi, xi]:
            continue
        angle = math.radians(-25.0) if region[yi, xi] > 0.5 else math.radians(40.0)
        nucleus(
            x,
            y,
            rng.uniform(5, 8) * um,
            rng.uniform(1.4, 2.2) * um,
            angle + rng.normal(0, 0.2),
            rng.uniform(0.6, 0.9),
        )

    # Inflammatory clusters: small round dark nuclei.
    infl = _fractal_noise(rng, rows, cols, 250 * um, octaves=3)
    n_infl = int(area_um2 / 120)
    ys = rng.random(n_infl) * rows
    xs = rng.random(n_infl) * cols
    for y, x in zip(ys, xs):
        yi, xi = int(y), int(x)
        p = max(0.0, (infl[yi, xi] - 0.58) / 0.2)
        if not stroma_ok[yi, xi] or rng.random() > p:
            continue
        r = rng.uniform(2.8, 3.8) * um
        nucleus(
            x,
            y,
            r,
            r * rng.uniform(0.85, 1.0),
            rng.uniform(0, math.pi),
            rng.uniform(0.9, 1.0),
        )

    nuclei = np.asarray(nuc_img, dtype=np.float32) / 255.0
    nuclei = _blur(nuclei, 0.6 * um)
    chromatin = _fractal_noise(rng, rows, cols, 3 * um, octaves=2)
    hema = (hema + 0.10 * epithelium + nuclei * (0.9 + 0.6 * chromatin)).astype(
        np.float32
    )
    eosin = eosin * (1.0 - lumen) * (1.0 - 0.6 * nuclei) + 0.22 * epithelium
    eosin = eosin + 0.05 * lumen * _smooth_noise(rng, rows, cols, 20 * um)

    # Beer-Lambert mixing with standard H&E optical density vectors.
    h_vec = np.array([0.65, 0.70, 0.29], dtype=np.float32)
    e_vec = np.array([0.09, 0.90, 0.36], dtype=np.float32)
    h_vec /= np.linalg.norm(h_vec)
    e_vec /= np.linalg.norm(e_vec)
    od = (mask * hema)[..., None] * h_vec + (mask * eosin)[..., None] * e_vec
    od += 0.02  # glass and mounting medium
    rgb = 248.0 * np.exp(-od)
    rgb += rng.normal(0.0, 1.5, size=(rows, cols, 1)).astype(np.float32)
    return np.asarray(np.clip(np.rint(rgb), 0, 255), dtype=np.uint8)


def downsample_area(arr: np.ndarray, factor: int) -> np.ndarray:
    """Area-average downsample the two axes before the last of `arr`.

    Parameters
    ----------
    arr : numpy.ndarray
        Array ``(..., rows, cols, samples)``.
    factor : int
        Integer downsample factor; the output has ``ceil(rows / factor)``
        rows; partial blocks at the edges are averaged over their pixels.

    Returns
    -------
    numpy.ndarray
        Downsampled array with the input dtype (rounded).
    """
    if factor == 1:
        return arr.copy()
    rows, cols = arr.shape[-3], arr.shape[-2]
    out_r, out_c = -(-rows // factor), -(-cols // factor)
    pad_r, pad_c = out_r * factor - rows, out_c * factor - cols
    pad = [(0, 0)] * (arr.ndim - 3) + [(0, pad_r), (0, pad_c), (0, 0)]
    data = np.pad(arr.astype(np.float64), pad)
    count = np.pad(np.ones((rows, cols)), [(0, pad_r), (0, pad_c)])
    shape = arr.shape[:-3] + (out_r, factor, out_c, factor, arr.shape[-1])
    sums = data.reshape(shape).sum(axis=(-4, -2))
    counts = count.reshape(out_r, factor, out_c, factor).sum(axis=(1, 3))
    return np.asarray(np.rint(sums / counts[..., None]), dtype=arr.dtype)


def make_label_image(
    rows: int, cols: int, lines: Sequence[str], barcode_value: str, seed: int = 0
) -> np.ndarray:
    """Render a slide label: text lines and a 2-D-barcode-like block.

    Parameters
    ----------
    rows, cols : int
        Image size.
    lines : sequence of str
        Text lines, drawn top to bottom in black.
    barcode_value : str
        Seeds the module pattern of the barcode block (Data-Matrix-like, with
        an L-shaped finder and a dotted timing border).
    seed : int, optional
        Extra seed for the paper texture.

    Returns
    -------
    numpy.ndarray
        uint8 RGB array ``(rows, cols, 3)``.
    """
    rng = np.random.default_rng([seed, _tile_hash(*barcode_value.encode())])
    paper = 246 + rng.normal(0, 1.5, size=(rows, cols, 1))
    base = np.clip(np.concatenate([paper, paper, paper - 6], axis=2), 0, 255)
    img = Image.fromarray(base.astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(img)
    # Barcode block at the top.
    modules = 14
    side = min(rows // 2, cols) - 8
    module = max(2, side // modules)
    side = module * modules
    x0 = (cols - side) // 2
    y0 = 6
    bits = (
        np.random.default_rng(_tile_hash(*barcode_value.encode())).random(
            (modules, modules)
        )
        < 0.5
    )
    bits[:, 0] = True
    bits[-1, :] = True
    bits[0, :] = np.arange(modules) % 2 == 0
    bits[:, -1] = np.arange(modules) % 2 == 1
    for i in range(modules):
        for j in range(modules):
            if bits[i, j]:
                draw.rectangle(
                    [
                        x0 + j * module,
                        y0 + i * module,
                        x0 + (j + 1) * module - 1,
                        y0 + (i + 1) * module - 1,
                    ],
                    fill=(10, 10, 10),
                )
    # Text below.
    y = y0 + side + 6
    n = max(len(lines), 1)
    size = max(8, min(int((rows - y - 4) / n / 1.25), int(cols / 9)))
    font = ImageFont.load_default(size=size)
    for line in lines:
        width = draw.textlength(line, font=font)
        while width > cols - 8 and size > 8:
            size -= 1
            font = ImageFont.load_default(size=size)
            width = draw.textlength(line, font=font)
        draw.text(((cols - width) / 2, y), line, fill=(0, 0, 0), font=font)
        y += int(size * 1.25)
    return np.asarray(img)


def make_overview_image(
    rows: int,
    cols: int,
    *,
    content: np.ndarray | None,
    content_box: tuple[int, int, int, int] | None,
    label: np.ndarray | None,
    label_box: tuple[int, int, int, int] | None,
    seed: int = 0,
) -> np.ndarray:
    """Render a low-resolution photo of the whole glass slide.

    Parameters
    ----------
    rows, cols : int
        Image size (the slide fills the image).
    content : numpy.ndarray or None
        RGB picture of the scanned area, resized into `content_box`.
    content_box : tuple of int or None
        ``(row0, col0, row1, col1)`` where the scanned area lies.
    label : numpy.ndarray or None
        Label image, resized into `label_box` (rotated to fit if needed).
    label_box : tuple of int or None
        ``(row0, col0, row1, col1)`` of the label.
    seed : int, optional
        Seed for the glass texture.

    Returns
    -------
    numpy.ndarray
        uint8 RGB array ``(rows, cols, 3)``.
    """
    rng = np.random.default_rng([seed, 777])
    glass = 228 + 6 * _smooth_noise(rng, rows, cols, max(rows, cols) / 4)
    glass = glass + rng.normal(0, 1.0, size=(rows, cols))
    out = np.repeat(glass[..., None], 3, axis=2)
    out[..., 2] += 3
    out[:2] = out[-2:] = 160
    out[:, :2] = out[:, -2:] = 160
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), mode="RGB")

    def paste(picture: np.ndarray, box: tuple[int, int, int, int]) -> None:
        r0, c0, r1, c1 = box
        h, w = max(r1 - r0, 1), max(c1 - c0, 1)
        pic = Image.fromarray(picture[..., :3].astype(np.uint8), mode="RGB")
        if (pic.width > pic.height) != (w > h):
            pic = pic.transpose(Image.Transpose.ROTATE_90)
        pic = pic.resize((w, h), resample=Image.Resampling.BOX)
        img.paste(pic, (c0, r0))

    if content is not None and content_box is not None:
        # Light passes the glass and then the specimen: multiply the glass by
        # the specimen's transmission, so white areas leave the glass as is.
        r0, c0, r1, c1 = content_box
        h, w = max(r1 - r0, 1), max(c1 - c0, 1)
        pic = Image.fromarray(content[..., :3].astype(np.uint8), mode="RGB")
        pic = pic.resize((w, h), resample=Image.Resampling.BOX)
        region = np.asarray(img.crop((c0, r0, c0 + w, r0 + h)), dtype=np.float32)
        transmission = np.asarray(pic, dtype=np.float32) / 248.0
        blended = np.clip(region * transmission, 0, 255).astype(np.uint8)
        img.paste(Image.fromarray(blended, mode="RGB"), (c0, r0))
    if label is not None and label_box is not None:
        paste(label, label_box)
    return np.asarray(img)
