"""The default preset's two-label cut solved coarse-to-fine.

:func:`cut_multilevel` halves the image until the coarsest level is small
(:func:`levels_of`), solves the energy of :mod:`~napari_deepseg.core.cut.energy`
there whole, and re-solves only a band around the boundary at every finer level
(:func:`~napari_deepseg.core.cut.bands.refine_band`). :func:`applies` says
when a cut takes this path; :func:`prepare` builds what its first cut would build.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from ..utils.progress import check, report
from . import bands, blocks, graphcut, maxflow, star_steps
from .appearance import COST_CAP, SharedMixtureModel
from .bands import BAND_RADIUS
from .energy import NO_EXTRA, Extra, costs_for, cut_default, fit_appearance, recut_found_centres, refit
from .image import ImageFeatures
from .palette import strips

#: the default preset solves coarse-to-fine from this many pixels on (see bands.py)
MULTILEVEL_MIN_PIXELS = 100_000
#: the coarse-to-fine cut halves the image until its coarsest level has at most this many pixels
COARSEST_PIXELS = 1_500_000


def applies(shape, multilevel: Optional[bool]) -> bool:
    """Whether a two-label default cut of an image of ``shape`` is solved coarse-to-fine.

    ``None`` decides by size (:data:`MULTILEVEL_MIN_PIXELS`); images under 8 pixels a side never are.
    """
    rows, cols = shape
    multi = rows * cols >= MULTILEVEL_MIN_PIXELS if multilevel is None else bool(multilevel)
    return multi and min(rows, cols) >= 8


def _growth_report(progress, step: int, total: int, message: str):
    """The ``on_round`` of :func:`~napari_deepseg.core.cut.bands.refine_band`: the stage with the band's growth.

    Examples
    --------
    >>> seen = []
    >>> _growth_report(lambda *a: seen.append(a), 3, 8, "graph cut: level 3 of 3 (full resolution, band)")(2, 412000)
    >>> seen
    [(3, 8, 'graph cut: level 3 of 3 (full resolution, band grown to 412000 pixels, solve 2)')]
    """
    if progress is None:
        return None
    return lambda solve, nodes: report(progress, step, total,
                                       f"{message[:-1]} grown to {nodes} pixels, solve {solve})")


def levels_of(entry: ImageFeatures) -> list:
    """``[entry, half, quarter, ...]`` down to :data:`COARSEST_PIXELS` (at least one coarse level)."""
    levels = [entry]
    while True:
        top = levels[-1]
        if len(levels) > 1 and (top.shape[0] * top.shape[1] <= COARSEST_PIXELS or min(top.shape) < 16):
            return levels
        levels.append(top.coarser())


def level_sigma(level: ImageFeatures, sigma) -> float:
    """σ of a level's colour n-links: ``sigma``, or the level's own estimate
    (:meth:`~napari_deepseg.core.cut.image.ImageFeatures.estimated_sigma`: GrabCut's ``sqrt(2 mean d²)``)."""
    return float(sigma) if sigma is not None else level.estimated_sigma()


def band_edges(level: ImageFeatures, lam: float, sigma):
    """Edge weights of a level's band: computed on demand from colour, or cached arrays for deep features."""
    if level.stride == 1:
        return bands.ColourEdges(level.colour_at, level.shape, lam, level_sigma(level, sigma))
    return bands.ArrayEdges(level.nlinks_for(lam, sigma)[1])


#: a coarsest level of at most this many pixels (every one :func:`levels_of` makes; more only where coarse
#: levels lose the strokes) also finds star centres apart from the strokes
#: (:func:`~napari_deepseg.core.cut.energy.recut_found_centres`: two more max-flows there)
FOUND_CENTRES_MAX_PIXELS = 2_000_000

def _split(delta: np.ndarray):
    """``(cost_fg, cost_bg)`` from the difference ``cost_fg - cost_bg`` (the same cut, up to a constant)."""
    return np.maximum(delta, 0), np.maximum(-delta, 0)


class _FineCosts:
    """Object-minus-background costs of the full-resolution pixels, per palette entry when possible.

    A binary cut only sees the difference of the two classes' costs, so one
    channel is kept: a look-up table over the palette (no per-pixel array), or a
    per-pixel array for deep features. An extra unary (one
    channel too, :class:`~napari_deepseg.core.cut.energy.Extra`) is added where
    the costs are read, then capped at ±COST_CAP (the difference of
    ``Extra.costs``), so the palette's look-up stays.
    """

    def __init__(self, entry: ImageFeatures, model, extra: "Extra"):
        self.ids = None
        self.unary = extra.unary
        if entry.mixture_on_palette and isinstance(model, SharedMixtureModel):
            costs = model.costs()
            self.lut = np.ascontiguousarray(costs[:, 0] - costs[:, 1])
            self.ids = entry.palette.ids
        else:
            costs = extra.costs(costs_for(entry, model))
            self.delta = np.ascontiguousarray(costs[..., 0] - costs[..., 1])
            self.unary = None  # in the costs

    def _plus_unary(self, values: np.ndarray, where) -> np.ndarray:
        """``values`` (differences at ``where``: flat indices or a row slice) plus the unary there, capped."""
        if self.unary is None:
            return values
        unary = self.unary.ravel()[where] if isinstance(where, np.ndarray) else self.unary[where]
        return np.clip(values + unary, -COST_CAP, COST_CAP)

    def at(self, flat: np.ndarray):
        """``(cost_fg, cost_bg)`` of the pixels at flat indices ``flat``."""
        if self.ids is None:
            return _split(self.delta.ravel()[flat])
        return _split(self._plus_unary(self.lut[self.ids.ravel()[flat]], flat))

    def full(self) -> np.ndarray:
        """The difference for every pixel (float32 ``(rows, cols)``)."""
        if self.ids is None:
            return self.delta
        return self._plus_unary(self.lut[self.ids], slice(None))

    def coarse(self) -> np.ndarray:
        """Block sums of the difference on the half-resolution grid, strip by strip."""
        if self.ids is None:
            return blocks.block_sum(self.delta)
        rows, cols = self.ids.shape
        out = np.empty(blocks.coarse_shape((rows, cols)), np.float32)
        for part in strips(rows, cols, multiple=blocks.FACTOR):
            lo = part.start // blocks.FACTOR
            block = blocks.block_sum(self._plus_unary(self.lut[self.ids[part]], part))
            out[lo : lo + block.shape[0]] = block
        return out


#: deep-feature images of at least this many pixels refit their linear model on a coarse level's labels
#: (upsampled) instead of a full-resolution labelling, so the rounds before the last solve no bands (issue 22).
#: Colour models keep the banded refit: a coarse refit taught the colour mixture that the shadows beside
#: roofs are roof (synthetic aerial scene, IoU against its roofs at 25 MP 0.727 -> 0.640; leaving the coarse
#: boundary out of the sample restored 0.727 at 4 MP but not at 25 MP, where the roofs are a few coarse
#: pixels), and applied to every image it cost GrabCut scribble set 1 0.0005. ``None``: never. That round is
#: solved one level coarser than the coarsest (:func:`_fit_round`; issue 22: the coarsest level's max-flow was
#: half of the cut of a 2048² ResNet-50 photo).
REFIT_FROM_COARSE_PIXELS: Optional[int] = 4_000_000


def _fit_round(top: ImageFeatures, hards, delta: np.ndarray, lam: float, sigma, star_weight, depth: int):
    """A labelling for the refit, solved on the level below ``top`` (``None`` where it has no seeds of each label).

    ``delta`` is ``top``'s cost difference, ``lam`` the coarser level's λ, ``depth`` its pyramid level.
    """
    if min(top.shape) < 32:
        return None
    h_fg, h_bg = blocks.coarse_seeds(*hards)
    if not (h_fg.any() and h_bg.any()):
        return None
    _, nlinks = top.coarser().nlinks_for(lam, sigma)
    cut = maxflow.IncrementalCut(nlinks, graphcut.star_edges(h_fg), 4**depth * COST_CAP + 1.0,
                                  star_weight=star_weight)
    cost_fg, cost_bg = _split(blocks.block_sum(delta))
    return cut.solve(*graphcut.tlinks(cost_fg, cost_bg, h_fg, h_bg, cut.infinity))


#: deep-feature bands take at most this fraction of a level's pixels whose costs disagree with the level above
DISAGREE_BUDGET = 0.02


def _disagreement(init: np.ndarray, delta: np.ndarray, budget: float) -> np.ndarray:
    """Pixels whose own cost difference argues against their label in ``init``, the strongest ``budget`` of them.

    Examples
    --------
    >>> init = np.array([[True, True, False, False]])
    >>> _disagreement(init, np.array([[3.0, -1.0, -5.0, 2.0]]), budget=1).tolist()
    [[False, False, True, False]]
    """
    against = np.where(init, delta, -delta)  # > 0: the pixel prefers the other label
    n = int(np.count_nonzero(against > 0))
    if n <= budget:
        return against > 0
    keep = max(0, int(budget))
    if keep == 0:
        return np.zeros(init.shape, bool)
    threshold = np.partition(against.ravel(), against.size - keep)[against.size - keep]
    return against >= max(threshold, np.finfo(np.float32).tiny)


class _Progress:
    """What a coarse-to-fine cut says: one step per level solve of every round (``done`` of ``total``).

    Examples
    --------
    >>> seen = []
    >>> say = _Progress(lambda *a: seen.append(a), iterations=0, k=1)
    >>> say.round(0); say.done(); _ = say.band(0)
    >>> seen[-1]
    (1, 2, 'graph cut: level 2 of 2 (full resolution, band)')
    """

    def __init__(self, progress, iterations: int, k: int):
        self.progress, self.iterations, self.k = progress, iterations, k
        self.total, self.step, self.stage = (iterations + 1) * (k + 1), 0, "graph cut"

    def _say(self, message: str) -> None:
        report(self.progress, self.step, self.total, message)

    def round(self, it: int) -> None:
        """Round ``it`` starts with the coarsest level."""
        self.stage = f"graph cut (round {it + 1} of {self.iterations + 1})" if self.iterations else "graph cut"
        self._say(f"{self.stage}: level 1 of {self.k + 1} (1/{2**self.k} resolution)")

    def found_centres(self) -> None:
        """Two more max-flows on the coarsest level (about 2 s at 1.5 MP): said, so the stage does not seem stuck."""
        self._say(f"{self.stage}: level 1 of {self.k + 1}, star centres from the cut without the star")

    def band(self, i: int):
        """Level ``i``'s band starts; returns the ``on_round`` that reports its growth."""
        where = "full resolution" if i == 0 else f"1/{2**i} resolution"
        message = f"{self.stage}: level {self.k - i + 1} of {self.k + 1} ({where}, band)"
        self._say(message)
        return _growth_report(self.progress, self.step, self.total, message)

    def done(self, solves: int = 1) -> None:
        self.step += solves

    def finish(self) -> None:
        report(self.progress, self.total, self.total, "graph cut")


@dataclass
class _CutState:
    """What a coarse-to-fine cut carries from round to round.

    Attributes
    ----------
    fg, depth
        The last labelling and its pyramid level (``k + 1``: the fit round's, one below the coarsest).
    fgs : list
        The labelling of every level, full resolution first (the last round's once it is done).
    detached : list
        Star centres found apart from the strokes, per level (``None`` where none).
    centres : list
        Star centres per level: the object strokes, and the centres found.
    """

    fg: Optional[np.ndarray]
    depth: int
    fgs: list
    detached: list
    centres: list

    def keep(self, fg: np.ndarray, depth: int) -> None:
        self.fg, self.depth = fg, depth
        if depth < len(self.fgs):
            self.fgs[depth] = fg

    def add_found(self, found: Optional[np.ndarray], levels: list) -> None:
        """The centres the coarsest level found (:func:`recut_found_centres`), upsampled to every finer level."""
        k = len(self.fgs) - 1
        self.detached[k] = found
        if found is None:
            return
        self.centres[k] = self.centres[k] | found
        for i in range(k - 1, -1, -1):
            found = blocks.upsample_labels(found, levels[i].shape)
            self.centres[i] = self.centres[i] | found
            self.detached[i] = found


def _checked(step, cancel):
    """``step`` (``None`` too), called only while ``cancel`` is not set: a band's cost look-up, its extra
    pixels and its growth rounds stop a cancelled cut between two max-flows, not at the next level (a deep
    feature band of a 25 MP image is solved for 10 s and more; the widget's next stroke waits for its refit).

    Examples
    --------
    >>> from napari_deepseg.core.utils.progress import CancelToken
    >>> token = CancelToken()
    >>> step = _checked(lambda x: x + 1, token)
    >>> step(1)
    2
    >>> token.cancel(); step(1)
    Traceback (most recent call last):
    ...
    napari_deepseg.core.utils.progress.Cancelled: computation cancelled
    """
    if cancel is None:
        return step

    def checked(*args):
        check(cancel)
        return None if step is None else step(*args)

    return checked


def _level_deltas(fine: "_FineCosts", k: int) -> list:
    """Block sums of the cost difference per level: ``[None, half, quarter, ...]`` down to level ``k``."""
    deltas = [None, fine.coarse()]
    for _ in range(2, k + 1):
        deltas.append(blocks.block_sum(deltas[-1]))
    return deltas


def cut_multilevel(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                   extra: Extra = NO_EXTRA, progress=None, preview=None, found_centres: bool = True,
                   coarse_fit: bool = False, first_costs=None) -> np.ndarray:
    """The default energy solved coarse-to-fine.

    The image is halved until the coarsest level is small (:func:`levels_of`);
    that level is solved whole (refits included) with a cached incremental
    graph; every finer level re-solves only a band around the boundary of the
    level above, grown where the boundary presses against the band's edge
    (:func:`~napari_deepseg.core.cut.bands.refine_levels`). Unaries of a coarse pixel are the sums of
    its fine pixels', λ doubles per level (a coarse edge stands for two fine ones).
    ``progress`` hears of every level of every round (``done`` of ``total`` level solves);
    ``preview``, if given, receives the last round's coarsest labelling upsampled to
    full resolution (a bool object mask) before the bands refine it. ``found_centres=False``
    skips the found star centres' recut (:func:`~napari_deepseg.core.cut.energy.recut_found_centres`,
    two more max-flows on the coarsest level): the quick answer a background cut with them replaces.
    ``coarse_fit=True`` samples the refit from a labelling solved one level below the coarsest, without
    bands (:func:`_fit_round`), as deep-feature images of :data:`REFIT_FROM_COARSE_PIXELS` do: one max-flow
    of the coarsest level and one band pass fewer, for that quick answer (its model is the full cut's only
    approximately; the colour mixture keeps the banded refit in the cut that replaces it).
    ``first_costs``: the first round's ``(fine costs, level sums)`` already computed for the same
    strokes and parameters (:func:`window_first` returns them); used where their depth is this cut's.
    """
    levels = levels_of(entry)
    hards = [(seeds == classes[0], seeds == classes[1])]  # (object, background) seeds per level
    for _ in levels[1:]:
        hards.append(blocks.coarse_seeds(*hards[-1]))
    usable = [i for i, (f, b) in enumerate(hards) if i > 0 and f.any() and b.any()]
    if not usable:
        # every stroke of a label shares its 2x2 blocks with the other label: no coarse seeds
        return cut_default(entry, seeds, classes, lam, sigma, iterations, cancel, extra, progress)
    k = max(usable)
    say = _Progress(progress, iterations, k)
    top = levels[k]
    ckey, c_nlinks = top.nlinks_for(lam * 2**k, sigma)
    soft = extra.star_weight

    def star_weight(i):  # a coarse star edge stands for 2^i fine ones, as the n-links do
        return None if soft is None else soft * 2**i

    c_cut = top.incremental_cut(ckey, c_nlinks, hards[k][0], 4**k * COST_CAP + 1.0, star_weight=star_weight(k))
    model = fit_appearance(entry, extra.first_fit(seeds))
    state = _CutState(None, 0, [None] * (k + 1), [None] * (k + 1), [])
    n_pixels = entry.shape[0] * entry.shape[1]
    coarse_refit = coarse_fit or (REFIT_FROM_COARSE_PIXELS is not None and n_pixels >= REFIT_FROM_COARSE_PIXELS
                                  and entry.stride > 1)

    def band_problems(fine, deltas, rounds):  # each finer level's band, built when it is reached
        for i in range(k - 1, -1, -1):
            check(cancel)
            on_round = _checked(say.band(i), cancel)  # growth rounds stop a cancelled cut too
            level, (h_fg, h_bg) = levels[i], hards[i]
            delta = fine.full if i == 0 else (lambda d=deltas[i]: d)
            yield bands.BandProblem(
                lambda fg, shape=level.shape: blocks.upsample_labels(fg, shape),
                _checked(fine.at if i == 0 else (lambda flat, d=deltas[i].ravel(): _split(d[flat])), cancel),
                band_edges(level, lam * 2**i, sigma), h_fg, h_bg, level.star_for(state.centres[i]),
                star_weight(i), rounds=rounds, on_round=on_round,
                # deep costs vary cell by cell: also re-solve the pixels they argue for most
                more_band=_checked(lambda init, d=delta: _disagreement(init, d(), DISAGREE_BUDGET * init.size),
                                   cancel) if entry.stride > 1 else None)

    for it in range(iterations + 1):
        last = it == iterations
        check(cancel)
        say.round(it)
        if state.fg is not None:  # a coarse level's labels are upsampled: what the refit samples from
            fg = state.fg if not state.depth else blocks.upsample_labels(state.fg, entry.shape,
                                                                         blocks.FACTOR**state.depth)
            model = refit(entry, model, seeds, classes, fg)
        if it == 0 and first_costs is not None and len(first_costs[1]) == k + 1:
            fine, deltas = first_costs  # the same model's, computed by the window's cut
        else:
            fine = _FineCosts(entry, model, extra)
            check(cancel)
            deltas = _level_deltas(fine, k)
        check(cancel)
        cost_fg, cost_bg = _split(deltas[k])
        if not last and coarse_refit:  # the refit needs a sample, not a boundary: no bands, one level lower
            fg = _fit_round(levels[k], hards[k], deltas[k], lam * 2 ** (k + 1), sigma, star_weight(k + 1), k + 1)
            if fg is not None:
                state.keep(fg, k + 1)
                say.done(k + 1)
                continue
        state.keep(c_cut.solve(*graphcut.tlinks(cost_fg, cost_bg, *hards[k], c_cut.infinity)), k)
        state.centres = [h for h, _ in hards]  # star centres of the finer levels: the object strokes...
        if last and found_centres and soft is None and top.shape[0] * top.shape[1] <= FOUND_CENTRES_MAX_PIXELS:
            check(cancel)
            say.found_centres()  # ... and those the cut without the star confirms
            fg, found = recut_found_centres(state.fg, cost_fg, cost_bg, c_nlinks, *hards[k])
            state.keep(fg, k)
            state.add_found(found, levels)
        say.done()
        if preview is not None and last:
            preview(blocks.upsample_labels(state.fg, entry.shape, blocks.FACTOR**k))
        if not last and coarse_refit:
            say.done(k)
            continue
        # a labelling that only feeds a refit (a few thousand sampled pixels) skips the band's growth
        rounds = bands.MAX_GROWTH_ROUNDS if last else 1
        for i, fg in zip(range(k - 1, -1, -1), bands.refine_levels(state.fg, band_problems(fine, deltas, rounds))):
            state.keep(fg, i)
            say.done()
    if extra.unary is None and extra.fit_labels is None:  # what a local update starts from
        entry.remember(LastCut(cut_key(lam, sigma, iterations, classes, soft), seeds.copy(), fine, deltas,
                               state.fgs, state.detached, hards[k], state.centres[: k + 1]))
    say.finish()
    return (~state.fg).view(np.uint8)  # class index: 0 object, 1 background


def prepare(entry: ImageFeatures, lam: float, sigma, progress=None, cancel=None) -> None:
    """Build the colour mixture, the coarsest level's n-links and the band edges of every finer level."""
    report(progress, 0, 3, "colour mixture")
    if entry.stride == 1:
        entry.mixture()
    check(cancel)
    report(progress, 1, 3, "image pyramid")
    levels = levels_of(entry)
    k = len(levels) - 1
    check(cancel)
    report(progress, 2, 3, "edge weights")
    levels[k].nlinks_for(lam * 2**k, sigma)
    for i in range(k):
        band_edges(levels[i], lam * 2**i, sigma)
    report(progress, 3, 3, "ready")


#: a local update (:func:`update_multilevel`) may change the pixels within this many pixels of the box that holds
#: the changed strokes, on every side; nothing outside that window
UPDATE_BOUND = 512
#: a change whose window covers more than this share of the image is solved whole (:func:`cut_multilevel`)
UPDATE_MAX_SHARE = 0.25


@dataclass
class LastCut:
    """What the last coarse-to-fine cut of an image leaves for a local update (``ImageFeatures.last``).

    Attributes
    ----------
    key : tuple
        λ, σ, refits, classes and star weight of the cut (:func:`cut_key`): an update
        with other parameters is a new cut.
    seeds : numpy.ndarray
        The strokes the result answers.
    fine : _FineCosts
        The full-resolution costs of the last appearance model (kept by updates).
    deltas : list
        Block sums of the cost difference per level (``[None, half, quarter, ...]``).
    fgs : list of numpy.ndarray
        The object mask of every level, full resolution first (updated in place).
    detached : list
        Star centres the cut found apart from the strokes, per level (or ``None``).
    top_hards : tuple
        The coarsest level's object and background seeds.
    centres : list
        Star centres per level: bool arrays after a whole cut, then a
        :class:`~napari_deepseg.core.cut.star_steps.StarSteps` (k-d tree of the centres' edge)
        once an update needed them.
    """

    key: tuple
    seeds: np.ndarray
    fine: _FineCosts
    deltas: list
    fgs: list
    detached: list
    top_hards: tuple
    centres: list


def cut_key(lam, sigma, iterations, classes, star_weight) -> tuple:
    """The parameters a local update must share with the cut it starts from."""
    return (float(lam), None if sigma is None else float(sigma), int(iterations), tuple(int(c) for c in classes),
            None if star_weight is None else float(star_weight))


def update_window(rows: np.ndarray, cols: np.ndarray, shape, bound: int):
    """The window a local update may change: the box of the pixels ``(rows, cols)`` grown by ``bound``.

    Returns
    -------
    tuple of int
        ``(r0, r1, c0, c1)``, end-exclusive, clipped to ``shape``.

    Examples
    --------
    >>> update_window(np.array([5, 7]), np.array([40, 41]), (100, 50), 10)
    (0, 18, 30, 50)
    """
    return (max(0, int(rows.min()) - bound), min(shape[0], int(rows.max()) + 1 + bound),
            max(0, int(cols.min()) - bound), min(shape[1], int(cols.max()) + 1 + bound))


def _level_window(window, i: int, shape):
    """The window at pyramid level ``i`` (``2**i`` times coarser), covering the full-resolution one."""
    f = blocks.FACTOR**i
    r0, r1, c0, c1 = window
    return slice(r0 // f, min(shape[0], -(-r1 // f))), slice(c0 // f, min(shape[1], -(-c1 // f)))


class _Crop:
    """A rectangle of a pyramid level: its own flat indices, and the level's costs, edges and star steps
    read through it (the solvers see a small image; the level's arrays are never copied whole)."""

    def __init__(self, level_shape, rows: slice, cols: slice):
        self.r0, self.c0, self.level_cols = rows.start, cols.start, level_shape[1]
        self.rows, self.cols = rows, cols
        self.shape = (rows.stop - rows.start, cols.stop - cols.start)

    def to_level(self, flat: np.ndarray) -> np.ndarray:
        r, c = np.divmod(flat, self.shape[1])
        return (r + self.r0) * self.level_cols + (c + self.c0)

    def to_crop(self, flat: np.ndarray) -> np.ndarray:
        """Crop indices of level indices; ``-1`` for ``-1`` and for pixels outside the crop."""
        r, c = np.divmod(flat, self.level_cols)
        r, c = r - self.r0, c - self.c0
        inside = (flat >= 0) & (r >= 0) & (r < self.shape[0]) & (c >= 0) & (c < self.shape[1])
        return np.where(inside, r * self.shape[1] + c, -1)

    def costs(self, costs):
        return lambda flat: costs(self.to_level(flat))

    def edges(self, edges):
        crop = self

        class Edges:
            shape, offsets = crop.shape, edges.offsets

            @staticmethod
            def weights(k, rr, cc):
                return edges.weights(k, rr + crop.r0, cc + crop.c0)

        return Edges()

    def star(self, steps):
        crop = self

        class Steps:
            @staticmethod
            def step(flat):
                return crop.to_crop(steps.step(crop.to_level(flat)))

        return Steps()


def _star_centres(last: LastCut, i: int, crop: _Crop, centres: np.ndarray):
    """Star steps of level ``i`` with the centres inside ``crop`` replaced by ``centres`` (k-d tree of the
    centres' edge, kept on ``last`` while the centres stay the same)."""
    steps = last.centres[i]
    if isinstance(steps, np.ndarray):  # first update after a whole cut: the centre pixels of the level
        steps = star_steps.StarSteps(steps)
    steps = steps.with_window(crop.rows, crop.cols, centres)
    last.centres[i] = steps
    return steps


#: a whole cut of an image of at least this many pixels whose strokes lie in a small window first answers
#: the window alone (:func:`window_first`), shown as the cut's preview while the whole image is cut
WINDOW_FIRST_MIN_PIXELS = 4_000_000


def window_first(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                 extra: Extra = NO_EXTRA, progress=None) -> Optional[tuple]:
    """The first answer to strokes that lie in a small window of a large image: that window, cut alone.

    A local update (:func:`update_multilevel`'s levels) from an empty labelling,
    with the appearance model a whole cut starts from (fitted on the strokes):
    every level is solved inside the window of :data:`UPDATE_BOUND` px around the
    strokes, everything outside it is background. In about the time of a local
    update the user sees the object the strokes are on, at full resolution; the
    whole cut (its refits, the rest of the image) follows and replaces it. The
    image's last cut (``entry.last``) is left as it was. Nothing of the image's
    size is built but the answer itself: the empty labelling is read through
    zero-strided views, the star centres are those of the window's crop.

    Returns
    -------
    tuple or None
        ``(index, costs)``: class indices (0 object, 1 background) of the whole
        image, and the costs of the model it used (what :func:`cut_multilevel`'s
        first round computes again: pass them as its ``first_costs``); or ``None``
        where it does not apply: a small image, other evidence (``unary``,
        ``fit_labels``, a soft star), strokes of one label only, or a window over
        :data:`UPDATE_MAX_SHARE` of the image (or where the strokes give no seeds
        of both labels on the coarsest level).
    """
    rows, cols = entry.shape
    if (rows * cols < WINDOW_FIRST_MIN_PIXELS or extra.unary is not None or extra.fit_labels is not None
            or extra.star_weight is not None or len(classes) != 2):
        return None
    rr, cc = np.nonzero(seeds)
    if not rr.size:
        return None
    window = update_window(rr, cc, entry.shape, UPDATE_BOUND)
    if (window[1] - window[0]) * (window[3] - window[2]) > UPDATE_MAX_SHARE * rows * cols:
        return None
    levels = levels_of(entry)
    k = len(levels) - 1
    fine = _FineCosts(entry, fit_appearance(entry, extra.first_fit(seeds)), extra)
    check(cancel)
    deltas = _level_deltas(fine, k)
    empty = [np.broadcast_to(np.False_, level.shape) for level in levels]  # no memory: read only

    def star(i, crop, centres):  # no centres outside the window: the crop's own
        return star_steps.StarSteps.from_points(star_steps._edge_points(centres, border=False), centres)

    empty_cut = LastCut(None, None, fine, deltas, empty, [None] * (k + 1), (empty[k], empty[k]), None)
    solved = _solve_window(levels, empty_cut, seeds, classes, lam, sigma, cancel, extra, progress,
                           window, rr, cc, star)
    if solved is None:
        return None
    index = np.ones(entry.shape, np.uint8)  # background outside the window
    crop, labels = solved[0][0]
    index[crop.rows, crop.cols] = ~labels
    return index, (fine, deltas)


def update_multilevel(entry: ImageFeatures, seeds, classes, lam, sigma, iterations, cancel,
                      extra: Extra = NO_EXTRA, progress=None, bound: Optional[int] = None) -> Optional[np.ndarray]:
    """Answer changed strokes by re-solving only a window around them, from the last cut of this image.

    The appearance model of the last cut is kept. Every level of the pyramid
    is re-solved inside the window (the box of the pixels whose stroke changed,
    grown by ``bound`` pixels on every side, at that level's scale): the
    coarsest level whole, every finer level only on the boundary of the blocks
    whose coarser label changed and around the changed strokes, its band
    growing inside the window only. Pixels outside the window keep the last
    result bit for bit; inside it, the result equals a cut with the kept model
    whose labels outside the window are fixed. The work is that of the window:
    every level is solved on a crop (the window and a one-pixel ring of fixed
    labels), whatever the image's size.

    Returns
    -------
    numpy.ndarray or None
        Class indices (0 object, 1 background) as :func:`cut_multilevel` returns
        them, or ``None`` where a local update does not apply: no earlier cut of
        this image with the same parameters, extra evidence (``unary``,
        ``fit_labels``), a window over :data:`UPDATE_MAX_SHARE` of the image, or
        strokes that change the pyramid's depth. The caller then cuts whole.

    Notes
    -----
    The levels are walked by :func:`_solve_window`, not by
    :func:`~napari_deepseg.core.cut.bands.refine_levels`: every level (the coarsest
    too) is a band on a crop, a finer level's band is the boundary only where the
    coarser label or a stroke changed, bounded by the window, and nothing is
    written back until every level is solved (a cancelled update leaves the last cut as it was).
    """
    last = entry.last
    if (last is None or extra.unary is not None or extra.fit_labels is not None or seeds.shape != last.seeds.shape
            or last.key != cut_key(lam, sigma, iterations, classes, extra.star_weight)):
        return None
    rr, cc = np.nonzero(seeds != last.seeds)
    if not rr.size:
        return (~last.fgs[0]).view(np.uint8)
    rows, cols = entry.shape
    window = update_window(rr, cc, entry.shape, UPDATE_BOUND if bound is None else int(bound))
    if (window[1] - window[0]) * (window[3] - window[2]) > UPDATE_MAX_SHARE * rows * cols:
        return None
    levels = levels_of(entry)

    def star(i, crop, centres):
        return crop.star(_star_centres(last, i, crop, centres))

    solved = _solve_window(levels, last, seeds, classes, lam, sigma, cancel, extra, progress, window, rr, cc, star)
    if solved is None:
        return None
    results, top_hards = solved
    for i, (crop, labels) in enumerate(results):  # every level solved: write the windows back
        last.fgs[i][crop.rows, crop.cols] = labels
    entry.remember(replace(last, seeds=seeds.copy(), top_hards=top_hards))
    report(progress, len(results), len(results), "local update")
    return (~last.fgs[0]).view(np.uint8)


def _solve_window(levels: list, last: LastCut, seeds, classes, lam, sigma, cancel, extra: Extra, progress,
                  window: tuple, rr: np.ndarray, cc: np.ndarray, star) -> Optional[tuple]:
    """Every level of ``last``'s pyramid re-solved inside ``window`` (:func:`update_multilevel`'s walk).

    Parameters
    ----------
    levels : list
        :func:`levels_of` the image.
    last : LastCut
        The cut to start from: its ``fgs``, ``detached``, ``top_hards``, ``fine`` and ``deltas`` are read, nothing is written.
    rr, cc : numpy.ndarray
        The pixels whose stroke changed (their box and ``bound`` make ``window``).
    star : callable
        ``star(i, crop, centres)``: the star steps of level ``i`` in ``crop``'s
        coordinates, its centres inside the crop replaced by ``centres``.

    Returns
    -------
    tuple or None
        ``(results, top_hards)``: ``(crop, labels)`` per level, full resolution first,
        and the coarsest level's object and background seeds; ``None`` where the
        coarsest level has no seeds of both labels or the strokes reach a coarser level.
    """
    rows, cols = seeds.shape
    k = len(last.fgs) - 1
    f = blocks.FACTOR**k
    # the strokes of a region covering every level's window and its ring, aligned to the coarsest blocks
    top_win = _level_window(window, k, levels[k].shape)
    r0, c0 = max(0, top_win[0].start - 1) * f, max(0, top_win[1].start - 1) * f
    r1, c1 = min(rows, (top_win[0].stop + 1) * f), min(cols, (top_win[1].stop + 1) * f)
    region = seeds[r0:r1, c0:c1]
    hards = [(region == classes[0], region == classes[1])]
    for _ in range(k):
        hards.append(blocks.coarse_seeds(*hards[-1]))
    top_fg, top_bg = (np.array(h) for h in last.top_hards)
    kr, kc = r0 // f, c0 // f
    top_fg[kr : kr + hards[k][0].shape[0], kc : kc + hards[k][0].shape[1]] = hards[k][0]
    top_bg[kr : kr + hards[k][1].shape[0], kc : kc + hards[k][1].shape[1]] = hards[k][1]
    if not (top_fg.any() and top_bg.any()):
        return None
    if k + 1 < len(levels) and all(h.any() for h in blocks.coarse_seeds(top_fg, top_bg)):
        return None  # the strokes now reach a coarser level: the pyramid is deeper
    soft = extra.star_weight
    results = [None] * (k + 1)  # (crop, labels) per level
    for i in range(k, -1, -1):
        check(cancel)
        where = "full resolution" if i == 0 else f"1/{2**i} resolution"
        report(progress, k - i, k + 1, f"local update: level {k - i + 1} of {k + 1} ({where})")
        level = levels[i]
        win = _level_window(window, i, level.shape)
        crop = _Crop(level.shape, slice(max(0, win[0].start - 1), min(level.shape[0], win[0].stop + 1)),
                     slice(max(0, win[1].start - 1), min(level.shape[1], win[1].stop + 1)))
        inside = np.zeros(crop.shape, bool)
        inside[win[0].start - crop.r0 : win[0].stop - crop.r0, win[1].start - crop.c0 : win[1].stop - crop.c0] = True
        hr, hc = crop.r0 - (r0 >> i), crop.c0 - (c0 >> i)  # the crop within the region's level-i seeds
        h_fg, h_bg = (h[hr : hr + crop.shape[0], hc : hc + crop.shape[1]] for h in hards[i])
        init = np.array(last.fgs[i][crop.rows, crop.cols])
        if i == k:  # the coarsest level: the whole window
            band = inside
            edges = bands.ArrayEdges(level.nlinks_for(lam * 2**k, sigma)[1])
        else:  # the boundary of the blocks whose coarser label changed, and the changed strokes
            above, labels = results[i + 1]
            ys = np.arange(crop.r0, crop.r0 + crop.shape[0]) // blocks.FACTOR - above.r0
            xs = np.arange(crop.c0, crop.c0 + crop.shape[1]) // blocks.FACTOR - above.c0
            new = labels[np.ix_(ys, xs)]
            old = last.fgs[i + 1][above.rows, above.cols][np.ix_(ys, xs)]
            changed = (new != old) & inside
            init[changed] = new[changed]
            focus = changed.copy()
            focus[(rr >> i) - crop.r0, (cc >> i) - crop.c0] = True
            focus = ndi.binary_dilation(focus, np.ones((3, 3), bool), iterations=BAND_RADIUS + 1)
            band = bands.band_mask(init, h_fg, h_bg, BAND_RADIUS) & focus & inside
            edges = band_edges(level, lam * 2**i, sigma)
        if band.any():
            detached = last.detached[i]
            centres = h_fg if detached is None else h_fg | detached[crop.rows, crop.cols]
            costs = last.fine.at if i == 0 else (lambda flat, d=last.deltas[i].ravel(): _split(d[flat]))
            init, _ = bands.refine_band(crop.costs(costs), None, crop.edges(edges), init, band, h_fg, h_bg,
                                             star(i, crop, centres), radius=BAND_RADIUS,
                                             star_weight=None if soft is None else soft * 2**i, limit=inside)
        results[i] = (crop, init)
    return results, (top_fg, top_bg)
