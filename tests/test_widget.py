"""Tests of the *Scribble segmentation* dock widget in a real napari viewer (pytest-qt, Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import disk_image, disk_scribbles

# Load torch's optional triton (it bundles LLVM) before any napari canvas loads Mesa's
# libLLVM: the other order segfaults under Xvfb (see napari_deepseg/_qt/_torch_guard.py).
try:
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover - torch is a dependency
    pass

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.layers import Labels  # noqa: E402

from napari_deepseg._qt import _progress_bar, scribble_widget as sw  # noqa: E402
from napari_deepseg._qt import _common, _prepare, _requests, _results  # noqa: E402
from napari_deepseg._qt.scribble_widget import ScribbleSegmentationWidget  # noqa: E402
from napari_deepseg.core import SegmentationSession  # noqa: E402
from napari_deepseg.core.cut import service  # noqa: E402

WAIT_MS = 60_000


def iou(a, b) -> float:
    """Intersection over union of two boolean masks."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def widget(viewer, qtbot):
    """The widget docked through the plugin manifest, on the fast ``seed`` preset."""
    _, w = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    w.preset.value = "seed"
    yield w
    w.cancel()
    qtbot.waitUntil(lambda: not w.busy and not w.preparing, timeout=WAIT_MS)


@pytest.fixture
def errors(monkeypatch):
    """Messages the widget sends to napari's ``show_error``."""
    seen = []
    monkeypatch.setattr(_common, "show_error", seen.append)
    return seen


def add_disk(viewer, channels=3, dtype=np.uint8, shape=(64, 80), name="disk"):
    """Add a disk image and matching scribbles; return (image layer, scribbles layer, truth)."""
    image, truth = disk_image(shape, channels=channels, dtype=dtype)
    rgb = channels in (3, 4)
    image_layer = viewer.add_image(image, name=name, rgb=rgb)
    scribbles = viewer.add_labels(disk_scribbles(truth), name=f"{name} scribbles")
    return image_layer, scribbles, truth


def select(widget, image_layer, scribbles_layer):
    widget.image_combo.value = image_layer
    widget.scribbles_combo.value = scribbles_layer


def run(widget, qtbot, background: bool = True) -> None:
    """Start a request and wait for its worker to finish (and for the full cut that follows a deferred or local one,
    unless ``background=False``)."""
    assert widget.segment()
    qtbot.waitUntil(lambda: not widget.busy and not (background and widget.refitting), timeout=WAIT_MS)


def snapshot(viewer) -> dict:
    """Copies of every layer's data, to prove a failing request changed nothing."""
    return {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}


# -- creation ---------------------------------------------------------------------------
def test_widget_from_manifest(widget, viewer):
    assert isinstance(widget, ScribbleSegmentationWidget)
    assert widget.backbone.value == "classic"
    assert set(widget.backbone.choices) >= {"classic", "rgb"}
    assert widget.preset.choices == ("default", "seed")
    assert widget.device.choices == ("auto", "cpu", "cuda", "mps")
    assert widget.lam_auto.value and widget.sigma_auto.value
    assert not widget.weights.enabled  # classic needs no weights
    widget.backbone.value = "resnet50"
    assert widget.weights.enabled and widget.device.enabled


def test_combos_follow_layers(widget, viewer):
    image_layer, scribbles, _ = add_disk(viewer)
    assert widget.image_combo.choices == (image_layer,)
    assert widget.scribbles_combo.choices == (scribbles,)
    viewer.layers.remove(scribbles)
    assert widget.scribbles_combo.choices == ()
    assert widget.scribbles_combo.value is None


def test_new_scribbles_layer(widget, viewer):
    image, _ = disk_image((40, 50), channels=3)
    viewer.add_image(image, name="photo", rgb=True, scale=(2, 2))
    layer = widget.new_scribbles_layer()
    assert isinstance(layer, Labels) and layer.name == "photo scribbles"
    assert layer.data.shape == (40, 50) and not layer.data.any()
    assert layer.mode == "paint" and layer.selected_label == 1
    assert tuple(layer.scale) == (2, 2)
    assert widget.scribbles_combo.value is layer
    assert viewer.layers.selection.active is layer


def test_new_scribbles_button(widget, viewer):
    viewer.add_image(np.zeros((5, 30, 40), np.float32), name="stack")
    widget.new_scribbles_button.clicked.emit(True)
    assert viewer.layers["stack scribbles"].data.shape == (5, 30, 40)


def test_new_scribbles_without_image(widget, viewer, errors):
    assert widget.new_scribbles_layer() is None
    assert len(errors) == 1 and "no image" in errors[0]
    assert len(viewer.layers) == 0


# -- segmenting -------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["default", "seed"])
def test_segment_disk(widget, viewer, qtbot, errors, preset):
    widget.preset.value = preset
    image_layer, scribbles, truth = add_disk(viewer)
    before = scribbles.data.copy()
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    assert errors == []
    result = viewer.layers["disk segmentation"]
    assert isinstance(result, Labels)
    assert result.data.shape == truth.shape
    assert iou(result.data == 1, truth) > 0.9
    np.testing.assert_array_equal(scribbles.data, before)
    # the result sits below the scribbles, and the user's active layer is kept
    assert viewer.layers.index(result) < viewer.layers.index(scribbles)


def test_segment_button(widget, viewer, qtbot, errors):
    from qtpy.QtCore import Qt

    image_layer, scribbles, truth = add_disk(viewer)
    select(widget, image_layer, scribbles)
    qtbot.mouseClick(widget.segment_button.native, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "disk segmentation" in viewer.layers and not widget.busy, timeout=WAIT_MS)
    assert iou(viewer.layers["disk segmentation"].data == 1, truth) > 0.9
    # the button is never "live": incomplete scribbles give a notification
    scribbles.data = np.where(scribbles.data == 1, 1, 0).astype(scribbles.data.dtype)
    qtbot.mouseClick(widget.segment_button.native, Qt.MouseButton.LeftButton)
    assert len(errors) == 1 and "only label 1" in errors[0]


class FakeProgress:
    """Records what the widget tells napari's progress bar."""

    made = []

    def __init__(self, total=0, desc=""):
        self.total, self.n, self.descriptions, self.closed = total, 0, [desc], False
        FakeProgress.made.append(self)

    def update(self, n=1):
        self.n += n

    def set_description(self, desc):
        self.descriptions.append(desc)

    def close(self):
        self.closed = True


def test_progress_reaches_the_main_thread(widget, viewer, qtbot, monkeypatch):
    FakeProgress.made = []
    monkeypatch.setattr(_progress_bar, "progress", FakeProgress)
    monkeypatch.setattr(_progress_bar, "PROGRESS_BAR_INTERVAL_S", 0.0)  # every report shown at once
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    (bar,) = FakeProgress.made
    assert bar.closed
    assert "graph cut" in bar.descriptions and bar.total >= 1 and bar.n == bar.total


def test_segment_press_makes_no_progress_bar(widget, viewer, qtbot, monkeypatch):
    """napari's bar runs processEvents on every change: the Segment press returns before it is made."""
    FakeProgress.made = []
    monkeypatch.setattr(_progress_bar, "progress", FakeProgress)
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    assert widget.segment()
    assert FakeProgress.made == [] and widget.busy
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert all(bar.closed for bar in FakeProgress.made)


def test_second_segment_is_undoable(widget, viewer, qtbot, errors):
    image_layer, scribbles, truth = add_disk(viewer)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    result = viewer.layers["disk segmentation"]
    first = result.data.copy()
    scribbles_before = scribbles.data.copy()
    # relabel part of the disk as background: the cut changes
    new_scribbles = scribbles.data.copy()
    new_scribbles[truth & (np.arange(truth.shape[1]) > 45)[None, :]] = 2
    scribbles.data = new_scribbles
    run(widget, qtbot)
    assert viewer.layers["disk segmentation"] is result
    assert len([lay for lay in viewer.layers if lay.name.startswith("disk segmentation")]) == 1
    assert not np.array_equal(result.data, first)
    result.undo()
    np.testing.assert_array_equal(result.data, first)
    result.redo()
    assert not np.array_equal(result.data, first)
    assert not np.array_equal(scribbles.data, scribbles_before)  # only the user changed it
    np.testing.assert_array_equal(scribbles.data, new_scribbles)
    assert errors == []


def test_identical_request_adds_no_history(widget, viewer, qtbot):
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    result = viewer.layers["disk segmentation"]
    run(widget, qtbot)
    assert len(result._undo_history) == 0


def test_sessions_are_cached(widget, viewer, qtbot):
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    widget.lam_auto.value = False
    widget.lam.value = 2.0
    run(widget, qtbot)
    assert list(widget._pool.slots) == [("classic", ())]
    widget.backbone.value = "rgb"
    run(widget, qtbot)
    assert set(widget._pool.slots) == {("classic", ()), ("rgb", ())}


@pytest.mark.parametrize(
    "channels, dtype",
    [(3, np.uint8), (4, np.uint8), (1, np.uint8), (1, np.uint16), (1, np.float32), (3, np.float32), (3, np.uint16)],
)
def test_image_kinds(widget, viewer, qtbot, errors, channels, dtype):
    image_layer, scribbles, truth = add_disk(viewer, channels=channels, dtype=dtype)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    assert errors == []
    assert iou(viewer.layers["disk segmentation"].data == 1, truth) > 0.9


@pytest.mark.parametrize("rgb", [False, True])
def test_stack_current_plane(widget, viewer, qtbot, errors, rgb):
    channels = 3 if rgb else 1
    image, truth = disk_image((48, 56), channels=channels)
    stack = np.stack([np.roll(image, 8 * k, axis=1) for k in range(4)])
    image_layer = viewer.add_image(stack, name="stack", rgb=rgb)
    scribbles = widget.new_scribbles_layer()
    assert scribbles.data.shape == (4, 48, 56)
    plane = 2
    scribbles.data[plane] = np.roll(disk_scribbles(truth), 8 * plane, axis=1)
    viewer.dims.set_current_step(0, plane)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    assert errors == []
    result = viewer.layers["stack segmentation"]
    assert result.data.shape == (4, 48, 56)
    assert iou(result.data[plane] == 1, np.roll(truth, 8 * plane, axis=1)) > 0.9
    others = [k for k in range(4) if k != plane]
    assert not result.data[others].any()
    # a second plane is written into the same layer, undoably
    scribbles.data[1] = np.roll(disk_scribbles(truth), 8, axis=1)
    viewer.dims.set_current_step(0, 1)
    run(widget, qtbot)
    assert iou(result.data[1] == 1, np.roll(truth, 8, axis=1)) > 0.9
    result.undo()
    assert not result.data[1].any() and result.data[plane].any()


# -- live mode --------------------------------------------------------------------------
@pytest.fixture
def starts(widget, monkeypatch):
    """Request numbers of the workers the widget starts."""
    seen = []
    original = _requests.ScribbleRequests.start

    def spy(self, job, slot, options):
        seen.append(job.rid)
        original(self, job, slot, options)

    monkeypatch.setattr(_requests.ScribbleRequests, "start", spy)
    return seen


def test_live_mode_runs_after_a_stroke(widget, viewer, qtbot, errors, starts):
    image_layer, scribbles, truth = add_disk(viewer)
    scribbles.data = np.where(scribbles.data == 1, 1, 0).astype(scribbles.data.dtype)
    select(widget, image_layer, scribbles)
    widget.live.value = True  # incomplete scribbles: a status line, no request, no error
    assert starts == [] and errors == []
    assert "background" in widget.status.value
    scribbles.paint((3, 3), 2)  # one finished stroke: napari emits events.paint
    qtbot.waitUntil(lambda: len(starts) == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "disk segmentation" in viewer.layers and not widget.busy, timeout=WAIT_MS)
    assert iou(viewer.layers["disk segmentation"].data == 1, truth) > 0.9
    with scribbles.block_history():  # a mouse stroke: many dabs, one paint event at the end
        for col in range(60, 77, 4):
            scribbles.paint((60, col), 2)
    qtbot.waitUntil(lambda: len(starts) == 2, timeout=WAIT_MS)
    qtbot.wait(200)
    assert len(starts) == 2
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert errors == []


def test_live_mode_off_does_nothing(widget, viewer, qtbot, starts):
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    scribbles.paint((3, 3), 2)
    qtbot.wait(200)
    assert starts == []
    widget.live.value = True  # complete scribbles: switching Live on runs once
    assert len(starts) == 1
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    widget.live.value = False
    scribbles.paint((4, 4), 2)
    qtbot.wait(200)
    assert len(starts) == 1


def test_live_follows_the_selected_scribbles_layer(widget, viewer, qtbot, starts):
    image_layer, scribbles, _ = add_disk(viewer)
    other = viewer.add_labels(scribbles.data.copy(), name="other")
    select(widget, image_layer, scribbles)
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    widget.scribbles_combo.value = other
    scribbles.paint((3, 3), 2)  # no longer watched
    qtbot.wait(200)
    assert len(starts) == 1
    other.paint((3, 3), 2)
    qtbot.waitUntil(lambda: len(starts) == 2, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)


# -- stale results ----------------------------------------------------------------------
def test_newest_request_wins(widget, viewer, qtbot, errors):
    image_layer, scribbles, truth = add_disk(viewer)
    select(widget, image_layer, scribbles)
    widget.preset.value = "default"  # slow enough to be superseded
    assert widget.segment()
    first = next(iter(widget.runner._tasks.values()))
    swapped = scribbles.data.copy()
    swapped[scribbles.data == 1], swapped[scribbles.data == 2] = 2, 1
    scribbles.data = swapped
    widget.preset.value = "seed"
    assert widget.segment()
    assert first.token.cancelled
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    result = viewer.layers["disk segmentation"]
    assert iou(result.data == 0, truth) > 0.9  # the swapped (newest) scribbles
    assert len(result._undo_history) == 0  # written once
    assert errors == []


def test_stale_result_is_ignored(widget, viewer, qtbot, errors, monkeypatch):
    image_layer, scribbles, truth = add_disk(viewer)
    select(widget, image_layer, scribbles)
    qtbot.waitUntil(lambda: not widget._preparer.timer.isActive() and not widget.preparing, timeout=WAIT_MS)
    release = __import__("threading").Event()
    original = service.run_request
    first_strokes = np.array(scribbles.data, copy=True)

    def first_is_slow(slot, image, scribbles_, options, progress=None, cancel=None, **kwargs):
        # the first request (known by its strokes: the workers may start in either order) ends after the
        # second one, wrongly (all zeros)
        if np.array_equal(scribbles_, first_strokes):
            release.wait(10)
            return np.zeros(image.shape[:2], np.uint8)
        return original(slot, image, scribbles_, options, progress=progress, cancel=cancel, **kwargs)

    monkeypatch.setattr(service, "run_request", first_is_slow)
    assert widget.segment()
    unpainted = np.argwhere(truth & (first_strokes == 0))
    scribbles.data[tuple(unpainted[len(unpainted) // 2])] = 1  # the second request's strokes differ by a dab
    assert widget.segment()  # a newer request; the first one ignores its cancel and returns later
    qtbot.waitUntil(lambda: "updated" in widget.status.value, timeout=WAIT_MS)
    result = viewer.layers["disk segmentation"]
    before = result.data.copy()
    release.set()
    qtbot.waitUntil(lambda: not widget.runner.running, timeout=WAIT_MS)
    np.testing.assert_array_equal(result.data, before)  # the stale zeros were dropped
    assert iou(result.data == 1, truth) > 0.9 and "updated" in widget.status.value and errors == []


# -- bad input --------------------------------------------------------------------------
def _assert_refused(widget, viewer, errors, before, needle):
    assert not widget.busy
    assert len(errors) == 1, errors
    assert needle in errors[0] and "\n" not in errors[0]
    after = snapshot(viewer)
    assert after.keys() == before.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_no_image(widget, viewer, errors):
    viewer.add_labels(np.zeros((10, 10), np.uint8), name="s")
    before = snapshot(viewer)
    assert not widget.segment()
    _assert_refused(widget, viewer, errors, before, "no image")


def test_no_scribbles_layer(widget, viewer, errors):
    image, _ = disk_image()
    viewer.add_image(image, rgb=True)
    before = snapshot(viewer)
    assert not widget.segment()
    _assert_refused(widget, viewer, errors, before, "no scribbles layer")


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda s: np.zeros_like(s), "empty"),
        (lambda s: np.where(s == 2, 0, s).astype(s.dtype), "only label 1"),
        (lambda s: np.zeros((10, 12), s.dtype), "shape"),
    ],
    ids=["empty", "one-label", "shape-mismatch"],
)
def test_bad_scribbles(widget, viewer, errors, edit, needle):
    image_layer, scribbles, _ = add_disk(viewer)
    scribbles.data = edit(scribbles.data)
    select(widget, image_layer, scribbles)
    before = snapshot(viewer)
    assert not widget.segment()
    _assert_refused(widget, viewer, errors, before, needle)


def test_nan_image_fails_in_worker(widget, viewer, qtbot, errors, monkeypatch):
    from napari.utils.notifications import notification_manager

    tracebacks = []
    monkeypatch.setattr(notification_manager, "receive_error", lambda *a, **k: tracebacks.append(a))
    image, truth = disk_image(channels=1, dtype=np.float32)
    image[3, 3] = np.nan
    image_layer = viewer.add_image(image, name="nan")
    scribbles = viewer.add_labels(disk_scribbles(truth), name="nan scribbles")
    select(widget, image_layer, scribbles)
    before = snapshot(viewer)
    assert widget.segment()  # the core finds the NaN in the worker
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    _assert_refused(widget, viewer, errors, before, "NaN")
    assert tracebacks == []  # one line, not napari's traceback notification


def test_unknown_backbone(widget, viewer, errors):
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    widget.backbone.choices = ("classic", "no-such-backbone")
    widget.backbone.value = "no-such-backbone"
    before = snapshot(viewer)
    assert not widget.segment()
    _assert_refused(widget, viewer, errors, before, "unknown backbone")


def test_missing_weights_file(widget, viewer, errors, tmp_path):
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    widget.backbone.value = "resnet50"
    widget.weights.value = tmp_path / "missing.pth"
    before = snapshot(viewer)
    assert not widget.segment()
    _assert_refused(widget, viewer, errors, before, "missing.pth")


def test_unreadable_weights_file_fails_in_worker(widget, viewer, qtbot, errors, tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    widget.backbone.value = "resnet50"
    widget.weights.value = bad
    widget.device.value = "cpu"
    before = snapshot(viewer)
    assert widget.segment()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    _assert_refused(widget, viewer, errors, before, "broken.pth")


def test_resnet50_with_random_weights(widget, viewer, qtbot, errors, tmp_path):
    """The resnet50 path end to end, with a randomly initialised state dict (no network)."""
    torch = pytest.importorskip("torch")
    from torchvision.models import resnet50

    path = tmp_path / "random.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    image_layer, scribbles, truth = add_disk(viewer)
    select(widget, image_layer, scribbles)
    widget.backbone.value = "resnet50"
    widget.weights.value = path
    widget.device.value = "cpu"
    run(widget, qtbot)
    assert errors == []
    result = viewer.layers["disk segmentation"]
    assert result.data.shape == truth.shape and set(np.unique(result.data)) <= {0, 1}
    assert ("resnet50", (("weights", str(path)), ("device", "cpu"))) in widget._pool.slots


def test_one_line():
    assert _common.one_line(ValueError("first\nsecond")) == "first"
    assert _common.one_line(ZeroDivisionError()) == "ZeroDivisionError"


def test_triton_guard(monkeypatch, tmp_path):
    import sys

    from napari_deepseg._qt import _torch_guard

    maps = tmp_path / "maps"
    monkeypatch.setattr(_torch_guard, "_MAPS", maps)
    monkeypatch.delitem(sys.modules, "triton", raising=False)
    assert not _torch_guard.system_llvm_loaded()  # no such file: not Linux
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/libc.so.6\n")
    assert not _torch_guard.guard_triton_import()
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libLLVM-15.so.1\n")
    assert _torch_guard.guard_triton_import()
    assert sys.modules["triton"] is None
    with pytest.raises(ImportError):
        import triton  # noqa: F401
    assert not _torch_guard.guard_triton_import()  # already decided


# -- preparing the image, cancel ----------------------------------------------------------
def test_choosing_an_image_prepares_it_in_the_background(widget, viewer, qtbot, starts, errors):
    widget.preset.value = "default"
    image_layer, scribbles, truth = add_disk(viewer, shape=(320, 400))  # multilevel size: a pyramid
    select(widget, image_layer, scribbles)
    qtbot.waitUntil(lambda: widget._preparer.prepared is not None and not widget.preparing, timeout=WAIT_MS)
    assert starts == []  # no segmentation was asked for
    slot = widget._pool.slots[("classic", ())]
    entry = slot.session._current
    assert entry is not None and entry.appearance is not None and entry.coarse is not None  # mixture, pyramid
    assert "ready" in widget.status.value
    assert "disk segmentation" not in viewer.layers
    assert not widget.prepare()  # the same plane and options: nothing to do
    run(widget, qtbot)  # the cut uses the prepared entry
    assert slot.session._current is entry
    assert iou(viewer.layers["disk segmentation"].data == 1, truth) > 0.9
    assert errors == []


def test_cancel_stops_a_run_and_leaves_every_layer(widget, viewer, qtbot, errors, monkeypatch):
    widget.preset.value = "default"
    image_layer, scribbles, _ = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    # the preparation starts 0.1 s after the choice: wait for it to start and end (a late one would
    # overwrite the status line after the Cancel)
    qtbot.waitUntil(lambda: not widget._preparer.timer.isActive() and not widget.preparing, timeout=WAIT_MS)
    before = snapshot(viewer)
    release = __import__("threading").Event()
    original = service.run_request

    def slow(slot, image, scribbles_, options, progress=None, cancel=None, **kwargs):
        release.wait(10)  # a long cut: Cancel arrives while it runs
        return original(slot, image, scribbles_, options, progress=progress, cancel=cancel, **kwargs)

    monkeypatch.setattr(service, "run_request", slow)
    assert widget.segment()
    assert not widget.segment_button.enabled and widget.cancel_button.enabled
    widget.cancel_button.clicked.emit()  # what a click on Cancel does
    release.set()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert "cancelled" in widget.status.value
    assert widget.segment_button.enabled and not widget.cancel_button.enabled
    after = snapshot(viewer)
    assert after.keys() == before.keys()  # no result layer
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    assert errors == []


def test_progress_names_the_levels_of_a_large_cut(widget, viewer, qtbot):
    widget.preset.value = "default"
    image_layer, scribbles, _ = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    qtbot.waitUntil(lambda: not widget.preparing, timeout=WAIT_MS)
    seen = []
    original = widget.runner._on_progress

    def record(rid, done, total, message):
        seen.append((done, total, message))
        original(rid, done, total, message)

    widget.runner._relay._callback = record
    run(widget, qtbot)
    levels = [m for _, _, m in seen if "level" in m]
    assert levels and "level 1 of" in levels[0] and "full resolution" in levels[-1]
    assert all(0 <= d <= t for d, t, _ in seen if t > 0)


# -- rough edges (issue 15) ---------------------------------------------------------------
def test_live_follows_undo_and_redo(widget, viewer, qtbot, starts, errors):
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    widget.live.value = True
    qtbot.waitUntil(lambda: len(starts) == 1 and not widget.busy, timeout=WAIT_MS)
    scribbles.paint((60, 70), 2)  # a stroke: one run
    qtbot.waitUntil(lambda: len(starts) == 2 and not widget.busy, timeout=WAIT_MS)
    scribbles.undo()  # napari emits no paint or data event for undo
    qtbot.waitUntil(lambda: len(starts) == 3 and not widget.busy, timeout=WAIT_MS)
    assert np.array_equal(widget._last_strokes[1], scribbles.data)
    scribbles.redo()
    qtbot.waitUntil(lambda: len(starts) == 4 and not widget.busy, timeout=WAIT_MS)
    scribbles.refresh()  # a redraw without new strokes: no run
    qtbot.wait(300)
    assert len(starts) == 4 and errors == []


def test_long_words_are_shortened_in_the_status_line(widget, viewer):
    path = "/home/someone/.cache/torch/hub/checkpoints/" + "x" * 80 + "/resnet50-0676ba61.pth"
    widget.status.value = f"weights file not found: {path}"
    shown = widget.status.native.text()
    assert path not in shown and "…" in shown and shown.startswith("weights file not found: ")
    assert max(len(w) for w in shown.split()) <= _common.STATUS_WORD_CHARS
    assert widget.status.value.endswith(path) and widget.status.tooltip.endswith(path)  # the whole text is kept
    assert widget.native.sizeHint().width() < 500


def test_ticking_lambda_auto_shows_the_presets_value(widget):
    widget.preset.value = "default"
    widget.lam_auto.value = False
    widget.lam.value = 10000.0
    widget.lam_auto.value = True
    assert widget.lam.value == sw.DEFAULT_LAMBDA["default"] and not widget.lam.enabled
    widget.preset.value = "seed"
    assert widget.lam.value == sw.DEFAULT_LAMBDA["seed"]


def test_new_scribbles_brush_is_scaled_to_the_image(widget, viewer):
    viewer.add_image(np.zeros((300, 451, 3), np.uint8), name="cat", rgb=True)
    widget.image_combo.value = viewer.layers["cat"]
    layer = widget.new_scribbles_layer()
    assert layer.brush_size == 10  # 1/30 of the smaller side (was 3)


# -- object by object (issue 12) -----------------------------------------------------------
def _two_disks(viewer):
    rng = np.random.default_rng(0)
    image = (rng.random((80, 140, 3)) * 60).astype(np.uint8)
    yy, xx = np.mgrid[:80, :140]
    a = (yy - 40) ** 2 + (xx - 35) ** 2 < 18**2
    b = (yy - 40) ** 2 + (xx - 105) ** 2 < 18**2
    image[a | b] = [200, 60, 60]
    layer = viewer.add_image(image, name="pair", rgb=True)
    scribbles = viewer.add_labels(np.zeros((80, 140), np.uint8), name="pair scribbles")
    return layer, scribbles, a, b


def test_commit_objects_one_by_one(widget, viewer, qtbot, errors):
    widget.preset.value = "default"
    image_layer, scribbles, a, b = _two_disks(viewer)
    select(widget, image_layer, scribbles)
    assert widget.commit() == 0 and "nothing to commit" in errors[-1]  # no result yet: no layer made
    assert "pair objects" not in viewer.layers
    data = scribbles.data.copy()
    data[38:43, 30:40] = 1
    data[:3, :] = 2
    data[:, 68:72] = 2  # between the disks: the second disk is background for now
    data[:, -3:] = 2
    scribbles.data = data
    run(widget, qtbot)
    assert iou(viewer.layers["pair segmentation"].data == 1, a) > 0.9
    assert widget.commit() == 1
    objects = viewer.layers["pair objects"]
    assert iou(objects.data == 1, a) > 0.9
    assert not scribbles.data.any() and not viewer.layers["pair segmentation"].data.any()  # cleared
    first = objects.data.copy()
    data = np.zeros_like(scribbles.data)
    data[38:43, 100:110] = 1  # the second disk; no background stroke: the first object is background
    data[:3, 80:] = 2
    scribbles.data = data
    run(widget, qtbot)
    second = viewer.layers["pair segmentation"].data == 1
    assert iou(second, b) > 0.9 and not (second & a).any()  # later objects never take committed pixels
    assert widget.commit() == 2
    assert np.array_equal(objects.data[first > 0], first[first > 0])  # object 1 untouched
    assert iou(objects.data == 2, b) > 0.9
    objects.undo()  # the second commit was one edit
    np.testing.assert_array_equal(objects.data, first)
    assert errors[1:] == []


def test_a_commit_whose_id_does_not_fit_widens_the_objects_layer(widget, viewer, qtbot, errors):
    """The objects layer holds uint8 ids up to 255 (a restored mask): object 256 widens it, nothing wraps to 0."""
    from napari_deepseg._qt import _objects

    widget.preset.value = "default"
    image_layer, scribbles, a, _ = _two_disks(viewer)
    select(widget, image_layer, scribbles)
    objects = _objects.objects_layer(viewer, image_layer, create=True)
    old = np.zeros(objects.data.shape, np.uint8)
    old[:4, :4] = 255
    objects.data = old
    data = np.zeros_like(scribbles.data)
    data[38:43, 30:40] = 1
    data[:3, :] = 2
    data[:, 68:72] = 2
    data[:, -3:] = 2
    scribbles.data = data
    run(widget, qtbot)
    assert widget.commit() == 256
    assert objects.data.dtype.itemsize > 1 and iou(objects.data == 256, a) > 0.9
    assert (objects.data[:4, :4] == 255).all()  # the other object keeps every pixel
    assert errors == []


def test_a_stroke_updates_locally_then_refits_in_the_background(widget, viewer, qtbot, errors, monkeypatch):
    from napari_deepseg.core.cut import pyramid

    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 40)  # a window of a few % of this image
    widget.preset.value = "default"
    image_layer, scribbles, truth = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    result = viewer.layers["disk segmentation"]
    first = result.data.copy()
    assert "locally" not in widget.status.value, widget.status.value  # the first cut is whole
    more = np.array(scribbles.data)
    more[100:121, 200:221] = 2  # a background square on the disk, away from the object strokes
    scribbles.data = more
    run(widget, qtbot, background=False)
    if widget.refitting:  # the refit's stages follow what the update did, they do not replace it
        widget.runner._on_progress(widget.runner.latest, 0, 1, "graph cut")
        assert "refitting the whole image in the background: graph cut" in widget.status.value
    assert "updated locally" in widget.status.value, widget.status.value
    local = result.data.copy()
    outside = np.ones(first.shape, bool)
    outside[100 - 40 : 121 + 40, 200 - 40 : 221 + 40] = False
    np.testing.assert_array_equal(local[outside], first[outside])  # nothing beyond the bound moved
    assert not local[100:121, 200:221].any() and (local != first).sum() >= 21 * 21
    qtbot.waitUntil(lambda: not widget.refitting, timeout=WAIT_MS)  # the whole cut, in the background
    assert "refitted on the whole image" in widget.status.value or "changed nothing" in widget.status.value
    assert not result.data[100:121, 200:221].any()
    assert iou(result.data == 1, truth) > 0.9
    history = len(result._undo_history)
    result.undo()  # one step per write: the refit (or, if it changed nothing, the local update) goes
    assert len(result._undo_history) == history - 1
    assert errors == []


def test_a_new_stroke_cancels_the_background_refit(widget, viewer, qtbot, errors, monkeypatch):
    from napari_deepseg.core.cut import pyramid

    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 40)
    widget.preset.value = "default"
    image_layer, scribbles, truth = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    release = __import__("threading").Event()
    original = service.run_request

    def slow(slot, image, scribbles_, options, progress=None, cancel=None, local=False, defer=False, **kwargs):
        if not local and not defer:  # the background refit waits until the next stroke arrives
            release.wait(10)
        return original(slot, image, scribbles_, options, progress=progress, cancel=cancel, local=local,
                        defer=defer, **kwargs)

    monkeypatch.setattr(service, "run_request", slow)
    more = np.array(scribbles.data)
    more[100:121, 200:221] = 2
    scribbles.data = more
    run(widget, qtbot, background=False)
    qtbot.waitUntil(lambda: widget.refitting, timeout=WAIT_MS)
    assert widget.segment_button.enabled  # painting and Segment go on while the refit runs
    more[200:211, 150:161] = 2
    scribbles.data = more
    assert widget.segment()  # supersedes the refit
    release.set()
    qtbot.waitUntil(lambda: not widget.busy and not widget.refitting, timeout=WAIT_MS)
    assert not viewer.layers["disk segmentation"].data[200:211, 150:161].any()
    assert errors == []


def test_write_plane_uses_changes_found_beforehand_only_on_the_array_they_were_found_on():
    from napari_deepseg._qt import _layers

    layer = Labels(np.zeros((2, 6, 8), np.uint8))
    labels = np.zeros((6, 8), np.uint8)
    labels[1:3, 2:5] = 1
    changes = _layers.plane_changes(layer.data, (1,), labels)
    layer.data_setitem((np.array([1, 1]), np.array([0, 5]), np.array([0, 7])), 3)  # painted by hand since
    assert _layers.write_plane(layer, (1,), labels, changes) == 6
    expected = labels.copy()
    expected[0, 0] = expected[5, 7] = 3  # where the new labels equal the old ones, the hand's paint stays
    np.testing.assert_array_equal(layer.data[1], expected)
    assert not layer.data[0].any()
    layer.undo()  # one undo step
    assert layer.data[1].sum() == 6
    big = labels.astype(np.uint16) * 300  # over uint8: the layer widens, the changes are found again
    stale = _layers.plane_changes(layer.data, (1,), big)
    layer.data = np.array(layer.data)  # another array: the changes found on the old one are not used
    assert _layers.write_plane(layer, (1,), big, stale) == 8  # the two painted pixels and the six labels
    np.testing.assert_array_equal(layer.data[1], big)
    assert layer.data.dtype == np.uint16


def test_a_large_planes_update_finds_its_changes_in_the_worker(widget, viewer, qtbot, errors, monkeypatch):
    """A large plane's local update and refit: the changes are found off the GUI thread (the 12 MP compare
    paused it 104 ms), written as one undo step each; a whole cut that showed a preview finds them after it."""
    import threading

    from napari_deepseg._qt import _layers
    from napari_deepseg.core.cut import pyramid, session

    monkeypatch.setattr(_requests, "PREVIEW_MIN_PIXELS", 0)  # this 320 x 400 image counts as large
    monkeypatch.setattr(session, "DEFER_MAX_PIXELS", 0)
    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 40)
    found = []  # (thread, pixels) of every search for changes
    original = _layers.plane_changes

    def record(data, plane, labels):
        changes = original(data, plane, labels)
        found.append((threading.current_thread() is threading.main_thread(), changes.values.size))
        return changes

    monkeypatch.setattr(_layers, "plane_changes", record)
    widget.preset.value = "default"
    image_layer, scribbles, truth = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    run(widget, qtbot)  # the first result makes the layer: nothing to compare with
    result = viewer.layers["disk segmentation"]
    first = result.data.copy()
    assert found == []
    more = np.array(scribbles.data)
    more[100:121, 200:221] = 2
    scribbles.data = more
    run(widget, qtbot)  # the local update, then the refit in the background
    assert "locally" in widget.status.value or "refit" in widget.status.value, widget.status.value
    assert found and not any(main for main, _ in found), found  # in the worker, never on the GUI thread
    assert not result.data[100:121, 200:221].any() and iou(result.data == 1, truth) > 0.9
    assert len(result._undo_history) == sum(n > 0 for _, n in found)  # one undo step per write that changed
    while result._undo_history:
        result.undo()
    np.testing.assert_array_equal(result.data, first)
    found.clear()
    monkeypatch.setattr(pyramid, "UPDATE_BOUND", 10_000)  # a whole cut: previewed, then compared after it
    more[200:211, 150:161] = 2
    scribbles.data = more
    run(widget, qtbot, background=False)
    assert found and found[0][0], found  # the preview wrote into the layer: its changes, on the GUI thread
    assert not result.data[200:211, 150:161].any()
    assert errors == []


def test_a_large_image_shows_the_coarse_result_first(widget, viewer, qtbot, errors, monkeypatch):
    from napari_deepseg.core.cut import session

    monkeypatch.setattr(_requests, "PREVIEW_MIN_PIXELS", 0)  # this 320 x 400 image counts as large
    monkeypatch.setattr(session, "DEFER_MAX_PIXELS", 0)  # ... and is not answered in two cuts
    widget.preset.value = "default"
    image_layer, scribbles, truth = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    shown = []
    relay = widget.runner._relay._preview_callback

    def record(rid, labels):
        relay(rid, labels)
        shown.append(np.array(viewer.layers["disk segmentation"].data, copy=True))

    widget.runner._relay._preview_callback = record
    run(widget, qtbot)
    result = viewer.layers["disk segmentation"]
    assert len(shown) == 1 and iou(shown[0] == 1, truth) > 0.9  # the coarse result, shown in the layer
    blocks = shown[0].reshape(160, 2, 200, 2)
    assert (blocks == blocks[:, :1, :, :1]).all() and not np.array_equal(shown[0], result.data)
    assert len(result._undo_history) == 0  # the first result: no undo step, as without a preview
    first = result.data.copy()
    more = np.array(scribbles.data)
    more[100:121, 200:221] = 2
    scribbles.data = more
    run(widget, qtbot)  # the window covers this small image: a whole cut, previewed again
    assert len(shown) == 2 and len(result._undo_history) == 1  # preview and result: one undo step
    result.undo()
    np.testing.assert_array_equal(result.data, first)
    assert errors == []


def test_a_large_result_layer_is_added_hidden_and_shown_after(widget, viewer, qtbot, errors, monkeypatch):
    """Issue 24: napari's creation of the layer and the first draw of its texture fall in two GUI pauses."""
    monkeypatch.setattr(_results, "SHOW_LATER_MIN_PIXELS", 0)  # this image counts as large
    image_layer, scribbles, truth = add_disk(viewer)
    select(widget, image_layer, scribbles)
    inserted = []
    viewer.layers.events.inserted.connect(lambda event: inserted.append((event.value.name, event.value.visible)))
    active = viewer.layers.selection.active
    run(widget, qtbot)
    assert inserted == [("disk segmentation", False)]
    result = viewer.layers["disk segmentation"]
    qtbot.waitUntil(lambda: result.visible, timeout=WAIT_MS)
    assert iou(result.data == 1, truth) > 0.9
    assert viewer.layers.index(result) == viewer.layers.index(scribbles) - 1  # inserted just below the scribbles
    assert viewer.layers.selection.active is active
    viewer.layers.remove(result)  # removed before the delay ends: nothing to show, no error
    monkeypatch.setattr(_results, "SHOW_DELAY_MS", 200)
    run(widget, qtbot)
    viewer.layers.remove(viewer.layers["disk segmentation"])
    qtbot.wait(300)
    assert errors == []


def test_add_result_layer_takes_a_whole_writeable_plane_as_it_is(viewer):
    from napari_deepseg._qt import _layers

    image = viewer.add_image(np.zeros((6, 8), np.float32), name="img")
    top = viewer.add_labels(np.zeros((6, 8), np.uint8), name="top")
    labels = np.ones((6, 8), np.uint8)
    layer = _layers.add_result_layer(viewer, "res", image, (6, 8), (), labels, index=1, visible=False)
    assert layer.data is labels and not layer.visible and viewer.layers.index(layer) == 1
    assert viewer.layers.index(top) == 2
    frozen = np.ones((6, 8), np.uint8)
    frozen.flags.writeable = False  # a read-only plane is copied: the user paints on the result layer
    copy = _layers.add_result_layer(viewer, "res2", image, (6, 8), (), frozen)
    assert copy.data is not frozen and copy.data.flags.writeable and viewer.layers[-1] is copy
    assert viewer.layers.selection.active is copy  # napari activates an inserted layer, unless asked not to
    quiet = _layers.add_result_layer(viewer, "res4", image, (6, 8), (), labels.copy(), activate=False)
    assert viewer.layers.selection.active is copy and viewer.layers[-1] is quiet
    stack = _layers.add_result_layer(viewer, "res3", image, (3, 6, 8), (1,), labels)
    assert stack.data.shape == (3, 6, 8) and stack.data[1].all() and not stack.data[[0, 2]].any()


def test_large_planes_are_cut_in_a_child_process(widget, viewer, qtbot, errors, monkeypatch):
    monkeypatch.setattr(service, "PROCESS_MIN_PIXELS", 0)  # this 320 x 400 image counts as large
    widget.preset.value = "default"
    image_layer, scribbles, truth = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    result = viewer.layers["disk segmentation"]
    (slot,) = widget._pool.slots.values()
    assert slot.remote is not None and slot.last is slot.remote and not slot.session.is_image_set
    monkeypatch.setattr(service, "PROCESS_MIN_PIXELS", None)  # the same request in this process
    reference = service.run_request(service.SessionSlot(SegmentationSession("classic")), np.asarray(image_layer.data),
                               np.asarray(scribbles.data), widget.options())
    np.testing.assert_array_equal(result.data, reference)
    assert iou(result.data == 1, truth) > 0.9
    monkeypatch.setattr(service, "PROCESS_MIN_PIXELS", 0)
    more = np.array(scribbles.data)
    more[100:121, 200:221] = 2
    scribbles.data = more
    run(widget, qtbot)
    qtbot.waitUntil(lambda: not widget.refitting, timeout=WAIT_MS)
    assert not result.data[100:121, 200:221].any() and iou(result.data == 1, truth) > 0.9
    child = slot.remote._proc
    monkeypatch.setattr(service, "MAX_SESSIONS", 1)
    widget.backbone.value = "rgb"
    widget._slot(widget.options())  # drops the classic session: its child process ends
    assert child.wait(timeout=10) is not None and slot.remote is None
    assert errors == []


def test_the_status_says_when_the_automatic_lambda_followed_the_oversampling(widget, viewer, qtbot, errors):
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    rough = gaussian_filter(np.random.default_rng(1).random((160, 200, 3)), (1.5, 1.5, 0))
    small = (255 * (rough - rough.min()) / np.ptp(rough)).astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((800, 640), Image.BICUBIC))  # upsampled 4 times
    image_layer = viewer.add_image(big, name="soft", rgb=True)
    strokes = np.zeros(big.shape[:2], np.uint8)
    strokes[300:340, 350:450], strokes[:10, :] = 1, 2
    scribbles = viewer.add_labels(strokes, name="soft scribbles")
    widget.preset.value = "default"
    select(widget, image_layer, scribbles)
    qtbot.waitUntil(lambda: widget._preparer.prepared is not None and not widget.preparing, timeout=WAIT_MS)
    run(widget, qtbot)
    assert "auto λ 80 (20 × 4: the image looks upsampled)" in widget.status.value, widget.status.value
    widget.lam_auto.value = False  # a λ the user sets is used as it is, and the status says nothing of it
    widget.lam.value = 20.0
    qtbot.waitUntil(lambda: not widget._preparer.timer.isActive() and not widget.preparing, timeout=WAIT_MS)
    run(widget, qtbot)
    assert "auto λ" not in widget.status.value and "updated" in widget.status.value
    assert errors == []


def test_cancel_after_the_preview_puts_the_layer_back(widget, viewer, qtbot, errors, monkeypatch):
    monkeypatch.setattr(_requests, "PREVIEW_MIN_PIXELS", 0)
    widget.preset.value = "default"
    image_layer, scribbles, truth = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    before = snapshot(viewer)
    history = len(viewer.layers["disk segmentation"]._undo_history)
    release = __import__("threading").Event()

    def slow(slot, image, scribbles_, options, progress=None, cancel=None, local=False, preview=None, defer=False,
             **kwargs):
        preview(np.ones(image.shape[:2], np.uint8))  # a coarse result arrives, then the bands take long
        release.wait(10)
        cancel.raise_if_cancelled()
        raise AssertionError("the run should have been cancelled")

    monkeypatch.setattr(service, "run_request", slow)
    assert widget.segment()
    qtbot.waitUntil(lambda: (viewer.layers["disk segmentation"].data == 1).all(), timeout=WAIT_MS)
    widget.cancel_button.clicked.emit()
    release.set()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    after = snapshot(viewer)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])
    assert len(viewer.layers["disk segmentation"]._undo_history) == history
    assert errors == []


def test_the_session_cache_keeps_the_most_recently_used(widget, viewer, qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(service, "MAX_SESSIONS", 2)
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)  # classic
    classic = widget._pool.slots[("classic", ())]
    widget.backbone.value = "rgb"
    run(widget, qtbot)
    widget.backbone.value = "classic"
    run(widget, qtbot)  # classic is the most recent again: rgb is the least recently used
    assert list(widget._pool.slots) == [("rgb", ()), ("classic", ())]
    assert widget._pool.slots[("classic", ())] is classic  # reused, features and all
    widget.feature_cache.value = str(tmp_path / "features.zarr")  # a third session key
    run(widget, qtbot)
    assert len(widget._pool.slots) == 2 and ("rgb", ()) not in widget._pool.slots  # rgb was dropped
    assert widget._pool.slots[("classic", ())] is classic


def test_refused_options_drop_no_session(widget, viewer, qtbot, monkeypatch, tmp_path, errors):
    monkeypatch.setattr(service, "MAX_SESSIONS", 2)
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)
    run(widget, qtbot)  # classic
    widget.backbone.value = "rgb"
    run(widget, qtbot)
    kept = dict(widget._pool.slots)
    (tmp_path / "not-a-folder").write_text("x")
    widget.feature_cache.value = str(tmp_path / "not-a-folder")  # a new session key the session refuses
    assert not widget.segment()
    assert "is a file" in errors[-1]
    qtbot.wait(3 * _prepare.PREPARE_DELAY_MS)  # the background preparation tries it too
    assert widget._pool.slots == kept  # both sessions kept, the same objects
    assert all(widget._pool.slots[key] is slot for key, slot in kept.items())


def test_refine_a_label_with_strokes(widget, viewer, qtbot, errors):
    from napari_deepseg.core.prompts.objects import refine_region

    widget.preset.value = "default"
    image, truth = disk_image((120, 160), seed=2)  # a disk of radius 30 at the centre
    image_layer = viewer.add_image(image, name="disk", rgb=True)
    labels = np.zeros((120, 160), np.int32)
    labels[truth & (np.arange(160) < 80)[None, :]] = 1  # label 1: the disk's left half only
    labels[50:70, 125:140] = 2  # another object, right of the disk
    labels[5:15, 5:15] = 3  # and one far away
    layer = viewer.add_labels(labels.copy(), name="labels")
    scribbles = viewer.add_labels(np.zeros((120, 160), np.uint8), name="disk scribbles")
    select(widget, image_layer, scribbles)
    widget.refine_bound.value = 25
    widget.refine_layer.value = layer
    viewer.cursor.position = (60, 60)  # over label 1
    assert widget.refine_at_cursor()
    assert widget._refine.label_id == 1 and widget._refine.layer is layer
    assert widget.commit() == 0 and "Segment first" in errors[-1]  # nothing refined yet
    strokes = np.zeros((120, 160), np.uint8)
    strokes[55:66, 86:100] = 1  # on the missing right half
    scribbles.data = strokes.copy()  # (commit clears the layer's array in place)
    run(widget, qtbot)
    assert widget.commit() == 1
    after = layer.data
    region = refine_region((120, 160), strokes=strokes > 0, bound=25)
    np.testing.assert_array_equal(after[~region], labels[~region])  # nothing beyond the bound changed
    np.testing.assert_array_equal(after[labels == 2], 2)  # other labels never change
    np.testing.assert_array_equal(after[labels == 3], 3)
    grown = (after == 1) & ~(labels == 1)
    assert grown.sum() > 300 and (truth[grown]).mean() > 0.95  # it grew into the disk, not the background
    assert not scribbles.data.any() and widget._refine is None  # strokes cleared, refinement done
    layer.undo()  # one undoable edit
    np.testing.assert_array_equal(layer.data, labels)
    errors.clear()
    assert not widget.refine(layer, 7) and "no object with label 7" in errors[-1]  # one line, nothing picked
    assert widget._refine is None


def test_the_status_line_uses_the_width_of_the_dock(widget, viewer, qtbot):
    # it wrapped into a narrow column of 5-7 lines, one word a line
    viewer.window._qt_window.resize(1400, 900)
    viewer.window._qt_window.show()
    widget.status.value = "preparing 'cat': colour mixture (0/3) and a few more words to fill a line"
    qtbot.waitUntil(lambda: widget.native.isVisible(), timeout=WAIT_MS)
    qtbot.wait(100)
    assert widget.status.native.width() > 0.6 * widget.segment_button.native.parentWidget().width()


def _refine_setup(widget, viewer, planes=()):
    """The disk with label 1 on its left half, label 2 beside it (``planes`` stacked copies); label 1 picked
    (in the first plane) with a bound of 25 px; returns the labels layer, the scribbles layer and the strokes."""
    widget.preset.value = "default"
    image, truth = disk_image((120, 160), seed=2)
    image_layer = viewer.add_image(np.broadcast_to(image, planes + image.shape).copy(), name="disk", rgb=True)
    labels = np.zeros((120, 160), np.int32)
    labels[truth & (np.arange(160) < 80)[None, :]] = 1
    labels[50:70, 125:140] = 2
    layer = viewer.add_labels(np.broadcast_to(labels, planes + labels.shape).copy(), name="labels")
    scribbles = viewer.add_labels(np.zeros(planes + (120, 160), np.uint8), name="disk scribbles")
    select(widget, image_layer, scribbles)
    widget.refine_bound.value = 25
    assert widget.refine(layer, 1)
    strokes = np.zeros(planes + (120, 160), np.uint8)
    strokes[..., 55:66, 86:100] = 1  # on the missing right half
    return layer, scribbles, strokes


def test_refine_commit_keeps_the_bound_whatever_was_painted_since(widget, viewer, qtbot, errors):
    from napari_deepseg.core.prompts.objects import refine_region

    layer, scribbles, strokes = _refine_setup(widget, viewer)
    layer.data[58:62, 55:59] = 0  # the user erases a bit of the picked label by hand, far from the strokes
    layer.refresh()
    scribbles.data = strokes.copy()
    run(widget, qtbot)
    result = viewer.layers["disk segmentation"]
    result.data[100:110, 20:30] = 1  # and paints the result layer far from the strokes
    result.refresh()
    before = np.array(layer.data, copy=True)
    assert widget.commit() == 1
    region = refine_region((120, 160), strokes=strokes > 0, bound=25)
    np.testing.assert_array_equal(layer.data[~region], before[~region])  # bit for bit outside the bound
    assert (layer.data[region] == 1).sum() > (before[region] == 1).sum() + 300  # the refinement itself landed
    assert errors == []


def test_refining_refuses_a_volume_cut(widget, viewer, qtbot, errors):
    layer, scribbles, strokes = _refine_setup(widget, viewer, planes=(3,))
    strokes[:, 5:10, 5:10] = 2  # both classes: a 3-D cut could run
    scribbles.data = strokes.copy()
    before = snapshot(viewer)
    widget.volume.value = "3-D cut"
    assert not widget.segment()
    assert "being refined on the current plane" in errors[-1] and "\n" not in errors[-1]
    np.testing.assert_equal(snapshot(viewer), before)  # nothing ran, nothing changed
    widget.volume.value = "current plane"  # the refinement is still there
    run(widget, qtbot)
    assert widget.commit() == 1 and (layer.data == 2).sum() == 3 * 20 * 15


# -- small findings (issue 30) ------------------------------------------------------------
def test_the_status_line_does_not_report_an_undone_update(widget, viewer, qtbot, errors):
    image_layer, scribbles, _ = add_disk(viewer, shape=(320, 400))
    select(widget, image_layer, scribbles)
    run(widget, qtbot)
    more = np.array(scribbles.data)
    more[100:121, 200:221] = 2  # a background square on the disk: the update changes the result
    scribbles.data = more
    run(widget, qtbot)
    assert "updated" in widget.status.value
    result = viewer.layers["disk segmentation"]
    result.undo()  # what Ctrl+Z on the result layer does
    assert "updated" not in widget.status.value and "undone" in widget.status.value, widget.status.value
    assert errors == []


def test_a_segment_right_after_choosing_an_image_keeps_its_result_line(widget, viewer, qtbot, errors):
    image_layer, scribbles, _ = add_disk(viewer)
    select(widget, image_layer, scribbles)  # the background preparation is due in PREPARE_DELAY_MS
    assert widget.segment()  # pressed before it starts
    qtbot.wait(3 * _prepare.PREPARE_DELAY_MS)
    qtbot.waitUntil(lambda: not widget.busy and not widget.preparing, timeout=WAIT_MS)
    assert "updated" in widget.status.value, widget.status.value
    assert errors == []


def test_r_shows_the_picked_label_in_the_label_box(widget, viewer, qtbot, errors):
    image_layer, scribbles, truth = add_disk(viewer)
    labels = viewer.add_labels(truth.astype(np.int32), name="labels")  # label 1: the disk
    select(widget, image_layer, scribbles)
    viewer.layers.selection.active = labels  # no refine layer chosen: R takes the selected Labels layer
    assert widget.refine_layer.value is None and widget.refine_label.value == 0
    viewer.cursor.position = (32, 40)  # the disk's centre
    assert widget.refine_at_cursor()
    assert widget.refine_label.value == 1 and widget.refine_layer.value is labels
    assert errors == []


def test_a_small_image_is_answered_fast_then_completed_in_the_background(widget, viewer, qtbot, errors):
    """The update leaves the found star centres to a background cut, which brings the hook's far end back."""
    from test_found_centres import hooked_object

    image, truth, strokes = (np.repeat(np.repeat(a, 3, 0), 3, 1) for a in hooked_object())
    image_layer = viewer.add_image(image, name="hook", rgb=True)
    scribbles = viewer.add_labels(strokes, name="hook scribbles")
    widget.preset.value = "default"
    select(widget, image_layer, scribbles)
    run(widget, qtbot, background=False)
    hook_end = np.s_[45:81, 285:375]
    result = viewer.layers["hook segmentation"]
    assert widget.refitting and "finding more star centres in the background" in widget.status.value
    assert (result.data[hook_end] == 1)[truth[hook_end]].mean() < 0.5  # the quick cut: the star drops it
    qtbot.waitUntil(lambda: not widget.refitting, timeout=WAIT_MS)
    assert (result.data[hook_end] == 1)[truth[hook_end]].mean() > 0.95
    status = widget.status.value
    assert status.startswith("'hook segmentation' updated in") and "the found star centres changed" in status
    assert errors == []
