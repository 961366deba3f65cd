"""The click protocol, its summary, dataset discovery and the scribble protocol."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from _synthetic import write_disk_dataset
from napari_deepseg.core.evaluation import benchmark as B
from napari_deepseg.core.prompts.base import Click, ClickMethod


def _rect_truth(shape=(9, 11), box=(2, 7, 2, 9)):
    t = np.zeros(shape, np.uint8)
    r0, r1, c0, c1 = box
    t[r0:r1, c0:c1] = 255
    return t


def test_first_click_is_positive_at_the_deepest_interior_point():
    truth = _rect_truth()  # rows 2..6, cols 2..8: the centre row is 4, distance 3 on cols 4..6
    click = B.next_click(np.zeros(truth.shape, bool), truth, np.zeros(truth.shape, bool))
    assert click == Click(4, 4, True)  # first (row-major) of the maxima


def test_the_image_border_counts_as_a_boundary():
    truth = np.zeros((5, 9), np.uint8)
    truth[:, :4] = 255  # touches the top, bottom and left borders
    click = B.next_click(np.zeros(truth.shape, bool), truth, np.zeros(truth.shape, bool))
    # padded: (1, 1) is 2 pixels from the top and left borders; without the padding the
    # left column would be 4 pixels from the only boundary (column 4) and win
    assert click == Click(1, 1, True)


def test_ignored_pixels_are_never_errors():
    truth = _rect_truth()
    truth[:, :] = np.where(truth == 0, 128, truth)  # everything outside the object is unknown
    pred = np.ones(truth.shape, bool)  # predicts the whole image: only ignored pixels are 'wrong'
    click = B.next_click(pred, truth, np.zeros(truth.shape, bool))
    # no false negative, no false positive: both maxima are 0, so the click is negative (not strictly greater)
    assert not click.positive


def test_negative_click_when_false_positives_are_deeper():
    truth = _rect_truth((12, 12), (1, 3, 1, 3))  # a 2x2 object
    pred = np.zeros(truth.shape, bool)
    pred[5:12, 5:12] = True  # a large false positive
    pred[1:3, 1:3] = True
    click = B.next_click(pred, truth, np.zeros(truth.shape, bool))
    assert click == Click(8, 8, False)


def test_clicked_pixels_are_not_clicked_again():
    truth = _rect_truth()
    clicked = np.zeros(truth.shape, bool)
    clicked[4, 4] = True
    click = B.next_click(np.zeros(truth.shape, bool), truth, clicked)
    assert click == Click(4, 5, True)


def test_equal_distances_give_a_negative_click():
    truth = np.zeros((3, 7), np.uint8)
    truth[1, 1] = 255
    pred = np.zeros(truth.shape, bool)
    pred[1, 5] = True  # one false-positive pixel, as deep as the one false-negative pixel
    assert B.next_click(pred, truth, np.zeros(truth.shape, bool)) == Click(1, 5, False)


class _Oracle(ClickMethod):
    """Returns the truth after ``after`` clicks, an empty mask before."""

    def __init__(self, truth, after=1):
        self.truth, self.after, self.calls = truth, after, []

    def set_image(self, image, progress=None, cancel=None):
        self.image = image

    def predict(self, clicks, cancel=None):
        self.calls.append(list(clicks))
        if len(clicks) >= self.after:
            return self.truth > 0
        return np.zeros(self.truth.shape, bool)


def test_protocol_stops_at_the_target_and_passes_every_click():
    truth = _rect_truth()
    oracle = _Oracle(truth, after=3)
    run = B.run_click_protocol(oracle, np.zeros(truth.shape), truth)
    assert run.ious == [0.0, 0.0, 1.0] and run.noc(0.9) == 3
    assert [len(c) for c in oracle.calls] == [1, 2, 3]
    assert all(c.positive for c in run.clicks)
    # the second click avoids the first one's pixel
    assert run.clicks[0] != run.clicks[1]
    assert len(run.seconds) == 3


def test_protocol_never_reaching_the_target_uses_all_clicks():
    truth = _rect_truth()
    run = B.run_click_protocol(_Oracle(truth, after=99), np.zeros(truth.shape), truth, max_clicks=5)
    assert len(run.ious) == 5 and run.noc(0.9, 5) == 5
    s = B.summarize_clicks([run], max_clicks=5)
    assert s["nof90"] == 1 and s["nof85"] == 1 and s["noc90"] == 5.0
    assert s["miou_at_clicks"] == [0.0] * 5


def test_protocol_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mask"):
        B.run_click_protocol(_Oracle(_rect_truth()), np.zeros((4, 4)), _rect_truth())


def test_summary_by_hand():
    runs = [B.ClickRun(ious=[0.86, 0.95]), B.ClickRun(ious=[0.5, 0.7, 0.91]), B.ClickRun(ious=[0.2] * 20)]
    s = B.summarize_clicks(runs)
    assert s["n"] == 3
    assert s["noc85"] == pytest.approx((1 + 3 + 20) / 3)
    assert s["noc90"] == pytest.approx((2 + 3 + 20) / 3)
    assert s["nof85"] == 1 and s["nof90"] == 1
    assert len(s["miou_at_clicks"]) == 20
    assert s["miou_at_clicks"][0] == pytest.approx((0.86 + 0.5 + 0.2) / 3)
    # stopped runs carry their last IoU on
    assert s["miou_at_clicks"][9] == pytest.approx((0.95 + 0.91 + 0.2) / 3)
    with pytest.raises(ValueError):
        B.summarize_clicks([])


def test_dataset_items_pair_by_stem(tmp_path):
    root = write_disk_dataset(tmp_path / "ds")
    (root / "images" / "orphan.png").write_bytes((root / "images" / "im0.png").read_bytes())
    items = B.dataset_items(root)
    assert [i.stem for i in items] == ["im0", "im1", "im2"]
    image, mask = items[1].load()
    assert image.shape[:2] == mask.shape and mask.ndim == 2
    assert [i.stem for i in B.dataset_items(root, limit=2)] == ["im0", "im1"]


@pytest.mark.parametrize("layout, message", [("missing", "does not exist"), ("no-masks", "masks/"),
                                             ("no-pairs", "same file stem")])
def test_dataset_errors(tmp_path, layout, message):
    root = tmp_path / "ds"
    if layout != "missing":
        (root / "images").mkdir(parents=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "images" / "a.png")
    if layout == "no-pairs":
        (root / "masks").mkdir()
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "masks" / "b.png")
    with pytest.raises(ValueError, match=message):
        B.dataset_items(root)


def test_scribble_protocol_on_a_synthetic_dataset(tmp_path):
    from napari_deepseg.core import SegmentationSession

    root = write_disk_dataset(tmp_path / "ds")
    (root / "scribbles" / "im2-anno.png").unlink()
    session = SegmentationSession("rgb")

    def segment(image, scribbles):
        session.set_image(image)
        return session.segment(scribbles)

    result = B.run_scribble_protocol(segment, B.dataset_items(root), root, "scribbles")
    assert result["n"] == 2 and result["missing"] == ["im2"]
    assert set(result["per_image"]) == {"im0", "im1"}
    assert result["miou"] > 0.9
    assert result["miou"] == pytest.approx(np.mean(list(result["per_image"].values())))
    with pytest.raises(ValueError, match="no scribble file"):
        B.run_scribble_protocol(segment, B.dataset_items(root), root, "nowhere")


def test_graphcut_clicks_on_synthetic_disks(tmp_path):
    from napari_deepseg.core.prompts.base import get_click_method

    root = write_disk_dataset(tmp_path / "ds", scribbles=False)
    method = get_click_method("graphcut", features="rgb")
    runs = [run for _, run in B.run_clicks_on_dataset(method, B.dataset_items(root))]
    s = B.summarize_clicks(runs)
    # a bright disk on a striped background: a couple of clicks at most
    assert s["noc90"] <= 3 and s["nof90"] == 0


def test_plot_click_curves(tmp_path):
    s = B.summarize_clicks([B.ClickRun(ious=[0.5, 0.8, 0.92])])
    out = B.plot_click_curves({"a": s}, tmp_path / "p" / "curves.png", dataset="grabcut")
    with Image.open(out) as im:
        assert im.size[0] > 400 and im.size[1] > 300
