"""The corrective-stroke protocol (issue 32 item 4): stroke placement, the far-change promise, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_deepseg.cli import main
from napari_deepseg.core.evaluation.benchmark import (CorrectionRun, next_stroke, run_correction_protocol,
                                                      summarize_corrections)
from napari_deepseg.core.evaluation.promises import (correction_promise, far_change_distance, far_change_limit,
                                                     far_changes)
from _synthetic import write_disk_dataset


def _square(shape=(80, 100), box=(20, 60, 30, 70)):
    truth = np.zeros(shape, np.uint8)
    r0, r1, c0, c1 = box
    truth[r0:r1, c0:c1] = 255
    return truth


# -- where the stroke goes ------------------------------------------------------------

def test_stroke_goes_to_the_deepest_point_of_the_largest_error():
    truth = _square()
    pred = truth > 0
    pred[30:42, 72:96] = True      # a 12 x 24 leak to the right: 288 px, the largest error
    pred[24:30, 40:46] = False     # a 6 x 6 hole in the object: 36 px
    stroke = next_stroke(pred, truth)
    leak = pred & (truth == 0)
    depth = ndi.distance_transform_edt(np.pad(leak, 1))[1:-1, 1:-1]
    assert stroke.label == 2 and stroke.region == 288
    assert leak[stroke.row, stroke.col] and depth[stroke.row, stroke.col] == depth.max() == stroke.depth
    assert stroke.radius == int(np.clip(np.floor(depth.max() - 1), 2, 8)) == 5
    # the hole made larger than the leak: an object stroke inside it
    pred[22:40, 36:52] = False
    stroke = next_stroke(pred, truth)
    assert stroke.label == 1 and truth[stroke.row, stroke.col] and not pred[stroke.row, stroke.col]


@pytest.mark.parametrize("width, radius", [(1, 2), (3, 2), (9, 4), (40, 8)])
def test_radius_is_the_depth_minus_one_clipped_to_2_8(width, radius):
    truth = _square((120, 120), (10, 110, 10, 110))
    pred = truth > 0
    pred[30:80, 40:40 + width] = False  # a missed strip `width` px wide
    stroke = next_stroke(pred, truth)
    assert stroke.label == 1 and stroke.radius == radius
    assert stroke.disk(truth.shape).sum() == sum(1 for r in range(-radius, radius + 1)
                                                 for c in range(-radius, radius + 1) if r * r + c * c <= radius**2)


def test_errors_are_8_connected_and_the_unknown_band_is_ignored():
    truth = _square()
    pred = truth > 0
    # two 5 x 5 leaks touching at a corner (one 8-connected region of 50 px) beat one 7 x 7 leak (49 px)
    pred[5:10, 5:10] = pred[10:15, 10:15] = True
    pred[70:77, 80:87] = True
    assert next_stroke(pred, truth).region == 50
    # a leak into the unknown band is no error
    truth[5:15, 5:15] = 128
    assert next_stroke(pred, truth).region == 49
    truth[70:77, 80:87] = 128
    assert next_stroke(pred, truth) is None


def test_bad_inputs():
    with pytest.raises(ValueError, match="pred is"):
        next_stroke(np.zeros((4, 4), bool), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="strokes must be at least 1"):
        run_correction_protocol(lambda s: s, _square(), np.zeros((80, 100), np.uint8), strokes=0)
    with pytest.raises(ValueError, match="scribbles are"):
        run_correction_protocol(lambda s: s, _square(), np.zeros((80, 99), np.uint8))
    with pytest.raises(ValueError, match="stroke paints no pixel"):
        far_changes(np.zeros((4, 4), bool), np.zeros((4, 4), bool), np.zeros((4, 4)), np.zeros((4, 4), bool), 3)
    with pytest.raises(ValueError, match="one shape"):
        far_changes(np.zeros((4, 4), bool), np.zeros((4, 5), bool), np.zeros((4, 4)), np.ones((4, 4), bool), 3)


# -- the far-change promise -------------------------------------------------------------

def _dab(shape, row, col, radius):
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    return (rr - row) ** 2 + (cc - col) ** 2 <= radius**2


def test_a_wedge_behind_a_background_dab_breaks_the_promise():
    truth = _square((200, 200), (40, 160, 40, 160))
    before = truth > 0
    before[90:110, 160:170] = True                   # a small leak at the right edge
    dab = _dab(truth.shape, 100, 165, 3)
    after = before.copy()
    after[90:110, 160:170] = False                   # the leak removed ...
    wedge = np.zeros_like(after)
    rr, cc = np.mgrid[:200, :200]
    wedge[(cc < 165) & (np.abs(rr - 100) < (165 - cc) * 0.4) & (truth > 0)] = True
    after &= ~wedge                                  # ... and the object behind it, as the star cut it
    found = correction_promise(before, after, truth, dab, radius=3)
    far = ndi.distance_transform_edt(~dab) > far_change_distance(3)
    assert found["far_changed"] == int((wedge & far).sum()) > 1000
    assert found["broken"] and found["limit"] == far_change_limit(truth) == 100


def test_a_local_correction_keeps_the_promise():
    truth = _square((200, 200), (40, 160, 40, 160))
    before = truth > 0
    before[90:110, 160:170] = True
    dab = _dab(truth.shape, 100, 165, 3)
    after = before.copy()
    after[90:110, 160:170] = False                   # the leak removed (wrong -> correct: not counted)
    after[95:105, 150:160] = False                   # and the object's edge beside the dab (near: not counted)
    found = correction_promise(before, after, truth, dab, radius=3)
    assert found == {"far_changed": 0, "distance": 19.0, "limit": 100, "broken": False}
    after[40:160, 40:42] = False                     # a far sliver of 240 px: over the limit (100 > 0.5 % of 14,400)
    assert correction_promise(before, after, truth, dab, radius=3)["far_changed"] == 240
    assert correction_promise(before, after, truth, dab, radius=3)["broken"]


def test_far_changes_counts_only_correct_pixels_turned_wrong_outside_the_band():
    truth = _square((100, 100), (20, 80, 20, 80))
    dab = _dab(truth.shape, 50, 85, 2)
    before = truth > 0
    before[0:10, 0:10] = True                        # wrong before, wrong after: not counted
    after = before.copy()
    after[20:30, 20:30] = False                      # correct -> wrong, far: 100 px
    assert far_changes(before, after, truth, dab, 16) == 100
    truth[20:25, 20:30] = 128                        # half of it in the unknown band
    assert far_changes(before, after, truth, dab, 16) == 50
    assert far_changes(before, after, truth, dab, 16, ignore=None) == 100


# -- the protocol ---------------------------------------------------------------------------

def test_protocol_carries_the_iou_on_once_nothing_is_wrong():
    truth = _square()
    run = run_correction_protocol(lambda s: (truth > 0).astype(np.uint8), truth, np.zeros(truth.shape, np.uint8),
                                  strokes=3, keep_masks=True)
    assert run.ious == [1.0] * 4 and run.strokes == [] and len(run.masks) == 1


def test_protocol_paints_each_stroke_into_the_scribbles_it_passes_on():
    truth = _square()
    seen = []

    def cut(scribbles):
        seen.append(scribbles.copy())
        return ((ndi.distance_transform_edt(scribbles != 1) <= 6) & (truth > 0)).astype(np.uint8)

    start = np.zeros(truth.shape, np.uint8)
    start[25:55, 60] = 1
    start[0] = 2
    run = run_correction_protocol(cut, truth, start, strokes=3)
    assert len(seen) == 4 and (start[0] == 2).all() and (start != 0).sum() == 30 + 100  # not written into
    for k, stroke in enumerate(run.strokes):
        disk = stroke.disk(truth.shape)
        assert (seen[k + 1][disk] == stroke.label).all() and ((seen[k + 1] != seen[k]) <= disk).all()
    assert run.ious == sorted(run.ious) and run.ious[-1] > run.ious[0] + 0.3
    assert not any(p["broken"] for p in run.promises)


def test_summary_counts_losses_and_photos_below_their_start():
    runs = {"a": CorrectionRun(ious=[0.8, 0.9, 0.95]), "b": CorrectionRun(ious=[0.9, 0.895, 0.91]),
            "c": CorrectionRun(ious=[0.99, 0.7, 0.98])}
    s = summarize_corrections(runs)
    assert s["worse_after_1"] == [["c", 0.99, 0.7], ["b", 0.9, 0.895]]
    assert s["lost_after_1"] == [["c", 0.99, 0.7]]
    assert s["ended_below_start"] == [["c", 0.99, 0.98]] and s["ended_below_start_by_tolerance"] == []
    assert not s["mean_rises_every_stroke"]  # 0.897 -> 0.832 -> 0.947
    with pytest.raises(ValueError, match="no images"):
        summarize_corrections({})


# -- the command ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_disk_dataset(tmp_path_factory.mktemp("corr") / "disks", n=3)


def test_corrections_command_json(dataset, tmp_path, capsys):
    out, scr = tmp_path / "c.json", tmp_path / "s.json"
    assert main(["benchmark", str(dataset), "--protocol", "corrections", "--scribbles-dir", "scribbles",
                 "--strokes", "2", "--features", "rgb", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["n"] == 3 and res["strokes"] == 2 and len(res["miou_per_stroke"]) == 3
    assert res["protocol"] == "corrections" and res["scribbles_dir"] == "scribbles"
    for entry in res["per_image"].values():
        assert len(entry["ious"]) == 3 and len(entry["strokes"]) == len(entry["far_changed"]) <= 2
        assert all(len(s) == 6 and s[3] in (1, 2) for s in entry["strokes"])
    assert "corrective strokes" in capsys.readouterr().out
    # the first cut is the scribble protocol's (the widget's path gives the same mask for the same strokes)
    assert main(["benchmark", str(dataset), "--protocol", "scribbles", "--scribbles-dir", "scribbles",
                 "--features", "rgb", "-q", "--json", str(scr)]) == 0
    scribbles = json.loads(scr.read_text())["per_image"]
    assert {k: round(v, 4) for k, v in scribbles.items()} == {k: e["ious"][0] for k, e in res["per_image"].items()}


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize("extra, message", [
    (["--protocol", "corrections", "--strokes", "0"], "--strokes must be between 1 and 20, got 0"),
    (["--protocol", "corrections", "--strokes", "21"], "--strokes must be between 1 and 20"),
    (["--strokes", "2"], "--strokes counts corrective strokes: use it with --protocol corrections"),
    (["--protocol", "corrections", "--check-promises"], "--check-promises"),
    (["--protocol", "corrections", "--scribbles-dir", "nowhere"], "no scribble file"),
    (["--protocol", "corrections", "--method", "points-graphcut"], "takes clicks only"),
])
def test_bad_options_are_one_line(dataset, capsys, extra, message):
    assert main(["benchmark", str(dataset), "--features", "rgb", "-q", *extra]) == 2
    assert message in _one_line(capsys.readouterr().err)
