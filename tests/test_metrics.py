"""Every measure checked by hand on tiny arrays (binary, multi-class, ignore, probabilities)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.core.evaluation import metrics as M

# 3x4 masks: TP = 2, FP = 1, FN = 2, TN = 6 (one ignored pixel in the truth at [2, 3])
PRED = np.array([[1, 1, 0, 0],
                 [1, 0, 0, 0],
                 [0, 0, 0, 1]])
TRUTH = np.array([[1, 0, 0, 0],
                  [1, 1, 0, 0],
                  [0, 1, 0, 128]])


def test_binary_counts_by_hand():
    assert M.binary_counts(PRED, TRUTH, ignore=128) == (2, 1, 2, 6)
    # without ignore the 128 pixel is object in both: one more true positive
    assert M.binary_counts(PRED, TRUTH) == (3, 1, 2, 6)


def test_binary_scores_by_hand():
    s = M.binary_scores(PRED, TRUTH, ignore=128)
    assert s["iou"] == pytest.approx(2 / 5)
    assert s["dice"] == pytest.approx(4 / 7)
    assert s["pixel_accuracy"] == pytest.approx(8 / 11)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert s["mse"] == pytest.approx(3 / 11)
    assert set(s) == set(M.SCORE_NAMES)


@pytest.mark.parametrize("name", M.SCORE_NAMES)
def test_single_functions_agree_with_the_report(name):
    assert getattr(M, name)(PRED, TRUTH, ignore=128) == pytest.approx(M.binary_scores(PRED, TRUTH, 128)[name])


def test_ignore_changes_the_result():
    assert M.iou(PRED, TRUTH) == pytest.approx(3 / 6)
    assert M.iou(PRED, TRUTH, ignore=128) == pytest.approx(2 / 5)


def test_empty_masks_agree_perfectly():
    z = np.zeros((3, 3), np.uint8)
    s = M.binary_scores(z, z)
    assert s["iou"] == s["dice"] == s["precision"] == s["recall"] == s["f1"] == 1.0
    assert s["mse"] == 0.0
    one = z.copy()
    one[1, 1] = 1
    assert M.iou(z, one) == 0.0 and M.precision(z, one) == 1.0 and M.recall(z, one) == 0.0
    assert M.precision(one, z) == 0.0 and M.recall(one, z) == 1.0


def test_boolean_and_label_predictions_are_the_same():
    assert M.binary_scores(PRED.astype(bool), TRUTH, 128) == M.binary_scores(PRED * 7, TRUTH, 128)


def test_probability_predictions():
    prob = np.array([[0.9, 0.6, 0.2, 0.0]])
    truth = np.array([[1, 0, 0, 128]])
    s = M.binary_scores(prob, truth, ignore=128)
    # thresholded at 0.5: TP 1, FP 1, TN 1
    assert s["iou"] == pytest.approx(1 / 2)
    assert s["mse"] == pytest.approx((0.1**2 + 0.6**2 + 0.2**2) / 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.mse(np.array([[1.5]]), np.array([[1]]))


def test_shape_mismatch_is_one_clear_error():
    with pytest.raises(ValueError, match=r"shape \(2, 2\).*shape \(3, 3\)"):
        M.iou(np.zeros((2, 2)), np.zeros((3, 3)))


MC_PRED = np.array([[0, 1, 1],
                    [2, 2, 1],
                    [0, 0, 2]])
MC_TRUTH = np.array([[0, 1, 2],
                     [2, 2, 1],
                     [0, 255, 1]])


def test_multiclass_by_hand():
    r = M.multiclass_scores(MC_PRED, MC_TRUTH, classes=[0, 1, 2], ignore=255)
    c0, c1, c2 = (r["per_class"][k] for k in (0, 1, 2))
    # class 0: TP 2, FP 0 ([2,1] is ignored), FN 0
    assert c0["iou"] == 1.0
    # class 1: pred {(0,1),(0,2),(1,2)}, truth {(0,1),(1,2),(2,2)}: TP 2, FP 1, FN 1
    assert c1["iou"] == pytest.approx(2 / 4) and c1["dice"] == pytest.approx(4 / 6)
    assert c1["precision"] == pytest.approx(2 / 3) and c1["recall"] == pytest.approx(2 / 3)
    # class 2: pred {(1,0),(1,1),(2,2)}, truth {(0,2),(1,0),(1,1)}: TP 2, FP 1, FN 1
    assert c2["iou"] == pytest.approx(2 / 4)
    assert c2["mse"] == pytest.approx(2 / 8)
    assert r["mean"]["iou"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["overall_accuracy"] == pytest.approx(6 / 8)
    assert M.pixel_accuracy(MC_PRED, MC_TRUTH, ignore=255, classes=[0, 1, 2]) == pytest.approx(6 / 8)
    assert M.iou(MC_PRED, MC_TRUTH, ignore=255, classes=[1, 2]) == pytest.approx(0.5)


def test_multiclass_default_classes_skip_the_ignore_value():
    r = M.multiclass_scores(MC_PRED, MC_TRUTH, ignore=255)
    assert sorted(r["per_class"]) == [0, 1, 2]


def test_multiclass_absent_class_scores_one():
    r = M.multiclass_scores(MC_PRED, MC_TRUTH, classes=[5], ignore=255)
    assert r["per_class"][5]["iou"] == 1.0


def test_confusion_matrix_by_hand():
    cm = M.confusion_matrix(MC_PRED, MC_TRUTH, [0, 1, 2], ignore=255)
    assert cm.tolist() == [[2, 0, 0],
                           [0, 2, 1],
                           [0, 1, 2]]
    # labels in any order: rows and columns follow the order given
    assert M.confusion_matrix(MC_PRED, MC_TRUTH, [2, 0, 1], ignore=255).tolist() == [[2, 0, 1],
                                                                                    [0, 2, 0],
                                                                                    [1, 0, 2]]
