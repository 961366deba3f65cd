"""Object-by-object annotation logic (core/prompts/objects.py): ids, protected commits, refine regions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.core.prompts.box import Box
from napari_deepseg.core.prompts.objects import (commit_object, deepest_point, default_refine_bound, next_free_id,
                                                 object_mask, refine_region)


def test_next_free_id():
    assert next_free_id(np.zeros((3, 3), np.int32)) == 1
    assert next_free_id(np.array([[0, 7], [2, 0]])) == 8


def test_commit_new_object_takes_free_pixels_only():
    labels = np.zeros((6, 6), np.int32)
    labels[:3, :3] = 1
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    out = commit_object(labels, mask, 2)
    assert (out[:3, :3] == 1).all()  # the committed object keeps every pixel
    assert (out[mask & (labels == 0)] == 2).all() and (out[~mask & (labels == 0)] == 0).all()
    assert labels.max() == 1  # the input is not changed


def test_commit_refine_changes_only_inside_the_region():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:8, 2:8] = 3
    labels[0, :] = 5
    new = np.zeros((10, 10), bool)
    new[0:9, 2:9] = True  # grows right and down, wants row 0 (object 5) too, drops nothing
    region = np.zeros((10, 10), bool)
    region[:, 5:] = True
    out = commit_object(labels, new, 3, region)
    assert (out[~region] == labels[~region]).all()  # bit for bit outside the region
    assert (out[0] == 5).all()  # another object's pixels are never taken
    assert out[8, 8] == 3 and out[8, 2] == 0  # grown inside the region only
    shrink = np.zeros((10, 10), bool)
    shrink[2:8, 2:5] = True
    out = commit_object(labels, shrink, 3, region)
    assert (out[2:8, 5:8] == 0).all() and (out[2:8, 2:5] == 3).all()


def test_commit_widens_dtype_and_bad_input():
    labels = np.full((2, 2), 255, np.uint8)
    labels[0, 0] = 0
    out = commit_object(labels, np.ones((2, 2), bool), 256)
    assert out.dtype == np.int64 and out[0, 0] == 256 and out[1, 1] == 255
    with pytest.raises(ValueError, match="shape"):
        commit_object(labels, np.ones((3, 2), bool), 1)
    with pytest.raises(ValueError, match="start at 1"):
        commit_object(labels, np.ones((2, 2), bool), 0)


def test_object_mask_errors():
    labels = np.array([[0, 4], [4, 1]])
    assert object_mask(labels, 4).sum() == 2
    with pytest.raises(ValueError, match="label 0 is the background"):
        object_mask(labels, 0)
    with pytest.raises(ValueError, match="no object with label 9"):
        object_mask(labels, 9)


def test_refine_region_and_bound():
    region = refine_region((20, 20), [(10, 10)], bound=3)
    assert region[10, 13] and not region[10, 14] and region.sum() == 29
    boxed = refine_region((20, 20), box=Box(2, 2, 5, 5), bound=0)
    assert boxed.sum() == 9
    with pytest.raises(ValueError, match="nothing to refine"):
        refine_region((20, 20), [(30, 30)], bound=3)
    with pytest.raises(ValueError, match=">= 0"):
        refine_region((20, 20), [(1, 1)], bound=-1)
    assert default_refine_bound((321, 481)) == 32 and default_refine_bound((10, 10)) == 5


def test_deepest_point():
    m = np.zeros((9, 9), bool)
    m[1:8, 1:8] = True
    assert deepest_point(m) == (4, 4)
