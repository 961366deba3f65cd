r"""Volumes and stacks: a 3-D graph cut (6-neighbourhood, anisotropic spacing) and a per-plane mode.

The energy is the weight-free default preset's, in three dimensions: an image-wide
colour (or intensity) mixture shared by the two classes and refitted GrabCut-style,
and contrast-sensitive n-links between the six face neighbours,

.. math::

    w_{pq} = \frac{\lambda}{s_a / s_{\min}} \exp\!\left(-\frac{d_{pq}^2}{\sigma^2}\right)

where :math:`s_a` is the voxel spacing along the axis joining :math:`p` and
:math:`q` (the napari layer's ``scale``): neighbours twice as far apart are half as
strongly tied. ``mode="planes"`` drops the edges between planes, so every plane
of a time series is cut on its own (with the appearance model learned from the
strokes of all planes; a plane without strokes is labelled by that model and its
own edges, and its object islands smaller than 0.1 % of the plane are dropped: see
:func:`remove_specks`). Star convexity is not used in 3-D.

Volumes above :data:`MULTILEVEL_MIN_VOXELS` are solved coarse to fine as in 2-D
(:mod:`~napari_deepseg.core.cut.pyramid`): halved along every axis until the coarsest
level has at most :data:`COARSEST_VOXELS` voxels (unaries summed over 2x2x2 blocks,
λ times 4 per level: a coarse face stands for four fine ones), then a band around
the boundary re-solved per finer level and grown where it presses on its edge, by
the band solver of the 2-D cut (:mod:`~napari_deepseg.core.cut.bands`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..utils import memory
from . import bands
from .appearance import MAX_SAMPLES_PER_CLASS, ImageMixture, SharedMixtureModel
from .palette import build_palette
from .session import DEFAULT_LAMBDA
from ..utils.progress import CancelToken, ProgressCallback, check, report
from ..utils.validation import check_positive, lazy_view

#: volumes from this many voxels on are cut coarse to fine
MULTILEVEL_MIN_VOXELS = 1_000_000
#: the coarse-to-fine cut halves the volume until its coarsest level has at most this many voxels
COARSEST_VOXELS = 2_000_000
#: whether 3-D bands and levels may be solved by HPF (from ``maxflow.HPF_MIN_NODES`` nodes, where ``thinhpf`` is
#: installed). No: on the 96x256x256 volume of ``benchmarks/volume_3d.py`` HPF took 2.5-6 times BK's time on every
#: 3-D graph (the 786 432-voxel coarsest level 6.7-8.3 s against 1.0-1.3 s, 360 000-voxel bands 1.9-3.0 s against
#: 0.7-1.2 s) and the cut 19-21 s against 8-12 s (docs/performance.md, "Volumes and stacks")
HPF_3D = False
#: bytes per voxel of a single-level 3-D graph (nodes, 3 edges each, t-links, costs); estimate
SINGLE_LEVEL_BYTES_PER_VOXEL = 350
MODES = ("3d", "planes")


def check_spacing(spacing, ndim: int = 3) -> tuple:
    """``ndim`` positive finite voxel sizes (``None``: all 1).

    Examples
    --------
    >>> check_spacing((2, 1, 1))
    (2.0, 1.0, 1.0)
    """
    if spacing is None:
        return (1.0,) * ndim
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(f"spacing must be {ndim} positive numbers (z, y, x), got {spacing!r}") from None
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing must be {ndim} positive numbers (z, y, x), got {spacing!r}")
    return values


def _volume_layout(volume):
    """The volume without alpha, after checking it is ``(planes, rows, cols)`` or ``(planes, rows, cols, 3|4)``."""
    arr = volume if hasattr(volume, "shape") and hasattr(volume, "dtype") else np.asarray(volume)
    dtype = np.dtype(arr.dtype)
    if not (dtype == bool or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"volume must hold numbers, got dtype {dtype}")
    shape = tuple(arr.shape)
    if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3, 4))):
        raise ValueError(f"volume must be (planes, rows, cols) or (planes, rows, cols, 3|4), got shape {shape}")
    if min(shape[:3]) < 2:
        raise ValueError(f"volume must be at least 2x2x2 voxels, got shape {shape[:3]}")
    arr = lazy_view(arr)  # zarr & co. (no reshape): lazy through dask
    return arr[..., :3] if len(shape) == 4 and shape[-1] == 4 else arr


def check_volume_scribbles(scribbles, shape) -> np.ndarray:
    """uint8 3-D scribbles of ``shape`` with labels 0 (none), 1 (object) and 2 (background), both present."""
    s = np.asarray(scribbles)
    if s.shape != tuple(shape):
        raise ValueError(f"scribbles must have the volume's shape {tuple(shape)}, got {s.shape}")
    if not np.issubdtype(s.dtype, np.integer) and s.dtype != bool:
        if not np.all(np.mod(s, 1) == 0):
            raise ValueError("scribbles must hold whole numbers 0, 1 and 2")
    s = s.astype(np.int64, copy=False)
    bad = np.setdiff1d(np.unique(s), [0, 1, 2])
    if bad.size:
        raise ValueError(f"3-D scribbles hold 0 (none), 1 (object) and 2 (background) only, got {bad[:5].tolist()}")
    if not (s == 1).any() or not (s == 2).any():
        raise ValueError("scribbles need both labels: paint 1 on the object and 2 on the background")
    return s.astype(np.uint8)


# --------------------------------------------------------------------------- n-D helpers
def _coarse_shape(shape, factors=(2, 2, 2)) -> tuple:
    return tuple(-(-n // f) for n, f in zip(shape, factors))


def _pad_even(a: np.ndarray, factors=(2, 2, 2), mode="edge") -> np.ndarray:
    pad = [(0, -n % f) for n, f in zip(a.shape[:3], factors)] + [(0, 0)] * (a.ndim - 3)
    return np.pad(a, pad, mode=mode) if any(p[1] for p in pad) else a


def block_factors(shape, planes: bool) -> tuple:
    """Block size of the next coarser level: 2 along every axis of 8 voxels or more, never along z for ``planes``.

    Examples
    --------
    >>> block_factors((64, 256, 256), planes=False), block_factors((64, 256, 256), planes=True)
    ((2, 2, 2), (1, 2, 2))
    >>> block_factors((4, 256, 256), planes=False)
    (1, 2, 2)
    """
    return tuple(1 if (axis == 0 and planes) or n < 8 else 2 for axis, n in enumerate(shape))


def block_sum3(a: np.ndarray, factors=(2, 2, 2)) -> np.ndarray:
    """Sum over blocks of ``factors`` voxels (edge-padded), per channel for a 4-D array.

    Examples
    --------
    >>> float(block_sum3(np.ones((2, 2, 2), np.float32))[0, 0, 0])
    8.0
    >>> block_sum3(np.ones((3, 4, 4), np.float32), (1, 2, 2)).shape
    (3, 2, 2)
    """
    p = _pad_even(np.asarray(a, np.float32), factors)
    fz, fy, fx = factors
    out = np.zeros(_coarse_shape(p.shape[:3], factors) + p.shape[3:], np.float32)
    for dz in range(fz):
        for dy in range(fy):
            for dx in range(fx):
                out += p[dz::fz, dy::fy, dx::fx]
    return out


def coarse_seeds3(fg: np.ndarray, bg: np.ndarray, factors=(2, 2, 2)):
    """Block seeds of two labels: a block is a seed of the one label its seeds have."""
    shape = _coarse_shape(fg.shape, factors)
    out = []
    for hard in (fg, bg):
        z, y, x = np.nonzero(hard)
        block = np.zeros(shape, bool)
        block[z // factors[0], y // factors[1], x // factors[2]] = True
        out.append(block)
    both = out[0] & out[1]
    return out[0] & ~both, out[1] & ~both


def upsample3(labels: np.ndarray, shape, factors=(2, 2, 2)) -> np.ndarray:
    """Nearest-neighbour upsampling by ``factors``, cropped to ``shape``."""
    up = labels.repeat(factors[0], 0).repeat(factors[1], 1).repeat(factors[2], 2)
    return up[: shape[0], : shape[1], : shape[2]]


@dataclass
class LookUp:
    """Per-voxel values kept as a table and an index, ``table[ids]``, never as a full array.

    A uint8 volume's voxels take at most 256 values: its colour and unaries are
    stored as the palette index (1 byte per voxel) and a table per palette entry
    instead of float32 arrays of 4 bytes (x channels) per voxel.

    Examples
    --------
    >>> lu = LookUp(np.array([0.5, 2.0], np.float32), np.array([[[0, 1], [1, 1]]], np.uint8))
    >>> lu.at(np.array([0, 3])).tolist(), lu.shape
    ([0.5, 2.0], (1, 2, 2))
    """

    table: np.ndarray
    ids: np.ndarray

    @property
    def shape(self) -> tuple:
        return tuple(self.ids.shape) + tuple(self.table.shape[1:])

    def at(self, flat: np.ndarray) -> np.ndarray:
        """Values of the voxels with flat indices ``flat``."""
        return self.table[self.ids.reshape(-1)[flat]]

    def planes(self, z0: int, z1: int) -> np.ndarray:
        """The values of planes ``z0:z1`` as an array."""
        return self.table[self.ids[z0:z1]]


def _values_at(a, flat: np.ndarray) -> np.ndarray:
    """``a`` (an array of ``(*shape[, channels])`` or a :class:`LookUp`) at flat voxel indices."""
    if isinstance(a, LookUp):
        return a.at(flat)
    return a.reshape((-1,) + a.shape[3:])[flat]


def _planes(a, z0: int, z1: int) -> np.ndarray:
    return a.planes(z0, z1) if isinstance(a, LookUp) else a[z0:z1]


def block_sum_chunked(a, factors, planes_per_chunk: int = 16) -> np.ndarray:
    """:func:`block_sum3` of an array or a :class:`LookUp`, a few planes at a time (a LookUp is never expanded whole)."""
    if not isinstance(a, LookUp):
        return block_sum3(a, factors)
    fz = factors[0]
    step = fz * max(1, planes_per_chunk // fz)
    n = a.ids.shape[0]
    return np.concatenate([block_sum3(a.planes(z0, min(z0 + step, n)), factors) for z0 in range(0, n, step)])


@dataclass
class _Level:
    """One level of the volume pyramid: its shape and perceptual colour (``(*shape, channels)`` or a LookUp)."""

    shape: tuple
    colour: object
    sigma: Optional[float] = None
    #: the level's own contrast scale (GrabCut's), computed once
    auto: Optional[float] = None
    #: block size from the next finer level (``None`` at full resolution)
    factors: Optional[tuple] = None

    def weights(self, axis: int, flat_p: np.ndarray, lam_axis: float) -> np.ndarray:
        """Weights of the edges from voxels ``flat_p`` to their +1 neighbour along ``axis``."""
        step = int(np.prod(self.shape[axis + 1:]))
        d = _values_at(self.colour, flat_p) - _values_at(self.colour, flat_p + step)
        d2 = np.einsum("ij,ij->i", d, d)
        return np.exp(d2 * np.float32(-1.0 / (self.sigma * self.sigma))) * np.float32(lam_axis)

    def use_sigma(self, sigma: Optional[float]) -> float:
        """Set σ to ``sigma``, or to the level's automatic value when ``sigma`` is None."""
        if sigma is not None:
            self.sigma = float(sigma)
        else:
            if self.auto is None:
                self.sigma = None
                self.auto = self.auto_sigma()
            self.sigma = self.auto
        return self.sigma

    def auto_sigma(self) -> float:
        """GrabCut's ``sqrt(2 mean d^2)`` over every face-neighbour pair, plane by plane."""
        if self.sigma is None:
            total, count = 0.0, 0
            nxt = _planes(self.colour, 0, 1)[0]
            for z in range(self.shape[0]):
                cur = nxt
                pairs = [(cur[:-1], cur[1:]), (cur[:, :-1], cur[:, 1:])]
                if z + 1 < self.shape[0]:
                    nxt = _planes(self.colour, z + 1, z + 2)[0]
                    pairs.append((cur, nxt))
                for a, b in pairs:
                    d = (a - b).astype(np.float32)
                    total += float(np.square(d, out=d).sum(dtype=np.float64))
                    count += d.size // d.shape[-1]
            mean = 2.0 * total / max(1, count)
            self.sigma = float(np.sqrt(mean)) if mean > 0 else 1.0
        return self.sigma


@dataclass
class VolumeFeatures:
    """What :meth:`VolumeSession.set_image` computes once per volume."""

    key: str
    shape: tuple
    ids: np.ndarray
    lab: np.ndarray
    spacing: tuple
    mixture: Optional[ImageMixture] = None
    #: the pyramid of the ``3d`` mode (``levels[0]``: full resolution, built on the first cut)
    levels: list = field(default_factory=list)
    #: the pyramid of the ``planes`` mode (halved in-plane only; shares ``levels[0]``)
    plane_levels: list = field(default_factory=list)


def _lam_axes(spacing, lam: float, mode: str) -> tuple:
    """λ per axis: ``lam`` divided by the spacing relative to the finest; no edges between planes in ``planes`` mode."""
    low = min(spacing)
    out = [lam * low / s for s in spacing]
    if mode == "planes":
        out[0] = 0.0
    return tuple(out)


class VolumeSession:
    """Segment one volume (or stack) many times with different 3-D scribbles.

    Examples
    --------
    >>> vol = np.zeros((6, 20, 20), np.uint8); vol[:, 5:15, 5:15] = 200
    >>> s = np.zeros(vol.shape, np.uint8); s[3, 9:11, 9:11] = 1; s[3, 0, :] = 2
    >>> session = VolumeSession(); _ = session.set_image(vol, spacing=(2, 1, 1))
    >>> mask = session.segment(s)
    >>> int(mask[0, 10, 10]), int(mask[5, 1, 1])
    (1, 0)
    """

    def __init__(self):
        self._current: Optional[VolumeFeatures] = None

    def set_image(self, volume, spacing=None, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelToken] = None) -> VolumeFeatures:
        """Palette, perceptual colour and spacing of ``volume`` (``(planes, rows, cols[, 3])``, any dtype)."""
        from .image import perceptual_colour

        arr = _volume_layout(volume)
        spacing = check_spacing(spacing)
        planes, rows, cols = arr.shape[:3]
        memory.check_fits(planes * rows * cols * 12, "reading the volume", (planes * rows, cols),
                          "downsample it or open a crop (a sub-volume) of it")
        check(cancel)
        report(progress, 0, 1, "colour palette")
        flat = arr.reshape((planes * rows, cols) + tuple(arr.shape[3:]))
        palette = build_palette(flat)
        n = len(palette.colours)
        ids = palette.ids.reshape(planes, rows, cols)
        ids = ids.astype(np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.int32)
        lab = perceptual_colour(palette.colours[:, None, :])[:, 0, :]
        sample = np.ascontiguousarray(ids.ravel()[:: max(1, ids.size // (1 << 20))])
        h = hashlib.blake2b(sample.tobytes() + str((ids.shape, n, spacing)).encode(), digest_size=16)
        self._current = VolumeFeatures(h.hexdigest(), (planes, rows, cols), ids, lab, spacing)
        report(progress, 1, 1, "colour palette")
        return self._current

    @property
    def is_image_set(self) -> bool:
        return self._current is not None

    def segment(self, scribbles, mode: str = "3d", lam: Optional[float] = None, sigma: Optional[float] = None,
                iterations: int = 1, multilevel: Optional[bool] = None, progress=None, cancel=None) -> np.ndarray:
        """Cut the volume for 3-D ``scribbles`` (1 object, 2 background, on any planes).

        Parameters
        ----------
        scribbles : array-like
            ``(planes, rows, cols)`` labels.
        mode : {"3d", "planes"}
            A true 3-D cut, or every plane on its own (time series).
        lam, sigma : float, optional
            Smoothness weight (default: the 2-D default preset's,
            ``session.DEFAULT_LAMBDA["default"]``) and contrast scale (auto).
        iterations : int
            GrabCut-style refits of the appearance model.
        multilevel : bool, optional
            ``None`` solves coarse to fine from :data:`MULTILEVEL_MIN_VOXELS` on; ``False``
            solves the whole volume at once (the reference; mind the memory).

        Returns
        -------
        numpy.ndarray
            uint8 ``(planes, rows, cols)``: 1 object, 0 background.
        """
        if self._current is None:
            raise RuntimeError("no volume set: call set_image(volume) before segment()")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        lam = DEFAULT_LAMBDA["default"] if lam is None else check_positive(lam, "lambda")
        sigma = check_positive(sigma, "sigma", minimum=1e-6)
        if int(iterations) < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations!r}")
        v = self._current
        seeds = check_volume_scribbles(scribbles, v.shape)
        n = int(np.prod(v.shape))
        multi = n >= MULTILEVEL_MIN_VOXELS if multilevel is None else bool(multilevel)
        if not multi:
            memory.check_fits(n * SINGLE_LEVEL_BYTES_PER_VOXEL, "the single-level 3-D cut", (v.shape[0] * v.shape[1],
                              v.shape[2]), "use the coarse-to-fine cut (multilevel on), or downsample or crop the volume")
        fg_seed, bg_seed = seeds == 1, seeds == 2
        model = _fit(v, np.flatnonzero(seeds), seeds.ravel()[np.flatnonzero(seeds)])
        lam_axes = _lam_axes(v.spacing, lam, mode)
        fg = None
        for it in range(int(iterations) + 1):
            check(cancel)
            report(progress, it, int(iterations) + 1, "3-D graph cut")
            if fg is not None:
                model = _refit(v, model, fg)
            costs = model.costs()
            delta = LookUp((costs[:, 0] - costs[:, 1]).astype(np.float32), v.ids)  # cost(object) - cost(background)
            if multi:
                fg = _solve_multilevel(v, delta, fg_seed, bg_seed, lam_axes, sigma, cancel)
            else:
                fg = _solve_whole(_level0(v, sigma), delta, fg_seed, bg_seed, lam_axes)
        report(progress, 1, 1, "3-D graph cut")
        if mode == "planes":
            fg = remove_specks(fg, seeds)
        return fg.astype(np.uint8)


#: in ``planes`` mode, object islands of a plane without strokes smaller than this share of the plane are dropped
SPECK_SHARE = 0.001
#: ... and always those of fewer than this many pixels
SPECK_MIN_PIXELS = 16


def remove_specks(fg: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Drop small object islands from the planes without strokes (``planes`` mode).

    A plane nobody painted is labelled by the model the other planes' strokes
    taught, and a few pixels of a similar colour then come out as 4-10-pixel
    specks. Islands smaller than :data:`SPECK_SHARE` of the plane (at least
    :data:`SPECK_MIN_PIXELS` pixels) are dropped there; planes with strokes are
    left as the cut made them.

    Examples
    --------
    >>> fg = np.zeros((2, 40, 40), bool); fg[:, 2:4, 2:4] = True; fg[:, 10:30, 10:30] = True
    >>> seeds = np.zeros(fg.shape, np.uint8); seeds[0, 20, 20] = 1
    >>> out = remove_specks(fg, seeds)
    >>> bool(out[0, 2, 2]), bool(out[1, 2, 2]), bool(out[1, 20, 20])
    (True, False, True)
    """
    from scipy import ndimage as ndi

    out = fg.copy()
    plane_px = fg.shape[1] * fg.shape[2]
    smallest = max(SPECK_MIN_PIXELS, int(SPECK_SHARE * plane_px))
    for z in range(fg.shape[0]):
        if seeds[z].any() or not fg[z].any():
            continue
        islands, n = ndi.label(fg[z])
        sizes = np.bincount(islands.ravel(), minlength=n + 1)
        small = sizes < smallest
        small[0] = False
        out[z][small[islands]] = False
    return out


def _level0(v: VolumeFeatures, sigma) -> _Level:
    if not v.levels:
        v.levels.append(_Level(v.shape, LookUp(np.asarray(v.lab, np.float32), v.ids)))
    level = v.levels[0]
    level.use_sigma(sigma)
    return level


def _fit(v: VolumeFeatures, flat: np.ndarray, labels: np.ndarray) -> SharedMixtureModel:
    if v.mixture is None:
        n = v.ids.size
        pick = np.random.default_rng(0).choice(n, min(n, 20_000), replace=False)
        v.mixture = ImageMixture(v.lab, n_components=24, sample=v.lab[v.ids.ravel()[pick]])
    return SharedMixtureModel(v.mixture).fit(v.ids.ravel()[flat].astype(np.int64), labels)


def _refit(v: VolumeFeatures, model, fg: np.ndarray):
    """Refit on up to :data:`MAX_SAMPLES_PER_CLASS` random voxels of each class of the current cut."""
    rng = np.random.default_rng(0)
    picks, labels = [], []
    flat_fg = fg.ravel()
    for value, label in ((True, 1), (False, 2)):
        draw = rng.choice(flat_fg.size, min(flat_fg.size, 200_000), replace=False)
        hit = draw[flat_fg[draw] == value][:MAX_SAMPLES_PER_CLASS]
        picks.append(hit)
        labels.append(np.full(hit.size, label))
    flat = np.concatenate(picks)
    if not (np.concatenate(labels) == 1).any() or not (np.concatenate(labels) == 2).any():
        return model
    return model.fit(v.ids.ravel()[flat].astype(np.int64), np.concatenate(labels))


def _coarser(pyramid: list, planes: bool) -> bool:
    """Append the next coarser level to ``pyramid`` unless its last level is small enough (or cannot shrink)."""
    finer = pyramid[-1]
    factors = block_factors(finer.shape, planes)
    if int(np.prod(finer.shape)) <= COARSEST_VOXELS or factors == (1, 1, 1):
        return False
    colour = block_sum_chunked(finer.colour, factors) / np.float32(np.prod(factors))
    pyramid.append(_Level(_coarse_shape(finer.shape, factors), colour, factors=factors))
    return True


def _lam_scale(factors) -> tuple:
    """How many fine faces one coarse face along each axis stands for (the product of the other axes' factors)."""
    return tuple(float(np.prod([f for b, f in enumerate(factors) if b != a])) for a in range(3))


def _solve_multilevel(v, delta, fg_seed, bg_seed, lam_axes, sigma, cancel) -> np.ndarray:
    """Coarsest level whole, then a grown band per finer level.

    Every level halves the axes of 8 voxels or more (never z in ``planes`` mode, where
    ``lam_axes[0]`` is 0: the planes stay apart at every level); unaries are summed over
    a block and each axis' λ is multiplied by the number of fine faces a coarse face
    stands for (4 for 2x2x2 blocks, 2 in-plane for 1x2x2 blocks).
    """
    planes = lam_axes[0] == 0
    levels = [_level0(v, sigma)]
    pyramid = v.plane_levels if planes else v.levels  # cached per volume and mode
    if not pyramid:
        pyramid.append(levels[0])
    deltas, seeds = [delta], [(fg_seed, bg_seed)]
    while len(pyramid) > len(levels) or _coarser(pyramid, planes):
        levels.append(pyramid[len(levels)])
        f = levels[-1].factors
        deltas.append(block_sum_chunked(deltas[-1], f))
        seeds.append(coarse_seeds3(*seeds[-1], f))
    k = len(levels) - 1
    while k > 0 and not (seeds[k][0].any() and seeds[k][1].any()):
        k -= 1  # strokes too thin to survive at this level: start finer
    for level in levels[1:]:
        level.use_sigma(sigma)
    lams = [tuple(lam_axes)]
    for level in levels[1:]:
        lams.append(tuple(w * m for w, m in zip(lams[-1], _lam_scale(level.factors))))

    def problems():  # each finer level's band, built when it is reached
        for i in range(k - 1, -1, -1):
            check(cancel)
            yield bands.BandProblem(lambda fg, i=i: upsample3(fg, levels[i].shape, levels[i + 1].factors),
                                    _costs(deltas[i]), _FaceEdges(levels[i], lams[i]), *seeds[i], bounded=False,
                                    hpf=HPF_3D)

    return bands.refine_to_finest(_solve_whole(levels[k], deltas[k], *seeds[k], lams[k]), problems())


class _FaceEdges:
    """The face-neighbour edges of a volume level with λ per axis, as the band solver reads edges
    (:func:`~napari_deepseg.core.cut.bands.solve_band`): one offset per axis whose λ is not 0."""

    def __init__(self, level: _Level, lam_axes):
        self.level, self.shape = level, level.shape
        self.axes = [(axis, lam) for axis, lam in enumerate(lam_axes) if lam > 0]
        self.offsets = tuple(tuple(int(b == axis) for b in range(len(self.shape))) for axis, _ in self.axes)

    def weights(self, k: int, *coords) -> np.ndarray:
        """Weights of the edges from the voxels at ``coords`` to their +1 neighbour along the ``k``-th axis."""
        axis, lam = self.axes[k]
        return self.level.weights(axis, np.ravel_multi_index(coords, self.shape), lam)


def _costs(delta):
    """``flat -> (cost of object, cost of background)`` of the voxels asked, from ``delta`` (object minus
    background: an array or a :class:`LookUp`)."""

    def at(flat):
        d = _values_at(delta, flat)
        return np.maximum(d, 0), np.maximum(-d, 0)

    return at


def _solve_whole(level: _Level, delta, fg_seed, bg_seed, lam_axes) -> np.ndarray:
    """The cut of every voxel of ``level`` (the shared band solver with the whole level as its band)."""
    return bands.solve_band(_costs(delta), None, _FaceEdges(level, lam_axes), np.zeros(level.shape, bool),
                            np.ones(level.shape, bool), fg_seed, bg_seed, hpf=HPF_3D)


__all__ = ["VolumeSession", "VolumeFeatures", "check_spacing", "check_volume_scribbles"]
