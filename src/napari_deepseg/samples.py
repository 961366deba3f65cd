"""Sample images with example scribbles, free of any GUI import.

Used by napari's *File > Open Sample* (see :mod:`napari_deepseg._sample_data`)
and by the command-line demo. Every function returns ``(image, scribbles)``:
an RGB ``uint8`` image ``(rows, cols, 3)`` and a ``uint8`` scribble image
``(rows, cols)`` with 0 unlabelled, 1 object and 2 background.

Examples
--------
>>> image, scribbles = aerial_sample()
>>> image.shape[:2] == scribbles.shape, sorted(set(scribbles.ravel().tolist()))
(True, [0, 1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage import draw

OBJECT = 1
BACKGROUND = 2

#: polylines ``[(row, col), ...]`` of the cat sample's object strokes (inside the cat)
CAT_OBJECT_STROKES = (
    ((62, 120), (55, 200), (62, 290)),
    ((90, 240), (170, 245), (250, 245)),
    ((150, 60), (200, 100), (250, 150)),
    ((160, 300), (215, 330)),
    ((30, 75), (40, 100)),
)
#: polylines of the cat sample's background strokes (around the cat)
CAT_BACKGROUND_STROKES = (
    ((70, 428), (180, 432), (290, 428)),
    ((230, 395), (290, 395)),
    ((5, 8), (60, 12), (110, 14)),
    ((5, 425), (45, 445)),
    ((95, 388), (150, 392), (205, 400)),
    ((286, 345), (286, 440)),
)


def draw_strokes(
    scribbles: np.ndarray, strokes: Sequence[Sequence[tuple]], label: int, radius: int = 3
) -> np.ndarray:
    """Paint polylines of a given thickness into a label image, in place.

    Parameters
    ----------
    scribbles : numpy.ndarray
        ``(rows, cols)`` integer label image, modified in place.
    strokes : sequence of sequence of (row, col)
        Each stroke is a polyline through its vertices.
    label : int
        Value painted.
    radius : int
        Half-width of the stroke in pixels (a disk brush).

    Returns
    -------
    numpy.ndarray
        ``scribbles``, for chaining.

    Examples
    --------
    >>> s = draw_strokes(np.zeros((9, 9), np.uint8), [((4, 1), (4, 7))], 1, radius=1)
    >>> int(s[4, 4]), int(s[3, 4]), int(s[0, 0])
    (1, 1, 0)
    """
    line = np.zeros(scribbles.shape, bool)
    for stroke in strokes:
        for (r0, c0), (r1, c1) in zip(stroke[:-1], stroke[1:]):
            rr, cc = draw.line(int(r0), int(c0), int(r1), int(c1))
            keep = (rr >= 0) & (rr < line.shape[0]) & (cc >= 0) & (cc < line.shape[1])
            line[rr[keep], cc[keep]] = True
    if radius > 0:
        rr, cc = draw.disk((radius, radius), radius + 0.5, shape=(2 * radius + 1,) * 2)
        brush = np.zeros((2 * radius + 1,) * 2, bool)
        brush[rr, cc] = True
        line = ndi.binary_dilation(line, structure=brush)
    scribbles[line] = label
    return scribbles


def cat_sample() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's *chelsea* (a cat, CC0) with object and background strokes.

    Returns
    -------
    image : numpy.ndarray
        ``(300, 451, 3)`` uint8 RGB.
    scribbles : numpy.ndarray
        ``(300, 451)`` uint8: 1 on the cat, 2 around it, 0 elsewhere.
    """
    from skimage import data

    image = data.chelsea()
    scribbles = np.zeros(image.shape[:2], np.uint8)
    draw_strokes(scribbles, CAT_OBJECT_STROKES, OBJECT, radius=3)
    draw_strokes(scribbles, CAT_BACKGROUND_STROKES, BACKGROUND, radius=3)
    return image, scribbles


# -- aerial scene ---------------------------------------------------------------

#: roof colours (RGB): terracotta, slate, beige, dark red
ROOF_COLOURS = ((178, 84, 60), (92, 98, 128), (206, 190, 160), (140, 52, 46))
GRASS = (96, 138, 64)
TREE = (38, 86, 40)
ROAD = (118, 118, 122)


@dataclass(frozen=True)
class Roof:
    """An axis-aligned building roof: top-left corner, size and colour index."""

    row: int
    col: int
    height: int
    width: int
    colour: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices covering the roof."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    def ridge(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """End points of a stroke along the roof's long axis, inset from its edges."""
        r0, c0, h, w = self.row, self.col, self.height, self.width
        if w >= h:
            mid, inset = r0 + h // 2, max(3, w // 5)
            return (mid, c0 + inset), (mid, c0 + w - 1 - inset)
        mid, inset = c0 + w // 2, max(3, h // 5)
        return (r0 + inset, mid), (r0 + h - 1 - inset, mid)


def _texture(rng: np.random.Generator, shape: tuple, sigma: float, amplitude: float) -> np.ndarray:
    """Smoothed Gaussian noise with unit-ish spread times ``amplitude``."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return noise / (noise.std() + 1e-9) * amplitude


def _aerial_layout(rows: int, cols: int, rng: np.random.Generator):
    """Road masks (two crossing roads) and non-overlapping roofs in the blocks between them."""
    road_r, road_c, half = rows // 2, int(cols * 0.45), 12
    road = np.zeros((rows, cols), bool)
    road[road_r - half : road_r + half, :] = True
    road[:, road_c - half : road_c + half] = True
    blocks = [
        (0, road_r - half, 0, road_c - half),
        (0, road_r - half, road_c + half, cols),
        (road_r + half, rows, 0, road_c - half),
        (road_r + half, rows, road_c + half, cols),
    ]
    roofs = []
    for b, (r0, r1, c0, c1) in enumerate(blocks):
        for i in range(2):
            for j in range(2):
                cell_r0 = r0 + 8 + i * (r1 - r0 - 8) // 2
                cell_c0 = c0 + 10 + j * (c1 - c0 - 10) // 2
                h, w = int(rng.integers(28, 44)), int(rng.integers(34, 60))
                if rng.random() < 0.4:
                    h, w = w, h
                h, w = min(h, (r1 - r0) // 2 - 14), min(w, (c1 - c0) // 2 - 16)
                dr = int(rng.integers(0, max(1, (r1 - r0) // 2 - 12 - h)))
                dc = int(rng.integers(0, max(1, (c1 - c0) // 2 - 14 - w)))
                roofs.append(Roof(cell_r0 + dr, cell_c0 + dc, h, w, (b + i + 2 * j) % len(ROOF_COLOURS)))
    return road, (road_r, road_c), roofs


def _paint_roof(image: np.ndarray, roof: Roof, shade: np.ndarray) -> None:
    """A gable roof: two halves of slightly different brightness, a shadow to the south-east."""
    rs, cs = roof.slices
    shadow = (slice(rs.start + 4, rs.stop + 4), slice(cs.start + 4, cs.stop + 4))
    image[shadow] *= 0.55
    colour = np.asarray(ROOF_COLOURS[roof.colour], np.float64)
    patch = np.broadcast_to(colour, (roof.height, roof.width, 3)).copy()
    if roof.width >= roof.height:
        patch[: roof.height // 2] *= 0.86
    else:
        patch[:, : roof.width // 2] *= 0.86
    image[rs, cs] = patch + shade[rs, cs, None] * 0.4


def _paint_trees(image, occupied, rng, count: int = 60) -> list:
    """Round tree crowns on free grass; returns their centres."""
    rows, cols = occupied.shape
    centres = []
    for _ in range(count * 10):
        if len(centres) == count:
            break
        r, c, rad = int(rng.integers(6, rows - 6)), int(rng.integers(6, cols - 6)), int(rng.integers(5, 10))
        rr, cc = draw.disk((r, c), rad + 3, shape=(rows, cols))
        if occupied[rr, cc].any():
            continue
        rr, cc = draw.disk((r, c), rad, shape=(rows, cols))
        image[rr, cc] = np.asarray(TREE) * (0.8 + 0.4 * rng.random())
        occupied[rr, cc] = True
        centres.append((r, c))
    return centres


def _aerial_scribbles(shape, roofs, crossing, trees) -> np.ndarray:
    """Object strokes along most roofs' ridges; background strokes on roads, grass and trees."""
    rows, cols = shape
    scribbles = np.zeros(shape, np.uint8)
    marked = [roof for k, roof in enumerate(roofs) if k % 3 != 2]
    draw_strokes(scribbles, [roof.ridge() for roof in marked], OBJECT, radius=2)
    road_r, road_c = crossing
    background = [
        ((road_r, 10), (road_r, road_c - 30)),
        ((road_r, road_c + 30), (road_r, cols - 10)),
        ((10, road_c), (road_r - 30, road_c)),
        ((road_r + 30, road_c), (rows - 10, road_c)),
    ]
    background += [((r - 4, c - 4), (r + 4, c + 4)) for r, c in trees[:12]]
    draw_strokes(scribbles, background, BACKGROUND, radius=2)
    return scribbles


def _grass_strokes(scribbles: np.ndarray, occupied: np.ndarray, count: int = 8) -> None:
    """Short background strokes in the largest stretches of free grass."""
    free = ndi.distance_transform_edt(~occupied)
    flat = np.argsort(free.ravel())[::-1]
    picked = []
    for idx in flat:
        r, c = np.unravel_index(idx, free.shape)
        if free[r, c] < 8 or len(picked) == count:
            break
        if all(abs(r - pr) + abs(c - pc) > 40 for pr, pc in picked):
            picked.append((int(r), int(c)))
    strokes = [((r, c - 6), (r, c + 6)) for r, c in picked]
    draw_strokes(scribbles, strokes, BACKGROUND, radius=2)


def aerial_sample(shape: tuple[int, int] = (320, 480), seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A procedurally generated aerial-style scene: roads, building roofs, trees and grass.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the scene (at least 160 x 200).
    seed : int
        Seed of the random generator; the same seed gives the same scene.

    Returns
    -------
    image : numpy.ndarray
        ``(rows, cols, 3)`` uint8 RGB.
    scribbles : numpy.ndarray
        ``(rows, cols)`` uint8: 1 on roofs (object), 2 on roads, grass and trees.

    Raises
    ------
    ValueError
        If ``shape`` is too small for the layout.
    """
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 160 or cols < 200:
        raise ValueError(f"shape must be at least (160, 200), got {tuple(shape)}")
    rng = np.random.default_rng(seed)
    road, crossing, roofs = _aerial_layout(rows, cols, rng)
    image = np.empty((rows, cols, 3), np.float64)
    image[:] = GRASS
    image += _texture(rng, (rows, cols), 2.0, 14.0)[..., None] * np.array([0.6, 1.0, 0.5])
    image[road] = ROAD
    image[road] += _texture(rng, (rows, cols), 1.0, 5.0)[road, None]
    road_r, road_c = crossing
    image[road_r - 1 : road_r + 1, ::16] = 235
    image[road_r - 1 : road_r + 1, 8::16] = ROAD
    shade = _texture(rng, (rows, cols), 1.0, 8.0)
    occupied = road.copy()
    for roof in roofs:
        _paint_roof(image, roof, shade)
        rs, cs = roof.slices
        occupied[rs.start : rs.stop + 6, cs.start : cs.stop + 6] = True
    trees = _paint_trees(image, occupied, rng)
    image = np.clip(image + rng.normal(0, 3.0, image.shape), 0, 255).astype(np.uint8)
    scribbles = _aerial_scribbles((rows, cols), roofs, crossing, trees)
    _grass_strokes(scribbles, occupied)
    return image, scribbles


def roof_mask(shape: tuple[int, int] = (320, 480), seed: int = 7) -> np.ndarray:
    """Ground truth of :func:`aerial_sample`: ``True`` on building roofs.

    Examples
    --------
    >>> roof_mask().dtype
    dtype('bool')
    """
    rows, cols = int(shape[0]), int(shape[1])
    _, _, roofs = _aerial_layout(rows, cols, np.random.default_rng(seed))
    mask = np.zeros((rows, cols), bool)
    for roof in roofs:
        mask[roof.slices] = True
    return mask
