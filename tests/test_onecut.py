"""OneCut (core/prompts/onecut.py) and the first fit it gives a box engine (issue 32 item 2, measured, not used)."""

from __future__ import annotations

import numpy as np

from napari_deepseg.core.prompts.box import Box
from napari_deepseg.core.prompts.boxcut import box_labels
from napari_deepseg.core.prompts.onecut import colour_bins, onecut, onecut_first_fit, onecut_fit, overlap_weight


def _framed_square(shape=(60, 80), box=(15, 20, 45, 60), rim=4, seed=0):
    """A square object with a rim of its own colour, on a textured grey background."""
    rng = np.random.default_rng(seed)
    img = np.full((*shape, 3), 0.5, np.float32) + rng.normal(0, 0.03, (*shape, 3)).astype(np.float32)
    r0, c0, r1, c1 = box
    img[r0:r1, c0:c1] = (0.15, 0.25, 0.8)                           # blue rim
    img[r0 + rim:r1 - rim, c0 + rim:c1 - rim] = (0.85, 0.75, 0.2)   # yellow core
    truth = np.zeros(shape, bool)
    truth[r0:r1, c0:c1] = True
    return np.clip(img, 0, 1), truth, Box(r0, c0, r1, c1)


def test_colour_bins_number_only_the_bins_that_occur():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 1] = (255, 0, 0)
    img[1, 2] = (255, 0, 0)
    img[1, 0] = (8, 8, 8)
    bins = colour_bins(img)
    assert bins.max() == 2 and bins[0, 1] == bins[1, 2] and bins[0, 0] == bins[0, 2]
    assert np.array_equal(colour_bins(img.astype(np.float32) / 255), bins)   # floats in [0, 1] alike
    assert colour_bins(img[..., 0]).max() == 2                                 # grey: one channel


def test_overlap_weight_grows_as_the_histograms_separate():
    bins = np.array([[0, 0, 1, 1, 2, 2]])
    inside = np.array([[True, True, True, False, False, False]])
    assert overlap_weight(bins, inside, beta=1.0) == 3.0          # bin 1 shared 1 : 1
    assert overlap_weight(np.array([[0, 0, 0, 1, 1, 1]]), inside, beta=1.0) == 3.0  # none shared: |box| / 1


def test_onecut_keeps_an_object_that_fills_a_tight_box():
    img, truth, box = _framed_square()
    mask = onecut(img, box)
    assert not mask[~box.mask(truth.shape)].any()
    assert (mask == truth).mean() > 0.99         # the rim touching the box's sides stays object


def test_onecut_seeds_are_hard():
    img, truth, box = _framed_square()
    assert onecut(img, box)[25:35, 35:45].all()
    seeds = np.zeros(truth.shape, np.uint8)
    seeds[25:35, 35:45] = 2                      # background in the object's core
    seeds[40:45, 25:30] = 1                      # object on the rim
    mask = onecut(img, box, seeds=seeds)
    assert not mask[25:35, 35:45].any() and mask[40:45, 25:30].all()


def test_onecut_fit_is_solved_small_and_given_at_full_size():
    img, truth, box = _framed_square(shape=(61, 81))
    mask = onecut_fit(img, box, scale=2)
    assert mask.shape == truth.shape and not mask[~box.mask(truth.shape)].any()
    assert (mask == truth).mean() > 0.97
    assert np.array_equal(onecut_fit(img, box, scale=1), onecut(img, box))


def test_first_fit_takes_onecut_inside_the_box_and_keeps_the_rest():
    img, truth, box = _framed_square()
    seeds, fit = box_labels(box, truth.shape)
    new = onecut_first_fit(img, box, seeds, fit)
    inside = box.mask(truth.shape)
    assert np.array_equal(new[~inside], fit[~inside])
    assert (new[inside] > 0).all()                          # every inside pixel is in the first fit
    # the ring's first fit calls the rim background and leaves the band out; OneCut's takes most of it as object
    assert (new[inside & truth] == 1).mean() > 0.8 > 0.5 > (fit[inside & truth] == 1).mean()
    assert (new[seeds == 1] == 1).all()


def test_first_fit_falls_back_when_onecut_takes_the_whole_box():
    img = np.full((40, 40, 3), 0.5, np.float32)             # one colour: nothing tells the box from the outside
    box = Box(5, 5, 35, 35)
    _, fit = box_labels(box, (40, 40))
    seeds = np.where(box.mask((40, 40)), 0, 2).astype(np.uint8)   # no object seed
    assert not onecut_fit(img, box, seeds=seeds).any()            # the balloon does not pay for the boundary
    assert np.array_equal(onecut_first_fit(img, box, seeds, fit), fit)
