"""Evaluation: score tables, error overlay, folders paired by stem, CSV/JSON, the ``evaluate`` command.

Every expected number is worked out by hand in the comments.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from napari_deepseg.cli import main
from napari_deepseg.core.evaluation.folders import (
    FILE_COLUMNS,
    ScoreTable,
    error_overlay,
    evaluate_folders,
    evaluate_labels,
    pair_files,
    score_pair,
    write_csv,
    write_json,
)
from napari_deepseg.core.evaluation.metrics import SCORE_NAMES

PRED = np.array([[0, 0, 1, 1],
                 [0, 1, 1, 1],
                 [0, 0, 2, 2],
                 [0, 0, 0, 2]])
TRUTH = np.array([[0, 0, 1, 1],
                  [0, 0, 1, 1],
                  [0, 0, 2, 2],
                  [0, 2, 2, 2]])


def test_evaluate_labels_by_hand():
    table = evaluate_labels(PRED, TRUTH, names={1: "cat", 2: "dog"})
    rows = {r["class"]: r for r in table.rows}
    # class 1: pred 5 px, truth 4 px, tp 4 -> IoU 4/5, Dice 8/9, precision 4/5, recall 1
    assert rows[1]["iou"] == pytest.approx(0.8)
    assert rows[1]["dice"] == pytest.approx(8 / 9)
    assert rows[1]["precision"] == pytest.approx(0.8) and rows[1]["recall"] == 1.0
    # class 2: pred 3 px, truth 5 px, tp 3 -> IoU 3/5, recall 3/5, precision 1; f1 = dice = 6/8
    assert rows[2]["iou"] == pytest.approx(0.6) and rows[2]["recall"] == pytest.approx(0.6)
    assert rows[2]["f1"] == pytest.approx(0.75)
    # class 0: pred 8 px, truth 7 px, tp 6 -> IoU 6/9; one-against-rest accuracy 13/16; mse = 3/16
    assert rows[0]["iou"] == pytest.approx(6 / 9)
    assert rows[0]["pixel_accuracy"] == pytest.approx(13 / 16) and rows[0]["mse"] == pytest.approx(3 / 16)
    assert rows[1]["name"] == "cat" and rows[2]["pixels"] == 5 and rows[0]["pixels"] == 7
    assert table.mean["iou"] == pytest.approx((0.8 + 0.6 + 6 / 9) / 3)
    assert table.pixel_accuracy == pytest.approx(13 / 16)  # 3 pixels wrong of 16
    out = table.as_rows()
    assert out[-1]["class"] == "mean" and out[-1]["iou"] == table.mean["iou"] and len(out) == 4


def test_evaluate_labels_ignore_and_background():
    truth = TRUTH.copy()
    truth[1, 1] = 128  # the one false positive of class 1 is ignored now
    table = evaluate_labels(PRED, truth, ignore=128, include_background=False)
    rows = {r["class"]: r for r in table.rows}
    assert set(rows) == {1, 2}
    assert rows[1]["iou"] == 1.0
    assert table.mean["iou"] == pytest.approx((1.0 + 0.6) / 2)


@pytest.mark.parametrize("pred, truth, message", [
    (np.zeros((2, 3), int), np.zeros((3, 2), int), "shape"),
    (np.zeros((2, 2), float), np.zeros((2, 2), int), "integer labels"),
    (np.zeros((2, 2), int), np.zeros((2, 2), int), "nothing to score"),
])
def test_evaluate_labels_bad_input(pred, truth, message):
    with pytest.raises((ValueError, TypeError), match=message):
        evaluate_labels(pred, truth, include_background=False)


def test_error_overlay_by_hand():
    overlay = error_overlay(PRED, TRUTH)
    expected = np.zeros((4, 4), np.uint8)
    expected[1, 1] = 1  # predicted 1 where the reference is background: false positive
    expected[3, 1:3] = 2  # reference 2 predicted as background: false negatives
    assert overlay.tolist() == expected.tolist()
    wrong = error_overlay(np.array([[1, 2]]), np.array([[2, 2]]))
    assert wrong.tolist() == [[3, 0]]
    assert error_overlay(np.array([[1]]), np.array([[128]]), ignore=128).tolist() == [[0]]


def test_score_pair_binary_and_classes():
    # binary: 0/255 prediction against a 0/1 reference; 128 ignored
    s = score_pair(np.array([255, 255, 0, 0, 255]), np.array([1, 0, 0, 1, 128]), ignore=128)
    assert s["iou"] == pytest.approx(1 / 3) and s["pixel_accuracy"] == 0.5 and s["mse"] == 0.5
    m = score_pair(PRED, TRUTH, classes=[1, 2])
    assert m["iou"] == pytest.approx(0.7)


def write_mask(path, array):
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


@pytest.fixture
def folders(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    a_truth = np.zeros((8, 8), np.uint8)
    a_truth[2:6, 2:6] = 255
    a_pred = np.zeros((8, 8), np.uint8)
    a_pred[2:6, 2:4] = 1  # half the object: IoU 0.5
    write_mask(pred / "a.png", a_pred)
    write_mask(gt / "a.bmp", a_truth)  # paired by stem across suffixes
    write_mask(pred / "b.png", a_truth // 255)
    write_mask(gt / "b.png", a_truth)  # perfect: IoU 1
    write_mask(pred / "c.png", np.zeros((4, 4)))
    write_mask(gt / "c.png", np.zeros((8, 8)))  # shape mismatch
    write_mask(pred / "only_pred.png", a_pred)
    write_mask(gt / "only_gt.png", a_truth)
    (pred / "broken.png").write_bytes(b"not a png")
    write_mask(gt / "broken.png", a_truth)
    (pred / "notes.txt").write_text("ignored")
    return pred, gt


def test_pair_files(folders):
    pairs = {p.stem: p for p in pair_files(*folders)}
    assert set(pairs) == {"a", "b", "c", "only_pred", "only_gt", "broken"}
    assert pairs["a"].truth.name == "a.bmp"
    assert pairs["only_pred"].truth is None and pairs["only_gt"].pred is None


def test_evaluate_folders_reports_problems_per_file(folders):
    result = evaluate_folders(*folders)
    rows = {r["file"]: r for r in result.rows}
    assert rows["a"]["status"] == "ok" and rows["a"]["iou"] == pytest.approx(0.5)
    assert rows["b"]["iou"] == 1.0
    assert "shape" in rows["c"]["status"]
    assert rows["only_pred"]["status"] == "no reference file"
    assert rows["only_gt"]["status"] == "no prediction file"
    assert "cannot read" in rows["broken"]["status"]
    assert result.evaluated == 2 and len(result.problems) == 4
    assert result.mean["iou"] == pytest.approx(0.75)
    assert result.mean["recall"] == pytest.approx(0.75)  # (0.5 + 1) / 2


def test_reports_written(folders, tmp_path):
    result = evaluate_folders(*folders)
    data = json.loads(write_json(tmp_path / "r.json", result).read_text())
    assert set(SCORE_NAMES) <= set(data) and len(data["files"]) == 6
    assert data["iou"] == pytest.approx(0.75)
    path = write_csv(tmp_path / "r.csv", result.rows, FILE_COLUMNS)
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows][:2] == ["a", "b"] and float(rows[0]["iou"]) == 0.5
    with pytest.raises(ValueError, match=".csv"):
        write_csv(tmp_path / "r.txt", result.rows)
    with pytest.raises(ValueError, match=".json"):
        write_json(tmp_path / "r.csv", result)
    assert isinstance(evaluate_labels(PRED, TRUTH), ScoreTable)


def test_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="prediction folder not found"):
        evaluate_folders(tmp_path / "nope", tmp_path)


# ------------------------------------------------------------------------------ CLI
def test_cli_evaluate(folders, tmp_path, capsys):
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    status = main(["evaluate", str(folders[0]), str(folders[1]), "--ignore", "128",
                   "--json", str(out_json), "--csv", str(out_csv)])
    captured = capsys.readouterr()
    assert status == 0
    assert "iou=0.7500" in captured.out
    assert "c: prediction has shape" in captured.err and "only_gt: no prediction file" in captured.err
    assert "Traceback" not in captured.err
    data = json.loads(out_json.read_text())
    assert {"iou", "dice", "pixel_accuracy", "precision", "recall", "f1", "mse", "files"} <= set(data)
    assert sum(r["status"] == "ok" for r in data["files"]) == 2
    rows = list(csv.DictReader(out_csv.open()))
    assert rows[-1]["file"] == "mean" and float(rows[-1]["iou"]) == pytest.approx(0.75)


def test_cli_evaluate_classes(folders, capsys):
    assert main(["evaluate", str(folders[0]), str(folders[1]), "--classes", "0,1", "-q"]) == 0


@pytest.mark.parametrize("extra, message", [
    (["--json", "out.txt"], "ending in .json"),
    (["--csv", "out.json"], "ending in .csv"),
    (["--classes", "a,b"], "--classes"),
])
def test_cli_evaluate_bad_options(folders, capsys, extra, message):
    assert main(["evaluate", str(folders[0]), str(folders[1])] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_evaluate_nothing_to_score(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    write_mask(tmp_path / "p" / "x.png", np.zeros((4, 4)))
    write_mask(tmp_path / "g" / "y.png", np.zeros((4, 4)))
    assert main(["evaluate", str(tmp_path / "p"), str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "no pair of files could be evaluated" in err and "Traceback" not in err
    assert main(["evaluate", str(tmp_path / "missing"), str(tmp_path / "g")]) == 2
    assert "prediction folder not found" in capsys.readouterr().err


def test_a_failed_report_write_leaves_the_old_file_whole(tmp_path):
    from napari_deepseg.core.evaluation.folders import write_csv

    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot format")

    path = tmp_path / "report.csv"
    write_csv(path, [{"file": "a.png", "status": "ok"}])
    old = path.read_bytes()
    with pytest.raises(RuntimeError):
        write_csv(path, [{"file": "b.png", "status": "ok"}, {"file": Unprintable(), "status": "ok"}])
    assert path.read_bytes() == old                       # written to a temporary name, never renamed
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
