"""The 2 x 2 pyramid of a 2-D image: block reductions, block seeds, upsampling.

A coarse level has a quarter of the pixels: unaries are summed over 2 x 2
blocks, colour and features averaged, and a block is a hard seed when it holds
seeds of one label only (:func:`coarse_seeds`, :func:`coarse_hard`). Used by the
scribble cut's pyramid (:mod:`~napari_deepseg.core.cut.pyramid`) and the
``points-graphcut`` click engine.
"""

from __future__ import annotations

import numpy as np

FACTOR = 2


def coarse_shape(shape) -> tuple:
    """``ceil(shape / FACTOR)`` for each axis.

    Examples
    --------
    >>> coarse_shape((5, 8))
    (3, 4)
    """
    return tuple(-(-n // FACTOR) for n in shape)


def _pad_even(a: np.ndarray) -> np.ndarray:
    rows, cols = a.shape[:2]
    pad = ((0, -rows % FACTOR), (0, -cols % FACTOR)) + ((0, 0),) * (a.ndim - 2)
    return np.pad(a, pad, mode="edge") if any(p[1] for p in pad) else a


def block_reduce(a: np.ndarray, how: str = "mean") -> np.ndarray:
    """Mean or sum over ``FACTOR x FACTOR`` blocks (edge-padded to whole blocks).

    Examples
    --------
    >>> block_reduce(np.arange(4.).reshape(2, 2), "sum").tolist()
    [[6.0]]
    """
    p = _pad_even(np.asarray(a))
    rows, cols = p.shape[0] // FACTOR, p.shape[1] // FACTOR
    blocks = p.reshape(rows, FACTOR, cols, FACTOR, *p.shape[2:])
    out = blocks.sum(axis=(1, 3), dtype=np.float32)
    return out / np.float32(FACTOR * FACTOR) if how == "mean" else out


def coarse_hard(hard: np.ndarray) -> np.ndarray:
    """Block seeds: the class of a block whose seeds all agree, ``-1`` elsewhere.

    Examples
    --------
    >>> coarse_hard(np.array([[0, -1, 1, 1], [0, 1, -1, -1]])).tolist()
    [[-1, 1]]
    """
    p = _pad_even(hard)
    rows, cols = p.shape[0] // FACTOR, p.shape[1] // FACTOR
    blocks = p.reshape(rows, FACTOR, cols, FACTOR).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
    top = blocks.max(axis=-1)
    low = np.where(blocks >= 0, blocks, np.iinfo(np.int32).max).min(axis=-1)
    return np.where((top >= 0) & (top == low), top, -1).astype(np.int32)


def upsample_labels(coarse: np.ndarray, shape, factor: int = FACTOR) -> np.ndarray:
    """Nearest-neighbour upsampling of a coarse labelling by ``factor`` (one level by default), cropped to ``shape``.

    Examples
    --------
    >>> upsample_labels(np.array([[1, 0]], bool), (2, 3), 2).astype(int).tolist()
    [[1, 1, 0], [1, 1, 0]]
    """
    return np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)[: shape[0], : shape[1]]


def coarse_seeds(hard_fg: np.ndarray, hard_bg: np.ndarray):
    """Block seeds of a two-label problem: a block is a seed of the one label its seeds have.

    The same as :func:`coarse_hard` for two labels, from the seeds' coordinates
    only (strokes are few pixels of a large image).

    Examples
    --------
    >>> fg = np.array([[1, 0, 0, 0], [1, 0, 0, 1]], bool); bg = np.array([[0, 1, 0, 0], [0, 0, 0, 0]], bool)
    >>> [a.astype(int).tolist() for a in coarse_seeds(fg, bg)]
    [[[0, 1]], [[0, 0]]]
    """
    shape = coarse_shape(hard_fg.shape)
    out = []
    for hard in (hard_fg, hard_bg):
        rr, cc = np.nonzero(hard)
        block = np.zeros(shape, bool)
        block[rr // FACTOR, cc // FACTOR] = True
        out.append(block)
    both = out[0] & out[1]
    return out[0] & ~both, out[1] & ~both


def block_sum(a: np.ndarray) -> np.ndarray:
    """Sum over ``FACTOR x FACTOR`` blocks of a 2-D array (edge-padded), by strided views.

    Faster than :func:`block_reduce` for one channel (no reshaped reduction).

    Examples
    --------
    >>> block_sum(np.arange(6.).reshape(2, 3)).tolist()
    [[8.0, 14.0]]
    """
    p = _pad_even(np.asarray(a, np.float32))
    out = p[0::2, 0::2] + p[1::2, 0::2]
    out += p[0::2, 1::2]
    out += p[1::2, 1::2]
    return out
