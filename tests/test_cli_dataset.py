"""``napari-deepseg dataset status | replay`` run for real on a small annotated folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _synthetic import disk_image, disk_scribbles
from napari_deepseg.cli import main
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.dataset import DatasetFolder, ImageState, Step, scribble_engine

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def annotated(tmp_path):
    """``tmp_path/images`` (4 disks and broken.png, which sorts first) and ``tmp_path`` as the output: im0, im1 done by scribbles, im2 skipped."""
    images = tmp_path / "images"
    images.mkdir()
    for k in range(4):
        Image.fromarray(disk_image((40, 48), seed=k)[0]).save(images / f"im{k}.png")
    (images / "broken.png").write_bytes(b"not a png")
    masks = {}
    with DatasetFolder.open(images, tmp_path) as folder:
        for k in range(2):
            strokes = disk_scribbles(disk_image((40, 48), seed=k)[1], seed=k).astype(np.uint8)
            session = SegmentationSession("classic")
            session.set_image(folder.read_image(k + 1))  # broken.png sorts first
            masks[k + 1] = session.segment(strokes)
            folder.save(k + 1, ImageState(masks[k + 1], [Step("scribbles", scribble_engine(session), strokes=strokes)]))
            folder.set_status(k + 1, "done")
        with pytest.raises(ValueError):
            folder.read_image(0)
        folder.set_status(3, "skipped", "blurred")
    return tmp_path, masks


def test_status_prints_done_over_total_and_counts(annotated, capsys):
    out_dir, _ = annotated
    assert main(["dataset", "status", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{out_dir}: 2/5 done" in out
    lines = {ln.split()[0]: ln.split()[1] for ln in out.splitlines()[1:7]}
    assert lines == {"not-started": "1", "in-progress": "0", "done": "2", "skipped": "1", "needs-review": "0",
                     "unreadable": "1"}
    assert "unreadable: broken.png: cannot read image" in out
    assert main(["dataset", "status", str(out_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total"] == 5 and summary["counts"]["done"] == 2 and list(summary["unreadable"]) == ["broken.png"]
    assert summary["images"] == str(out_dir / "images")


def test_replay_reproduces_the_masks_and_rewrites_a_changed_one(annotated, capsys):
    out_dir, masks = annotated
    assert main(["dataset", "replay", str(out_dir), "-q"]) == 0
    assert "2 records: 2 same, 0 changed" in capsys.readouterr().out
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(out_dir / "masks" / "im1.png")  # an older engine's mask
    assert main(["dataset", "replay", str(out_dir), "--dry-run", "-q"]) == 0
    assert "1 same, 1 differ (not written: --dry-run)" in capsys.readouterr().out
    assert not np.asarray(Image.open(out_dir / "masks" / "im1.png")).any()
    assert main(["dataset", "replay", str(out_dir), "--images", str(out_dir / "images")]) == 0
    captured = capsys.readouterr()
    assert "1 same, 1 changed" in captured.out and "im1.png: changed" in captured.out
    assert "[2/2] im1.png" in captured.err
    np.testing.assert_array_equal(np.asarray(Image.open(out_dir / "masks" / "im1.png")), masks[2])
    assert len(list((out_dir / ".history" / "im1").iterdir())) == 1  # the zeros kept


def test_replay_refuses_a_folder_another_session_holds(annotated, capsys):
    out_dir, _ = annotated
    with DatasetFolder.reopen(out_dir) as holder:
        assert not holder.read_only
        assert main(["dataset", "replay", str(out_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "open in another session" in err and "--dry-run" in err
        assert main(["dataset", "replay", str(out_dir), "--dry-run", "-q"]) == 0


def test_replay_failure_exits_1_with_the_reason(annotated, capsys):
    out_dir, _ = annotated
    (out_dir / "records" / "im1.strokes-1.png").unlink()
    assert main(["dataset", "replay", str(out_dir), "-q"]) == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out and captured.err.startswith("im1.png: failed: ")


@pytest.mark.parametrize("argv, message", [
    (["dataset", "status", "NOWHERE"], "is not a dataset output folder"),
    (["dataset", "replay", "NOWHERE"], "is not a dataset output folder"),
    (["dataset", "replay", "OUT", "--images", "NOWHERE"], "image folder"),
    (["dataset"], "required"),
])
def test_bad_input_is_one_line_and_exit_2(annotated, argv, message):
    out_dir, _ = annotated
    argv = [str(out_dir) if a == "OUT" else str(out_dir / "nowhere") if a == "NOWHERE" else a for a in argv]
    proc = subprocess.run([sys.executable, "-m", "napari_deepseg.cli", *argv], capture_output=True, text=True,
                          env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
