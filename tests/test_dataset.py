"""A whole folder annotated: statuses, saved states, atomic writes, the lock, history, prefetch, replay.

Everything runs on small seeded synthetic images (``_synthetic.disk_image``) in
temporary folders; the interrupted-write test kills a real child process with
SIGKILL while it saves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from _synthetic import disk_image, disk_scribbles
from napari_deepseg.core.dataset import DatasetFolder, ImageState, ReadOnlyError, Step, UnreadableImage
from napari_deepseg.core.dataset import history
from napari_deepseg.core.dataset.folder import STATUS_FILE, list_images
from napari_deepseg.core.dataset.lock import LOCK_NAME
from napari_deepseg.core.dataset.record import click_engine, scribble_engine
from napari_deepseg.core.io.atomic import temporary_name
from napari_deepseg.core.io.files import read_labels
from napari_deepseg.core.prompts.base import Click
from napari_deepseg.core.prompts.box import Box

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _images(root: Path, n: int = 5, shape=(40, 48)) -> Path:
    """``root/images/im0.png ...``: disks on a textured background (the folder's parent is the output)."""
    folder = root / "images"
    folder.mkdir(parents=True)
    for k in range(n):
        img, _ = disk_image(shape, seed=k)
        Image.fromarray(img).save(folder / f"im{k}.png")
    return folder


def _state(k: int, shape=(40, 48)) -> ImageState:
    """A state with a mask, a scribbles step and a clicks step: different for every ``k``."""
    _, truth = disk_image(shape, seed=k)
    strokes = disk_scribbles(truth, seed=k).astype(np.uint8)
    clicks = (Click(20, 24, True), Click(3, 3 + k, False))
    steps = [Step("scribbles", scribble_engine(backbone="classic", lam=5.0 + k), strokes=strokes),
             Step("clicks", click_engine("graphcut", features="classic"), clicks=clicks, target=2)]
    return ImageState(mask=truth.astype(np.uint8) * (k + 1), steps=steps)


# ============================================================================ the folder model
def test_three_saved_states_come_back_and_work_resumes_at_the_fourth(tmp_path):
    images = _images(tmp_path)
    with DatasetFolder.open(images, tmp_path) as folder:
        assert len(folder) == 5 and folder.first_not_done() == 0 and not folder.read_only
        for k in range(3):
            written = folder.save(k, _state(k))
            assert {p.name for p in written} >= {f"im{k}.png", f"im{k}.json", f"im{k}.strokes-1.png"}
            assert folder.status(k) == "in-progress"
            folder.set_status(k, "done")
        folder.set_status(4, "needs-review", "the\nboundary is off")
    again = DatasetFolder.open(images, tmp_path)
    assert [again.status(k) for k in range(5)] == ["done"] * 3 + ["not-started", "needs-review"]
    assert again.reason(4) == "the boundary is off" and again.first_not_done() == 3
    assert again.counts()["done"] == 3
    for k in range(3):
        want, got = _state(k), again.load(k)
        np.testing.assert_array_equal(got.mask, want.mask)
        assert len(got.steps) == 2 and got.steps[0].engine == want.steps[0].engine
        np.testing.assert_array_equal(got.steps[0].strokes, want.steps[0].strokes)
        assert got.clicks == want.steps[1].clicks and got.steps[1].target == 2 and got.strokes is None
    assert again.load(3).mask is None and again.load(3).steps == []
    again.close()


def test_status_file_and_record_are_documented_json(tmp_path):
    images = _images(tmp_path, n=2)
    with DatasetFolder.open(images, tmp_path, pattern="*.png") as folder:
        folder.save(0, _state(0))
    status = json.loads((tmp_path / STATUS_FILE).read_text())
    assert status["format"] == "napari-deepseg dataset" and status["version"] == 1
    assert status["items"]["im0.png"] == {"status": "in-progress", "reason": ""}
    rec = json.loads((tmp_path / "records" / "im0.json").read_text())
    from napari_deepseg import __version__

    assert rec["plugin_version"] == __version__ and rec["mask"] == "masks/im0.png"
    assert rec["image"]["shape"] == [40, 48, 3] and len(rec["image"]["sha256"]) == 64
    import hashlib

    assert rec["image"]["sha256"] == hashlib.sha256((images / "im0.png").read_bytes()).hexdigest()
    assert rec["steps"][1]["clicks"][1] == {"row": 3, "col": 3, "positive": False}
    assert rec["steps"][0]["engine"]["lambda"] == 5.0 and rec["steps"][0]["strokes"] == "im0.strokes-1.png"


def test_save_is_cheap_when_nothing_changed(tmp_path):
    images = _images(tmp_path, n=2)
    with DatasetFolder.open(images, tmp_path) as folder:
        state = _state(0)
        assert folder.save(0, state)
        assert folder.save(0, state) == []
        state.steps[1] = Step("clicks", state.steps[1].engine, clicks=state.clicks + (Click(5, 5),), target=2)
        assert [p.name for p in folder.save(0, state)] == ["im0.json"]  # only the record changed
    with DatasetFolder.open(images, tmp_path) as folder:  # reopened: what is on disk is what was saved
        assert folder.save(0, state) == []
        wide = ImageState(state.mask.astype(np.int32), state.steps)  # napari's Labels data are often int32
        assert folder.save(0, wide) == [] and history.versions(tmp_path, "im0") == []
        assert (tmp_path / "records" / "im0.strokes-1.png").is_file()
        folder.save(0, ImageState(state.mask, state.steps[1:]))  # the strokes step removed: its file goes
        assert not (tmp_path / "records" / "im0.strokes-1.png").exists()
        with pytest.raises(ValueError, match=r"mask of im1.png has shape \(40, 47\) but the image is \(40, 48, 3\)"):
            folder.save(1, ImageState(np.zeros((40, 47), np.uint8)))
        assert folder.mask_path(1) is None


def test_a_state_without_mask_saves_the_prompts_and_keeps_the_mask(tmp_path):
    images = _images(tmp_path, n=1)
    with DatasetFolder.open(images, tmp_path) as folder:
        state = _state(0)
        folder.save(0, state)
        more = state.steps[0].strokes.copy()
        more[0, :5] = 2
        prompts = ImageState(None, [Step("scribbles", state.steps[0].engine, strokes=more), state.steps[1]])
        assert [p.name for p in folder.save(0, prompts)] == ["im0.strokes-1.png"]  # the record names it already
        np.testing.assert_array_equal(read_labels(tmp_path / "masks" / "im0.png"), state.mask)
        assert json.loads((tmp_path / "records" / "im0.json").read_text())["mask"] == "masks/im0.png"
        # the same mask afterwards is not written again (nor kept in history); a new one is
        assert folder.save(0, ImageState(state.mask, prompts.steps)) == []
        assert [p.name for p in folder.save(0, ImageState(state.mask * 2, prompts.steps))] == ["im0.png"]
        assert len(history.versions(tmp_path, "im0")) == 1


def test_pattern_and_bad_folders(tmp_path):
    images = _images(tmp_path, n=2)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(images / "x.JPG")
    (images / ".hidden.png").write_bytes(b"")
    (images / "notes.txt").write_text("hi")
    assert [p.name for p in list_images(images)] == ["im0.png", "im1.png", "x.JPG"]
    assert [p.name for p in list_images(images, "*.jpg")] == ["x.JPG"]
    with pytest.raises(ValueError, match="matches the pattern"):
        DatasetFolder.open(images, tmp_path / "out", pattern="*.bmp")
    with pytest.raises(ValueError, match="image folder"):
        DatasetFolder.open(tmp_path / "nope", tmp_path / "out")
    with pytest.raises(ValueError, match="existing-mask folder"):
        DatasetFolder.open(images, tmp_path / "out", existing=tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        DatasetFolder.open(images, tmp_path / "file")
    with DatasetFolder.open(images, tmp_path / "out") as folder:
        with pytest.raises(ValueError, match="status must be one of"):
            folder.set_status(0, "finished")
        with pytest.raises(ValueError, match="image index"):
            folder.status(7)
        with pytest.raises(TypeError, match="ImageState"):
            folder.save(0, np.zeros((40, 48)))
    with pytest.raises(ValueError, match="step kind"):
        Step("lasso")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / STATUS_FILE).write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a napari-deepseg dataset status file"):
        DatasetFolder.open(images, tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == [STATUS_FILE]  # no lock left behind


def test_unreadable_image_is_marked_and_passed_over(tmp_path):
    images = _images(tmp_path, n=3)
    (images / "im1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with DatasetFolder.open(images, tmp_path) as folder:
        with pytest.raises(UnreadableImage, match="cannot read image"):
            folder.read_image(1)
        assert folder.status(1) == "unreadable" and "im1.png" in folder.reason(1)
        assert "\n" not in folder.reason(1)
        assert folder.neighbour(0, 1) == 2 and folder.neighbour(2, -1) == 0 and folder.neighbour(2, 1) is None
        folder.set_status(0, "done")
        assert folder.first_not_done() == 2
        assert folder.read_image(2).shape == (40, 48, 3)
    with DatasetFolder.open(images, tmp_path) as folder:  # remembered
        assert folder.status(1) == "unreadable"
        Image.fromarray(np.zeros((40, 48), np.uint8)).save(images / "im1.png")  # fixed by the user
        folder.read_image(1)
        assert folder.status(1) == "not-started"


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "I;16"])
def test_recorded_shape_is_the_shape_read_image_gives(tmp_path, mode):
    from napari_deepseg.core.dataset.folder import image_header

    pic = Image.fromarray(disk_image((12, 16), seed=0)[0]).convert("RGB")
    pic = pic.convert("L").convert(mode) if mode in ("LA", "I;16") else pic.convert(mode)
    pic.save(tmp_path / "a.png")
    from napari_deepseg.core.io.files import read_image

    assert tuple(image_header(tmp_path / "a.png")["shape"]) == read_image(tmp_path / "a.png").shape


def test_same_stem_twice_is_skipped_with_the_reason(tmp_path):
    images = _images(tmp_path, n=1)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(images / "im0.jpg")
    with DatasetFolder.open(images, tmp_path) as folder:
        assert [it.name for it in folder.items] == ["im0.jpg", "im0.png"]
        assert folder.status(1) == "skipped" and "same file stem as im0.jpg" in folder.reason(1)


# ============================================================================ mask formats
def test_more_than_255_objects_give_a_16_bit_png(tmp_path):
    images = _images(tmp_path, n=1)
    mask = np.arange(40 * 48, dtype=np.int32).reshape(40, 48) % 300
    with DatasetFolder.open(images, tmp_path) as folder:
        folder.save(0, ImageState(mask=mask))
        path = folder.mask_path(0)
        assert path.suffix == ".png"
        with Image.open(path) as im:
            assert im.mode.startswith("I;16") or im.mode == "I"
        np.testing.assert_array_equal(folder.load(0).mask, mask)
        folder.save(0, ImageState(mask=(mask % 200).astype(np.uint8)))
        with Image.open(folder.mask_path(0)) as im:
            assert im.mode == "L"


def test_tiff_stack_round_trip(tmp_path):
    folder_in = tmp_path / "images"
    folder_in.mkdir()
    stack = np.stack([disk_image((24, 32), channels=1, seed=k)[0] for k in range(3)])
    tifffile.imwrite(folder_in / "stack.tif", stack)
    labels = np.zeros(stack.shape, np.uint16)
    labels[1, 5:15, 5:20] = 3
    labels[2, 0:4, 0:4] = 700
    strokes = np.zeros(stack.shape, np.uint8)
    strokes[1, 8, 8:12] = 1
    state = ImageState(mask=labels, steps=[Step("scribbles", scribble_engine(), strokes=strokes)])
    with DatasetFolder.open(folder_in, tmp_path) as folder:
        assert folder.read_image(0).shape == (3, 24, 32)
        folder.save(0, state)
        assert folder.mask_path(0).name == "stack.tif"
        assert (tmp_path / "records" / "stack.strokes-1.tif").is_file()
    with DatasetFolder.open(folder_in, tmp_path) as folder:
        got = folder.load(0)
        np.testing.assert_array_equal(got.mask, labels)
        np.testing.assert_array_equal(got.strokes, strokes)
        rec = json.loads(folder.record_path(0).read_text())
        assert rec["image"]["shape"] == [3, 24, 32]


def test_tiff_image_gives_a_tiff_mask(tmp_path):
    folder_in = tmp_path / "images"
    folder_in.mkdir()
    tifffile.imwrite(folder_in / "a.tif", disk_image((24, 32), seed=1)[0])
    with DatasetFolder.open(folder_in, tmp_path) as folder:
        folder.save(0, ImageState(mask=np.ones((24, 32), np.uint8)))
        assert folder.mask_path(0).name == "a.tif"


# ============================================================================ nothing lost
def test_replaced_mask_is_kept_in_history_with_a_bounded_count(tmp_path):
    images = _images(tmp_path, n=1)
    with DatasetFolder.open(images, tmp_path) as folder:
        for k in range(history.KEEP + 5):
            folder.save(0, ImageState(mask=np.full((40, 48), k, np.uint8)))
        kept = history.versions(tmp_path, "im0")
        assert len(kept) == history.KEEP
        assert int(read_labels(kept[0][1]).max()) == 0  # the very first version stays
        assert int(read_labels(kept[-1][1]).max()) == history.KEEP + 3  # the one before the current mask
        assert int(folder.load(0).mask.max()) == history.KEEP + 4


def test_an_existing_mask_in_the_output_is_kept_before_it_is_overwritten(tmp_path):
    images = _images(tmp_path, n=1)
    (tmp_path / "masks").mkdir()
    old = np.zeros((40, 48), np.uint8)
    old[10:20, 10:20] = 1
    Image.fromarray(old).save(tmp_path / "masks" / "im0.png")
    with DatasetFolder.open(images, tmp_path, existing=tmp_path / "masks") as folder:
        start = folder.load(0)
        assert start.start == "existing"
        np.testing.assert_array_equal(start.mask, old)
        folder.save(0, ImageState(mask=np.ones((40, 48), np.uint8), start="existing"))
    (_, first), = history.versions(tmp_path, "im0")
    np.testing.assert_array_equal(read_labels(first), old)


def test_existing_masks_are_the_starting_result(tmp_path):
    images = _images(tmp_path, n=3)
    existing = tmp_path / "predictions"
    existing.mkdir()
    pred = np.zeros((40, 48), np.uint8)
    pred[5:30, 5:30] = 1
    Image.fromarray(pred).save(existing / "im1.png")
    with DatasetFolder.open(images, tmp_path / "out", existing=existing) as folder:
        assert folder.items[1].existing == existing / "im1.png" and folder.items[0].existing is None
        state = folder.load(1)
        np.testing.assert_array_equal(state.mask, pred)
        assert state.start == "existing" and folder.load(0).mask is None
        folder.save(1, state)  # saving unchanged still writes the starting mask: the image's output
        np.testing.assert_array_equal(read_labels(folder.mask_path(1)), pred)
        rec = json.loads(folder.record_path(1).read_text())
        assert rec["start"]["file"] == str(existing / "im1.png")
    np.testing.assert_array_equal(read_labels(existing / "im1.png"), pred)  # never written to


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from napari_deepseg.core.dataset import DatasetFolder, ImageState, Step
    from napari_deepseg.core.dataset.record import scribble_engine
    folder = DatasetFolder.open(sys.argv[2], sys.argv[3])
    rng = np.random.default_rng(0)
    k = 0
    while True:
        k += 1
        i = k % len(folder)
        mask = rng.integers(0, 3, (400, 480)).astype(np.uint8)
        strokes = (mask == 1).astype(np.uint8)
        folder.save(i, ImageState(mask=mask, steps=[Step("scribbles", scribble_engine(lam=k), strokes=strokes)]))
        folder.set_status(i, "done" if k % 2 else "in-progress")
        if k == 3:
            print("saving", flush=True)
""")


def test_killed_writer_leaves_every_file_readable(tmp_path):
    images = _images(tmp_path, n=3, shape=(400, 480))
    for attempt in range(3):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, SRC, str(images), str(tmp_path)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "saving", child.stderr.read()
        time.sleep(0.2 + 0.3 * attempt)
        child.send_signal(signal.SIGKILL)
        child.wait()
        # the lock of the killed process is stale: the next session takes it over and cleans up
        with DatasetFolder.open(images, tmp_path) as folder:
            assert not folder.read_only
            for i in range(len(folder)):
                state = folder.load(i)
                assert state.mask.shape == (400, 480) and state.strokes.shape == (400, 480)
                assert folder.status(i) in ("done", "in-progress")
            for sub in ("masks", "records", ".", *(p.relative_to(tmp_path) for p in tmp_path.glob(".history/*"))):
                assert not [p for p in (tmp_path / sub).iterdir() if ".tmp" in p.name]
            for _, p in history.versions(tmp_path, "im0"):
                assert read_labels(p).shape == (400, 480)


_HALF_WAY = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from napari_deepseg.core.dataset import DatasetFolder, ImageState
    from napari_deepseg.core.io import atomic, files

    folder = DatasetFolder.open(sys.argv[2], sys.argv[3])
    folder.save(0, ImageState(mask=np.ones((40, 48), np.uint8)))
    real_write, real_replace = files.write_labels, os.replace

    def half_write(path, labels):  # the PNG's first half on disk, then the process hangs until killed
        real_write(path, labels)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        print("half", flush=True)
        time.sleep(60)

    def slow_replace(src, dst):  # the whole new file on disk, not renamed yet
        if os.path.basename(os.path.dirname(dst)) == "masks":  # the mask itself (its old version is kept by now)
            print("renaming", flush=True)
            time.sleep(60)
        real_replace(src, dst)

    if sys.argv[4] == "half":
        files.write_labels = half_write
    else:
        atomic.os.replace = slow_replace
    folder.save(0, ImageState(mask=np.full((40, 48), 2, np.uint8)))
""")


@pytest.mark.parametrize("when", ["half", "renaming"])
def test_write_killed_half_way_leaves_the_old_mask(tmp_path, when):
    images = _images(tmp_path, n=1)
    child = subprocess.Popen([sys.executable, "-c", _HALF_WAY, SRC, str(images), str(tmp_path), when],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == when, child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = [p for p in (tmp_path / "masks").iterdir() if p.name != "im0.png"]
    assert len(left) == 1 and ".tmp" in left[0].name  # killed in the middle of writing the new mask
    np.testing.assert_array_equal(read_labels(tmp_path / "masks" / "im0.png"), np.ones((40, 48)))
    with DatasetFolder.open(images, tmp_path) as folder:
        assert not left[0].exists()
        np.testing.assert_array_equal(folder.load(0).mask, np.ones((40, 48)))
        assert folder.status(0) == "in-progress"


def test_left_over_temporary_file_is_ignored_and_removed(tmp_path):
    images = _images(tmp_path, n=1)
    with DatasetFolder.open(images, tmp_path) as folder:
        folder.save(0, ImageState(mask=np.ones((40, 48), np.uint8)))
    tmp = temporary_name(tmp_path / "masks" / "im0.png")
    tmp.write_bytes(b"\x89PNG half written")
    (tmp_path / ".history" / "im0").mkdir(parents=True)
    kept_tmp = temporary_name(tmp_path / ".history" / "im0" / "0001.im0.png")
    kept_tmp.write_bytes(b"\x89PNG half copied")
    assert history.versions(tmp_path, "im0") == []  # never taken for a version
    from napari_deepseg.core.models.training.data import find_samples

    assert [s.mask.name for s in find_samples(tmp_path)] == ["im0.png"]  # the training reader ignores it
    with DatasetFolder.open(images, tmp_path) as folder:
        assert not tmp.exists() and not kept_tmp.exists() and int(folder.load(0).mask.sum()) == 40 * 48


def test_second_session_is_read_only(tmp_path):
    images = _images(tmp_path, n=2)
    first = DatasetFolder.open(images, tmp_path)
    second = DatasetFolder.open(images, tmp_path)
    assert not first.read_only and second.read_only
    assert "open in another session" in second.message and "read-only" in second.message
    assert "\n" not in second.message
    with pytest.raises(ReadOnlyError, match="read-only"):
        second.save(0, ImageState(mask=np.ones((40, 48), np.uint8)))
    with pytest.raises(ReadOnlyError):
        second.set_status(0, "done")
    first.save(0, ImageState(mask=np.ones((40, 48), np.uint8)))
    assert second.load(0).mask.sum() == 40 * 48  # it still reads
    second.close()
    assert (tmp_path / LOCK_NAME).is_file()  # closing the read-only session leaves the lock alone
    first.close()
    assert not (tmp_path / LOCK_NAME).exists()
    with DatasetFolder.open(images, tmp_path) as third:
        assert not third.read_only


def test_lock_of_another_live_process_and_of_a_dead_one(tmp_path):
    images = _images(tmp_path, n=1)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        sys.path.insert(0, sys.argv[1])
        from napari_deepseg.core.dataset import DatasetFolder
        f = DatasetFolder.open(sys.argv[2], sys.argv[3])
        print("open", f.read_only, flush=True)
        time.sleep(60)
    """), SRC, str(images), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().split() == ["open", "False"]
        with DatasetFolder.open(images, tmp_path) as folder:
            assert folder.read_only and f"pid {holder.pid}" in folder.message
    finally:
        holder.kill()
        holder.wait()
    with DatasetFolder.open(images, tmp_path) as folder:  # its lock is stale now
        assert not folder.read_only
        info = json.loads((tmp_path / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid()


# ============================================================================ training layout
def test_finished_folder_is_a_training_dataset_as_it_is(tmp_path):
    from napari_deepseg.core.models.training.data import find_samples, read_sample

    images = _images(tmp_path, n=3)
    with DatasetFolder.open(images, tmp_path) as folder:
        for k in range(3):
            folder.save(k, _state(k))
            folder.set_status(k, "done")
    samples = find_samples(tmp_path)
    assert [s.stem for s in samples] == ["im0", "im1", "im2"] and samples[0].layout == "masks"
    image, target = read_sample(samples[2])
    assert image.shape == (40, 48, 3) and set(np.unique(target)) == {0, 1}


# ============================================================================ replay
def _annotate(folder, existing_mask):
    """Three images annotated as the widgets would: the engines called directly, the results saved."""
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.prompts.base import get_click_method
    from napari_deepseg.core.prompts.objects import commit_object, refine_scribbles

    saved = {}
    # image 0: strokes, the scribble cut's result is the mask
    image = folder.read_image(0)
    _, truth = disk_image((40, 48), seed=0)
    strokes = disk_scribbles(truth, seed=0).astype(np.uint8)
    session = SegmentationSession("classic")
    session.set_image(image)
    mask = session.segment(strokes, lam=8.0)
    folder.save(0, ImageState(mask, [Step("scribbles", scribble_engine(session, lam=8.0), strokes=strokes)]))
    saved[0] = mask
    # image 1: two clicks one after the other, then a box committed as object 2
    image = folder.read_image(1)
    method = get_click_method("graphcut", features="classic")
    method.set_image(image)
    clicks = (Click(20, 24, True), Click(18, 30, True))
    method.predict(clicks[:1])
    labels = method.predict(clicks).astype(np.uint8)
    box = Box(2, 2, 14, 16)
    boxed = get_click_method("graphcut", features="classic")
    boxed.set_image(image)
    labels = commit_object(labels, boxed.predict_box(box, []), 2)
    steps = [Step("clicks", click_engine("graphcut", features="classic"), clicks=clicks),
             Step("box", click_engine("graphcut", features="classic"), box=box, target=2)]
    folder.save(1, ImageState(labels, steps))
    saved[1] = labels
    # image 2: the existing mask refined with strokes near its edge
    image = folder.read_image(2)
    strokes = np.zeros((40, 48), np.uint8)
    strokes[20, 30:34] = 1
    old = existing_mask == 1
    seeds, region = refine_scribbles(strokes, old, 6.0, others=(existing_mask != 0) & ~old)
    session = SegmentationSession("classic")
    session.set_image(image)
    labels = commit_object(existing_mask, session.segment(seeds) == 1, 1, region)
    folder.save(2, ImageState(labels, [Step("scribbles", scribble_engine(session), strokes=strokes, target=1,
                                            refine=6.0)], start="existing"))
    saved[2] = labels
    return saved


def test_replay_reproduces_the_saved_masks_bit_for_bit(tmp_path):
    from napari_deepseg.core.dataset.replay import replay_folder, replay_state

    images = _images(tmp_path, n=4)
    existing = tmp_path / "existing"
    existing.mkdir()
    start = np.zeros((40, 48), np.uint8)
    start[10:28, 12:30] = 1
    start[0:5, 0:5] = 3
    Image.fromarray(start).save(existing / "im2.png")
    with DatasetFolder.open(images, tmp_path / "out", existing=existing) as folder:
        saved = _annotate(folder, start)
        assert set(np.unique(saved[1])) == {0, 1, 2} and 0 < (saved[0] == 1).mean() < 0.5
        assert not np.array_equal(saved[2], start)  # the strokes changed the object ...
        assert np.array_equal(saved[2] == 3, start == 3)  # ... and no other one
        folder.save(3, ImageState(np.ones((40, 48), np.uint8), edited=True))
        for i in range(3):
            got = replay_state(folder.read_image(i), folder.load(i), start=start if i == 2 else None)
            np.testing.assert_array_equal(got, saved[i])
        outcomes = replay_folder(folder)
        assert [(o.name, o.outcome) for o in outcomes] == [("im0.png", "same"), ("im1.png", "same"),
                                                          ("im2.png", "same"), ("im3.png", "kept")]
        assert outcomes[3].reason == "edited by hand"
        # a mask changed on disk (an older engine, say) is replaced by the replay, the old one kept
        state = folder.load(1)
        folder.save(1, ImageState(np.zeros((40, 48), np.uint8), state.steps))
        assert [o.outcome for o in replay_folder(folder, indices=[1])] == ["changed"]
        np.testing.assert_array_equal(folder.load(1).mask, saved[1])
        assert int(read_labels(history.versions(tmp_path / "out", "im1")[-1][1]).max()) == 0


def test_replay_on_the_originals_of_a_shrunk_copy(tmp_path):
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.dataset.replay import replay_folder

    full, small = tmp_path / "full", tmp_path / "small"
    full.mkdir()
    small.mkdir()
    image, truth = disk_image((80, 96), seed=3)
    Image.fromarray(image).save(full / "a.png")
    Image.fromarray(image).resize((48, 40), Image.BILINEAR).save(small / "a.png")
    strokes = disk_scribbles(np.asarray(Image.fromarray(truth.astype(np.uint8)).resize((48, 40), Image.NEAREST)),
                             width=2, margin=2, border=2).astype(np.uint8)
    with DatasetFolder.open(small, tmp_path / "out") as folder:
        session = SegmentationSession("classic")
        session.set_image(folder.read_image(0))
        folder.save(0, ImageState(session.segment(strokes), [Step("scribbles", scribble_engine(session),
                                                                  strokes=strokes)]))
    with DatasetFolder.reopen(tmp_path / "out", images=full) as folder:
        out = replay_folder(folder)
        assert [(o.outcome, o.reason) for o in out] == [("changed", "rescaled from 48x40 to 96x80")]
        state = folder.load(0)
        assert state.mask.shape == (80, 96) and state.strokes.shape == (80, 96)
        iou = ((state.mask == 1) & truth).sum() / ((state.mask == 1) | truth).sum()
        assert iou > 0.9
        assert [o.outcome for o in replay_folder(folder)] == ["same"]  # the record matches its new image now
    assert json.loads((tmp_path / "out" / STATUS_FILE).read_text())["images"] == str(full)


def test_replay_failure_is_one_line_per_image(tmp_path):
    from napari_deepseg.core.dataset.replay import replay_folder, replay_state

    images = _images(tmp_path, n=2)
    with DatasetFolder.open(images, tmp_path) as folder:
        strokes = np.zeros((10, 10), np.uint8)
        folder.save(0, ImageState(np.zeros((40, 48), np.uint8), [Step("scribbles", {}, strokes=strokes)]))
        folder.save(1, ImageState(np.zeros((40, 48), np.uint8),
                                  [Step("clicks", click_engine("no-such-method"), clicks=(Click(1, 1),))]))
        out = replay_folder(folder)
        assert [o.outcome for o in out] == ["failed", "failed"]
        assert "strokes are (10, 10)" in out[0].reason and "unknown click method" in out[1].reason
        with pytest.raises(ValueError, match="no steps"):
            replay_state(np.zeros((4, 4)), ImageState())


# ============================================================================ prefetch
class _Folder:
    def __init__(self, n, unreadable=()):
        self.n, self.unreadable = n, set(unreadable)

    def __len__(self):
        return self.n

    def neighbour(self, i, step):
        j = i + step
        while 0 <= j < self.n and j in self.unreadable:
            j += step
        return j if 0 <= j < self.n else None


def test_prefetcher_keeps_the_current_image_and_its_two_neighbours():
    from napari_deepseg.core.dataset.prefetch import Prefetcher

    calls = []
    pre = Prefetcher(_Folder(6, unreadable={3}), prepare=lambda i: calls.append(i) or f"p{i}")
    assert pre.move(0) == [0, 1]
    pre.prepare_pending()
    assert pre.move(1) == [2] and pre.prepare_pending() == [2]
    assert pre.move(2) == [4] and sorted(pre.prepared) == [1, 2]  # 3 is unreadable: 4 is next
    assert not pre.put(0, "late p0")  # the user moved on: a late result is dropped
    pre.prepare_pending()
    assert sorted(pre.prepared) == [1, 2, 4] and pre.get(4) == "p4"
    assert pre.move(5) == [5] and sorted(pre.prepared) == [4]
    assert calls == [0, 1, 2, 4]


def test_prefetcher_passes_over_an_image_that_cannot_be_prepared(tmp_path):
    from napari_deepseg.core.dataset.prefetch import Prefetcher, make_preparer

    images = _images(tmp_path, n=3)
    (images / "im1.png").write_bytes(b"not an image")
    with DatasetFolder.open(images, tmp_path) as folder:
        errors = []
        pre = Prefetcher(folder, make_preparer(folder, click_method="graphcut", click_params={"features": "classic"}))
        pre.move(0)
        assert pre.prepare_pending(lambda i, exc: errors.append(i)) == [0]
        assert errors == [1] and folder.status(1) == "unreadable"
        assert pre.pending() == [2] and pre.prepare_pending() == [2]
        prepared = pre.get(0)
        assert prepared.image.shape == (40, 48, 3) and prepared.session.is_image_set
        assert prepared.clicks.session is prepared.session  # features computed once for both tools
        # the prepared session answers as a fresh one does
        _, truth = disk_image((40, 48), seed=0)
        strokes = disk_scribbles(truth, seed=0)
        from napari_deepseg.core import SegmentationSession

        fresh = SegmentationSession("classic")
        fresh.set_image(folder.read_image(0))
        np.testing.assert_array_equal(prepared.session.segment(strokes), fresh.segment(strokes))
