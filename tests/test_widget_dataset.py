"""The *Dataset* dock in a real napari viewer (pytest-qt, Xvfb): a folder in, masks out, resumed where it stopped."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage

from _synthetic import disk_image, disk_scribbles

try:
    import torchvision.models  # noqa: F401  (torch's triton before Mesa's LLVM: see _qt/_torch_guard.py)
except ImportError:  # pragma: no cover
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Image, Labels  # noqa: E402

from napari_deepseg._qt import _layers, dataset_widget as dw  # noqa: E402
from napari_deepseg._qt.dataset_widget import DatasetWidget  # noqa: E402
from napari_deepseg._qt.scribble_widget import ScribbleSegmentationWidget  # noqa: E402
from napari_deepseg.core.dataset.folder import DatasetFolder  # noqa: E402
from napari_deepseg.core.io.files import read_labels  # noqa: E402

WAIT_MS = 60_000
SHAPE = (48, 64)


@pytest.fixture
def folders(tmp_path):
    """Five small disk photos (one unreadable in the middle) and an output folder."""
    images = tmp_path / "images"
    images.mkdir()
    for k in range(5):
        if k == 2:
            (images / "im2.png").write_bytes(b"not a png at all")
            continue
        image, _ = disk_image(SHAPE, channels=3, seed=k)
        PILImage.fromarray(image).save(images / f"im{k}.png")
    return images, tmp_path / "out"


@pytest.fixture
def errors(monkeypatch):
    seen = []
    monkeypatch.setattr("napari_deepseg._qt._common.show_error", seen.append)
    return seen


def make_dock(viewer, qtbot):
    scribble = ScribbleSegmentationWidget(viewer)
    scribble.preset.value = "seed"
    viewer.window.add_dock_widget(scribble, name="Scribble segmentation")
    dock = DatasetWidget(viewer, scribble_widget=scribble)
    viewer.window.add_dock_widget(dock, name="Dataset")
    return dock, scribble


def settle(dock, scribble, qtbot):
    qtbot.waitUntil(lambda: not scribble.busy and not scribble.preparing, timeout=WAIT_MS)
    qtbot.wait(50)


def paint(dock, scribble):
    """Paint the disk's strokes on the image's scribbles layer and select both in the Scribble widget."""
    layer = dock._layer_of(_layers.ROLE_SCRIBBLES)
    _, truth = disk_image(SHAPE, channels=3, seed=0)
    layer.data = disk_scribbles(truth)
    scribble.image_combo.value = dock.image_layer
    scribble.scribbles_combo.value = layer
    return layer


def paint_and_segment(dock, scribble, qtbot):
    """Paint the disk's strokes on the image's scribbles layer and cut."""
    layer = paint(dock, scribble)
    assert scribble.segment()
    qtbot.waitUntil(lambda: not scribble.busy and dock._layer_of(_layers.ROLE_SEGMENTATION) is not None,
                    timeout=WAIT_MS)
    return layer.data.copy()


def test_annotate_three_close_reopen_resumes_with_prompts(make_napari_viewer, qtbot, folders, errors):
    images, out = folders
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    assert dock.index == 0 and dock.image_layer.name == "im0"
    strokes = {}
    for expected in (0, 1, 3):  # im2 is unreadable: marked and passed over
        assert dock.index == expected
        strokes[expected] = paint_and_segment(dock, scribble, qtbot)
        result = dock._layer_of(_layers.ROLE_SEGMENTATION).data.copy()
        assert dock.mark("done")
        qtbot.waitUntil(lambda: not dock._saver.running, timeout=WAIT_MS)
        mask = read_labels(out / "masks" / f"im{expected}.png")
        np.testing.assert_array_equal(mask, result)  # the mask on disk is the widget's result
        settle(dock, scribble, qtbot)
    assert dock.folder.status(2) == "unreadable" and dock.folder.reason(2)
    assert dock.index == 4
    # nothing of an earlier image shows on this one
    names = [layer.name for layer in viewer.layers]
    assert not any(name.startswith(("im0", "im1", "im3")) for name in names), names
    dock.close_folder()
    viewer.close()

    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    assert dock.index == 4  # resumes at the first image not done
    assert dock.count.text() == "3 of 5 done"
    assert dock.previous()  # im3: its mask and strokes come back, editable
    assert dock.image_layer.name == "im3"
    restored = dock._layer_of(_layers.ROLE_SCRIBBLES)
    np.testing.assert_array_equal(restored.data, strokes[3])
    assert restored.editable and restored.mode == "paint"
    result = dock._layer_of(_layers.ROLE_SEGMENTATION)
    np.testing.assert_array_equal(result.data, read_labels(out / "masks" / "im3.png"))
    record = json.loads((out / "records" / "im3.json").read_text())
    assert record["steps"][0]["kind"] == "scribbles"
    assert not errors
    dock.close_folder()


def test_a_second_session_is_read_only(make_napari_viewer, qtbot, folders, errors):
    images, out = folders
    holder = DatasetFolder.open(images, out)
    try:
        viewer = make_napari_viewer()
        dock, scribble = make_dock(viewer, qtbot)
        assert dock.open_folder(images, out)
        assert dock.folder.read_only
        assert len(errors) == 1 and "read-only" in errors[0] and "\n" not in errors[0]
        assert not dock.done_button.enabled and dock.next_button.enabled
        paint_and_segment(dock, scribble, qtbot)
        assert dock.save(wait=True)  # saving is a no-op, never an error
        assert not (out / "masks").exists() or not any((out / "masks").iterdir())
        dock.close_folder()
    finally:
        holder.close()


def test_existing_masks_are_the_starting_result_and_only_strokes_change_them(make_napari_viewer, qtbot, folders,
                                                                              tmp_path):
    images, out = folders
    existing = tmp_path / "existing"
    existing.mkdir()
    _, truth = disk_image(SHAPE, channels=3, seed=0)
    start = truth.astype(np.uint8)
    start[:, 40:] = 0  # a prediction that missed the disk's right part
    PILImage.fromarray(start).save(existing / "im0.png")
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out, existing=existing)
    objects = dock._layer_of(_layers.ROLE_OBJECTS)
    np.testing.assert_array_equal(objects.data, start)
    assert scribble.refine_layer.value is objects and scribble.refine_label.value == 1
    dock.save(wait=True)
    np.testing.assert_array_equal(read_labels(out / "masks" / "im0.png"), start)
    # refining is on: a stroke on the missed part adds it, and nothing far from the strokes changes
    strokes = np.zeros(SHAPE, np.uint8)
    strokes[22:27, 41:43] = 1
    strokes[:, 62:] = 2
    dock._layer_of(_layers.ROLE_SCRIBBLES).data = strokes.copy()  # the commit clears the layer's strokes
    assert scribble.segment()
    qtbot.waitUntil(lambda: not scribble.busy and not scribble.refitting, timeout=WAIT_MS)
    assert scribble.commit() == 1
    changed = objects.data != start
    near = ndimage.binary_dilation(strokes > 0, iterations=8)
    assert changed.any() and (objects.data[22:27, 41:43] == 1).all()
    assert not (changed & ~near).any()
    dock.save(wait=True)
    np.testing.assert_array_equal(read_labels(out / "masks" / "im0.png"), objects.data)
    # the refinement is a step on the existing mask: a replay re-creates it bit for bit
    from napari_deepseg.core.dataset.replay import replay_folder

    record = json.loads((out / "records" / "im0.json").read_text())
    assert record["edited"] is False and record["start"] is not None
    assert [(s["target"], s["refine"] is not None) for s in record["steps"]] == [(1, True)]
    assert [o.outcome for o in replay_folder(dock.folder, indices=[0], write=False)] == ["same"]
    dock.close_folder()


def test_moving_saves_and_the_neighbours_are_prepared(make_napari_viewer, qtbot, folders, monkeypatch):
    images, out = folders
    prepared = []
    real = dw._prepare

    def spy(paths, *args, **kwargs):
        prepared.append(sorted(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(dw, "_prepare", spy)
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    qtbot.waitUntil(lambda: 1 in dock._images, timeout=WAIT_MS)
    assert prepared[0] == [1]  # the first image has no previous one
    slot = scribble._slot(scribble.options())
    assert slot.session.cache_size >= dw.PREPARED_IMAGES
    paint_and_segment(dock, scribble, qtbot)
    assert dock.next()  # the move saves im0 (in progress, not done)
    assert (out / "masks" / "im0.png").is_file()
    assert dock.folder.status(0) == "in-progress"
    assert isinstance(viewer.layers["im1"], Image)
    assert not [layer for layer in viewer.layers if isinstance(layer, Labels) and layer.name.startswith("im0")]
    settle(dock, scribble, qtbot)
    dock.close_folder()


def test_the_strokes_are_on_disk_before_the_cut_starts(make_napari_viewer, qtbot, folders, monkeypatch):
    """A kill during a long first cut loses no strokes: they are saved before the cut's worker starts."""
    images, out = folders
    monkeypatch.setattr(dw, "AUTOSAVE_MS", 10 ** 7)  # no autosave: only the save before the request
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    settle(dock, scribble, qtbot)
    on_disk = []

    def body(*args, **kwargs):  # the cut's worker, in place of the real one: what is on disk when it starts
        on_disk.append(sorted(p.name for p in (out / "records").glob("im0*")))
        return real(*args, **kwargs)

    real = dw._tasks.create_worker
    monkeypatch.setattr(dw._tasks, "create_worker", body)
    layer = paint(dock, scribble)
    assert scribble.segment()
    assert on_disk and on_disk[0] == ["im0.json", "im0.strokes-1.png"]
    np.testing.assert_array_equal(read_labels(out / "records" / "im0.strokes-1.png"), layer.data)
    assert not (out / "masks" / "im0.png").exists()  # the mask waits for the autosave, the prompts did not
    qtbot.waitUntil(lambda: not scribble.busy, timeout=WAIT_MS)
    assert dock.save(wait=True)
    assert (out / "masks" / "im0.png").is_file()
    dock.close_folder()


def test_a_save_being_written_does_not_hold_the_segment_press(make_napari_viewer, qtbot, folders, monkeypatch):
    """An autosave writing a large mask when the user presses Segment: the press does not wait for it (about a
    second at 25 MP, on the GUI thread); the prompts are written right after it, in a worker."""
    images, out = folders
    monkeypatch.setattr(dw, "AUTOSAVE_MS", 10 ** 7)
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    settle(dock, scribble, qtbot)
    layer = paint(dock, scribble)
    held, pressed, waited = threading.Event(), threading.Event(), []

    def writing():  # a save holding the lock until the press returned (or 5 s: the press waited for it)
        with dock._saving:
            held.set()
            waited.append(not pressed.wait(5))

    saver = threading.Thread(target=writing)
    saver.start()
    assert held.wait(5)
    assert scribble.segment()
    pressed.set()
    saver.join()
    assert waited == [False]
    qtbot.waitUntil(lambda: (out / "records" / "im0.strokes-1.png").is_file(), timeout=WAIT_MS)
    np.testing.assert_array_equal(read_labels(out / "records" / "im0.strokes-1.png"), layer.data)
    qtbot.waitUntil(lambda: not scribble.busy, timeout=WAIT_MS)
    dock.close_folder()


def test_a_large_planes_strokes_are_written_in_a_worker_before_its_cut(make_napari_viewer, qtbot, folders,
                                                                       monkeypatch):
    """A plane cut in the child process leaves Python's lock free: its strokes are written by a worker (a 25 MP
    strokes PNG paused the press 0.4-0.5 s), and they are on disk while the cut has not ended."""
    from napari_deepseg.core.cut import service

    images, out = folders
    monkeypatch.setattr(service, "PROCESS_MIN_PIXELS", 1)  # every plane counts as large (cut in this process here)
    monkeypatch.setattr(service.SessionSlot, "in_child", staticmethod(lambda image, options: False))
    monkeypatch.setattr(dw, "AUTOSAVE_MS", 10 ** 7)  # no autosave: only the save before the request
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    settle(dock, scribble, qtbot)
    release, written_by = threading.Event(), []
    real_save = dock.folder.save

    def save(i, state):  # which thread writes the prompts; held until the press has returned
        written_by.append(threading.current_thread() is threading.main_thread())
        release.wait(10)
        return real_save(i, state)

    monkeypatch.setattr(dock.folder, "save", save)
    layer = paint(dock, scribble)
    assert scribble.segment()
    release.set()
    qtbot.waitUntil(lambda: (out / "records" / "im0.strokes-1.png").is_file(), timeout=WAIT_MS)
    assert written_by and written_by[0] is False
    np.testing.assert_array_equal(read_labels(out / "records" / "im0.strokes-1.png"), layer.data)
    qtbot.waitUntil(lambda: not scribble.busy and not scribble.refitting, timeout=WAIT_MS)
    dock.close_folder()


def _saved_with_prompts(images, out):
    """im0 saved with strokes, then clicks and a box (a record of two steps)."""
    from napari_deepseg.core.dataset.record import ImageState, Step, click_engine, scribble_engine
    from napari_deepseg.core.prompts.base import Click
    from napari_deepseg.core.prompts.box import Box

    _, truth = disk_image(SHAPE, channels=3, seed=0)
    strokes = disk_scribbles(truth)
    clicks = (Click(20, 30, True), Click(5, 5, False))
    box = Box(8, 12, 40, 52)
    state = ImageState(mask=truth.astype(np.uint8), steps=[
        Step("scribbles", engine=scribble_engine(backbone="classic"), strokes=strokes),
        Step("box", engine=click_engine("graphcut"), clicks=clicks, box=box)])
    with DatasetFolder.open(images, out) as folder:
        folder.save(0, state)
    return strokes, clicks, box


def test_clicks_and_box_come_back_as_the_point_widgets_layers(make_napari_viewer, qtbot, folders):
    from napari_deepseg._qt._layers import ROLE_BOX, ROLE_PROMPTS

    images, out = folders
    strokes, clicks, box = _saved_with_prompts(images, out)
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    assert dock.index == 0
    np.testing.assert_array_equal(dock._layer_of(_layers.ROLE_SCRIBBLES).data, strokes)
    points = dock._layer_of(ROLE_PROMPTS)
    assert points.data[:, -2:].tolist() == [[20, 30], [5, 5]]
    assert points.features["positive"].tolist() == [True, False]
    assert dock._layer_of(ROLE_BOX) is not None
    state = dock.current_state()  # read back from the layers as the dock saves it
    assert [s.kind for s in state.steps] == ["scribbles", "box"]
    assert state.steps[1].clicks == clicks and state.steps[1].box == box
    dock.close_folder()


def test_napari_opens_a_record_as_its_layers(make_napari_viewer, folders):
    images, out = folders
    strokes, clicks, box = _saved_with_prompts(images, out)
    viewer = make_napari_viewer()
    layers = viewer.open(str(out / "records" / "im0.json"), plugin="napari-deepseg")
    names = [layer.name for layer in layers]
    assert names == ["im0", "im0 mask", "im0 scribbles", "im0 prompts", "im0 box"]
    assert isinstance(viewer.layers["im0"], Image)
    np.testing.assert_array_equal(viewer.layers["im0 scribbles"].data, strokes)
    assert viewer.layers["im0 prompts"].features["positive"].tolist() == [True, False]
    from napari_deepseg._io import get_record_reader

    (out / "other.json").write_text('{"format": "something else"}')
    assert get_record_reader(str(out / "other.json")) is None


def test_a_broken_record_is_one_line_and_the_image_still_opens(make_napari_viewer, qtbot, folders, errors):
    images, out = folders
    _saved_with_prompts(images, out)
    (out / "records" / "im0.json").write_text("{ not json")
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    assert dock.image_layer.name == "im0" and dock.folder.status(0) != "unreadable"
    assert len(errors) == 1 and "im0.png" in errors[0] and "\n" not in errors[0]
    dock.close_folder()


def test_a_large_planes_cut_stops_the_neighbours_preparation_until_idle(make_napari_viewer, qtbot, folders,
                                                                        monkeypatch):
    """Large planes are prepared and cut by one child process: the preparation yields to the cut, then resumes."""
    import time

    from napari_deepseg.core.cut import service

    images, out = folders
    monkeypatch.setattr(service, "PROCESS_MIN_PIXELS", 1)  # every plane counts as large (cut in this process here)
    monkeypatch.setattr(service.SessionSlot, "in_child", staticmethod(lambda image, options: False))
    started, stopped = [], threading.Event()

    def slow(paths, slot, options, progress=None, cancel=None):  # a preparation that runs until cancelled
        started.append(sorted(paths))
        while not cancel.cancelled:
            time.sleep(0.01)
        stopped.set()
        return {}

    monkeypatch.setattr(dw, "_prepare", slow)
    monkeypatch.setattr(dw, "AUTOSAVE_MS", 10 ** 7)  # the tick is called below, not by the timer during the cut
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    qtbot.waitUntil(lambda: bool(started) and dock._preparer.running, timeout=WAIT_MS)
    paint_and_segment(dock, scribble, qtbot)
    assert stopped.is_set() and dock._prepare_pending  # the cut did not wait for the preparation
    qtbot.waitUntil(lambda: not scribble.busy and not scribble.refitting, timeout=WAIT_MS)
    dock._autosave()  # the next tick, the widget idle: the preparation starts again
    assert not dock._prepare_pending
    qtbot.waitUntil(lambda: len(started) == 2, timeout=WAIT_MS)
    assert started[1] == started[0]
    dock.close_folder()


def commit_with(dock, scribble, qtbot, strokes) -> int:
    """Paint ``strokes`` on the image's scribbles layer, cut (the whole cut, refit included) and commit."""
    layer = paint(dock, scribble)
    layer.data = strokes.copy()
    assert scribble.segment()
    qtbot.waitUntil(lambda: not scribble.busy and not scribble.refitting, timeout=WAIT_MS)
    return scribble.commit()


def two_objects_strokes():
    """Strokes of the disk (object 1), then of a patch of the background (object 2; the disk is not painted)."""
    _, truth = disk_image(SHAPE, channels=3, seed=0)
    second = np.zeros(SHAPE, np.uint8)
    second[3:9, 3:12] = 1
    second[16:, 44:] = 2
    return disk_scribbles(truth), second


def test_committed_objects_are_replayable_steps_and_a_reopen_appends(make_napari_viewer, qtbot, folders, errors):
    from napari_deepseg.core.dataset.replay import replay_folder

    images, out = folders
    first, second = two_objects_strokes()
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    assert commit_with(dock, scribble, qtbot, first) == 1
    assert commit_with(dock, scribble, qtbot, second) == 2
    objects = dock._layer_of(_layers.ROLE_OBJECTS)
    assert set(np.unique(objects.data)) == {0, 1, 2}
    pending = np.zeros(SHAPE, np.uint8)
    pending[20:23, 20:23] = 1  # strokes of a third object, not cut: saved as the prompts being edited
    dock._layer_of(_layers.ROLE_SCRIBBLES).data = pending.copy()
    assert dock.save(wait=True)
    record = json.loads((out / "records" / "im0.json").read_text())
    assert record["version"] == 2 and record["edited"] is False
    steps = record["steps"]
    assert [(s["kind"], s["target"], s["pending"]) for s in steps] == [("scribbles", 1, False),
                                                                       ("scribbles", 2, False),
                                                                       ("scribbles", 0, True)]
    assert len({s["strokes"] for s in steps}) == 3  # each step its own strokes file
    np.testing.assert_array_equal(read_labels(out / "records" / steps[0]["strokes"]), first)
    np.testing.assert_array_equal(read_labels(out / "masks" / "im0.png"), objects.data)
    outcome = replay_folder(dock.folder, indices=[0], write=False)
    assert [(o.outcome, o.reason) for o in outcome] == [("same", "")]  # re-created bit for bit
    saved = objects.data.copy()
    dock.close_folder()
    viewer.close()

    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    assert dock.index == 0
    np.testing.assert_array_equal(dock._layer_of(_layers.ROLE_OBJECTS).data, saved)
    np.testing.assert_array_equal(dock._layer_of(_layers.ROLE_SCRIBBLES).data, pending)  # the pending strokes
    third = np.zeros(SHAPE, np.uint8)
    third[40:46, 3:12] = 1
    third[:30, 30:] = 2
    assert commit_with(dock, scribble, qtbot, third) == 3
    assert dock.save(wait=True)
    record = json.loads((out / "records" / "im0.json").read_text())
    assert [(s["target"], s["pending"]) for s in record["steps"]] == [(1, False), (2, False), (3, False)]
    assert record["edited"] is False
    outcome = replay_folder(dock.folder, indices=[0], write=False)
    assert [o.outcome for o in outcome] == ["same"]
    assert not errors
    dock.close_folder()


def test_a_hand_edit_of_the_objects_keeps_the_mask_in_a_replay_and_undo_drops_a_commit(make_napari_viewer, qtbot, folders):
    from napari_deepseg.core.dataset.replay import replay_folder

    images, out = folders
    first, _ = two_objects_strokes()
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    assert commit_with(dock, scribble, qtbot, first) == 1
    assert dock.save(wait=True)
    assert json.loads((out / "records" / "im0.json").read_text())["edited"] is False
    objects = dock._layer_of(_layers.ROLE_OBJECTS)
    objects.paint((2, 2), 1)  # a stroke of napari's brush on the objects layer, as a hand edit
    assert dock.save(wait=True)
    record = json.loads((out / "records" / "im0.json").read_text())
    assert record["edited"] is True and [s["target"] for s in record["steps"]] == [1]
    painted = objects.data.copy()
    assert [o.outcome for o in replay_folder(dock.folder, indices=[0], write=True)] == ["kept"]
    np.testing.assert_array_equal(read_labels(out / "masks" / "im0.png"), painted)
    objects.undo()  # the hand edit undone: the step makes the mask again
    assert dock.save(wait=True)
    assert json.loads((out / "records" / "im0.json").read_text())["edited"] is False
    objects.undo()  # the commit undone: its step goes too
    assert not objects.data.any()
    assert dock.save(wait=True)
    record = json.loads((out / "records" / "im0.json").read_text())
    assert record["edited"] is False and record["steps"] == []
    objects.redo()  # back, but no step makes it any more
    assert dock.save(wait=True)
    assert json.loads((out / "records" / "im0.json").read_text())["edited"] is True
    dock.close_folder()


def test_a_point_prompts_commit_is_a_clicks_step(make_napari_viewer, qtbot, folders, errors):
    from napari_deepseg.core.dataset.replay import replay_folder

    images, out = folders
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    _, points_widget = viewer.window.add_plugin_dock_widget("napari-deepseg", "Point prompts")
    points_widget.features.value = "classic"
    assert dock.open_folder(images, out)
    points_widget.reset_choices()
    points_widget.image_combo.value = dock.image_layer
    points = points_widget.new_points_layer()
    _, truth = disk_image(SHAPE, channels=3, seed=0)
    r, c = np.argwhere(truth).mean(0).round().astype(int)
    points.add([[r, c]])
    qtbot.wait(100)
    qtbot.waitUntil(lambda: not points_widget.busy and points_widget._mask is not None, timeout=WAIT_MS)
    assert points_widget.commit() == 1
    assert dock.save(wait=True)
    record = json.loads((out / "records" / "im0.json").read_text())
    assert record["edited"] is False
    assert [(s["kind"], s["target"], s["clicks"]) for s in record["steps"]] == [
        ("clicks", 1, [{"row": int(r), "col": int(c), "positive": True}])]
    assert record["steps"][0]["engine"] == {"method": "graphcut", "params": {"features": "classic"}}
    assert [o.outcome for o in replay_folder(dock.folder, indices=[0], write=False)] == ["same"]
    assert not errors
    dock.close_folder()


def test_strokes_painted_after_the_cut_leave_the_committed_mask_edited(make_napari_viewer, qtbot, folders):
    """The object committed is the last cut's, not what the strokes now give: no step re-creates the mask."""
    images, out = folders
    first, _ = two_objects_strokes()
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    assert dock.open_folder(images, out)
    layer = paint(dock, scribble)
    layer.data = first.copy()
    assert scribble.segment()
    qtbot.waitUntil(lambda: not scribble.busy and not scribble.refitting, timeout=WAIT_MS)
    more = first.copy()
    more[2:5, 2:5] = 1  # painted after the cut, then committed without a new cut
    layer.data = more
    assert scribble.commit() == 1
    assert dock.save(wait=True)
    record = json.loads((out / "records" / "im0.json").read_text())
    assert record["edited"] is True and [s["target"] for s in record["steps"]] == [1]
    dock.close_folder()


def test_a_correction_that_kept_far_pixels_is_saved_as_edited(make_napari_viewer, qtbot, folders, monkeypatch):
    """Replay cuts a step's strokes alone: a result that kept far pixels of an earlier one is kept as it is."""
    from napari_deepseg.core.cut import energy, pyramid
    from napari_deepseg.core.dataset.replay import replay_folder

    dab, far = (slice(22, 25), slice(40, 43)), (slice(20, 28), slice(23, 27))

    def wrap(original):  # the cut's colour model tipped by the dab: a far block of the disk turns background
        def cut(entry, seeds, classes, *args, **kwargs):
            index = original(entry, seeds, classes, *args, **kwargs)
            if np.all(seeds[dab] == 2):
                index = index.copy()
                index[far] = 1
            return index
        return cut

    monkeypatch.setattr(pyramid, "cut_multilevel", wrap(pyramid.cut_multilevel))
    monkeypatch.setattr(energy, "cut_default", wrap(energy.cut_default))
    images, out = folders
    viewer = make_napari_viewer()
    dock, scribble = make_dock(viewer, qtbot)
    scribble.preset.value = "default"
    assert dock.open_folder(images, out)
    strokes = paint(dock, scribble)
    strokes.data[far] = 0
    assert scribble.segment()
    settle(dock, scribble, qtbot)
    result = dock._layer_of(_layers.ROLE_SEGMENTATION)
    assert (result.data[far] == 1).all()
    assert dock.save(wait=True)
    assert json.loads((out / "records" / "im0.json").read_text())["edited"] is False
    more = np.array(strokes.data)
    more[dab] = 2  # a background dab on the disk's edge
    strokes.data = more
    assert scribble.segment()
    qtbot.waitUntil(lambda: not scribble.busy and not scribble.refitting, timeout=WAIT_MS)
    assert (result.data[far] == 1).all() and (result.data[dab] == 0).all()  # the far block stayed
    assert scribble.result_kept_far(dock.image_layer)
    assert dock.save(wait=True)
    assert json.loads((out / "records" / "im0.json").read_text())["edited"] is True
    outcome = replay_folder(dock.folder, indices=[0], write=False)
    assert [o.outcome for o in outcome] == ["kept"]
    assert dock.next()
    assert not scribble.result_kept_far(dock.image_layer)  # another image: its own result
    dock.close_folder()
