"""The session in a child process (``core/cut/remote.py``): the same masks, progress, cancel and errors."""

import threading
import time

import numpy as np
import pytest

from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import remote
from napari_deepseg.core.cut.remote import ProcessSession
from napari_deepseg.core.utils.progress import CancelToken, Cancelled

from _synthetic import disk_image, disk_scribbles


@pytest.fixture
def proc_session():
    session = ProcessSession("classic")
    yield session
    session.close()


def test_the_child_gives_the_masks_of_a_session_in_this_process(proc_session):
    image, truth = disk_image((160, 200), radius=50, seed=1)
    strokes = disk_scribbles(truth, width=3, margin=6)
    local = SegmentationSession("classic")
    local.set_image(image)
    local.prepare_default()
    steps = []
    proc_session.set_image(image, progress=lambda d, t, m: steps.append(m))
    proc_session.prepare_default(progress=lambda d, t, m: steps.append(m))
    np.testing.assert_array_equal(proc_session.segment(strokes), local.segment(strokes))
    assert steps  # progress came back from the child
    more = strokes.copy()
    more[5:9, 5:9] = 2
    np.testing.assert_array_equal(proc_session.segment(more, local=True), local.segment(more, local=True))
    assert proc_session.last_local == local.last_local


def test_an_image_is_sent_once(proc_session, monkeypatch):
    image, truth = disk_image((80, 90), radius=20, seed=2)
    sent = []
    original = remote.ProcessSession._call
    monkeypatch.setattr(remote.ProcessSession, "_call",
                        lambda self, name, args, *a, **k: sent.append(args) or original(self, name, args, *a, **k))
    proc_session.set_image(image)
    proc_session.set_image(image.copy())
    changed = image.copy()
    changed[0, 0] = 255 - changed[0, 0]
    proc_session.set_image(changed)
    assert [a[0] is None for a in sent] == [False, True, False]
    assert proc_session.segment(disk_scribbles(truth, width=2, margin=4)).shape == image.shape[:2]


def test_going_back_to_an_image_the_child_holds_sends_its_name_only(monkeypatch):
    """A folder's image, left for its neighbour and opened again: the child keeps its pixels (75 MB at 25 MP)
    as long as its features; one it dropped is sent again when it says so."""
    a, truth_a = disk_image((120, 150), radius=35, seed=7)
    strokes = disk_scribbles(truth_a, width=3, margin=6)
    b = np.ascontiguousarray(np.roll(a, 40, axis=1))
    local = SegmentationSession("classic")
    local.set_image(a)
    expected = local.segment(strokes)
    sent = []
    original = remote.ProcessSession._call
    monkeypatch.setattr(remote.ProcessSession, "_call",
                        lambda self, name, args, *r, **k: (name == "set_image" and sent.append(args[0] is not None),
                                                           original(self, name, args, *r, **k))[1])
    session = ProcessSession("classic", cache_size=2)
    try:
        session.set_image(a)
        session.set_image(b)
        session.set_image(a.copy())  # the same pixels: named
        np.testing.assert_array_equal(session.segment(strokes), expected)
        assert sent == [True, True, False]
        session.set_image(np.ascontiguousarray(np.roll(a, 20, axis=0)))  # a third image: the child drops b
        session._held[(remote._digest(b), b.shape, b.dtype.str)] = None  # as if this side had not seen it go
        sent.clear()
        session.set_image(b)
        assert sent == [False, True]  # named, refused (the child dropped it), sent
        session.set_image(a)
        np.testing.assert_array_equal(session.segment(strokes), expected)
    finally:
        session.close()


def test_an_image_prepared_beside_is_ready_when_it_is_opened(proc_session):
    """A folder's next image is prepared by a thread of the child while the child cuts the current one; opening
    it then finds its features (no palette computed again), and its masks are a fresh session's."""
    a, truth_a = disk_image((160, 200), radius=50, seed=8)
    b, truth_b = disk_image((160, 200), radius=40, seed=9)
    c, truth_c = disk_image((160, 200), radius=45, seed=10)
    expected = {}
    for name, image, truth in (("a", a, truth_a), ("b", b, truth_b), ("c", c, truth_c)):
        local = SegmentationSession("classic")
        local.set_image(image)
        expected[name] = local.segment(disk_scribbles(truth, width=3, margin=6))
    proc_session.set_image(a)
    proc_session.prepare_beside(b)
    np.testing.assert_array_equal(proc_session.segment(disk_scribbles(truth_a, width=3, margin=6)), expected["a"])
    name_b = (remote._digest(b), b.shape, b.dtype.str)
    deadline = time.monotonic() + 60
    while proc_session.prepared().get(name_b) != "ready" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc_session.prepared()[name_b] == "ready"
    steps = []
    proc_session.set_image(b, progress=lambda done, total, message: steps.append(message))
    assert "colour palette" not in steps  # found prepared: sent by name, not computed again
    np.testing.assert_array_equal(proc_session.segment(disk_scribbles(truth_b, width=3, margin=6)), expected["b"])
    proc_session.prepare_beside(c)
    proc_session.set_image(c)  # at once: the preparation under way is waited for, or not begun and done here
    np.testing.assert_array_equal(proc_session.segment(disk_scribbles(truth_c, width=3, margin=6)), expected["c"])


def test_errors_come_back_with_their_type_and_the_child_keeps_serving(proc_session):
    with pytest.raises(ValueError):
        proc_session.set_image(np.zeros((4, 5, 6, 7)))
    image, truth = disk_image((60, 60), radius=15, seed=3)
    proc_session.set_image(image)
    with pytest.raises(ValueError, match="scribble"):
        proc_session.segment(np.zeros((60, 60), np.uint8))  # no stroke
    assert proc_session.segment(disk_scribbles(truth, width=2, margin=4)).any()


def test_a_bad_backbone_is_reported_by_every_call():
    session = ProcessSession("no-such-backbone")
    try:
        for _ in range(2):
            with pytest.raises(Exception, match="no-such-backbone"):
                session.set_image(np.zeros((8, 8)))
    finally:
        session.close()


def test_cancel_stops_the_child_and_it_answers_the_next_call(proc_session):
    image, truth = disk_image((900, 900), radius=300, seed=5)
    strokes = disk_scribbles(truth, width=3, margin=8)
    proc_session.set_image(image)
    token = CancelToken()
    timer = threading.Timer(0.3, token.cancel)
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        proc_session.prepare_default(cancel=token)
        proc_session.segment(strokes, cancel=token)
    assert time.perf_counter() - t0 < 10
    assert proc_session.segment(strokes)[450, 450] == 1


def test_a_cancelled_set_image_does_not_leave_the_child_on_another_image(proc_session, monkeypatch):
    """The child keeps an image as soon as it arrives: after a ``set_image(B)`` cancelled once B was there, a
    request for A sends A again (it was cut on B: a cancelled neighbour preparation in the Dataset dock)."""
    a, truth_a = disk_image((200, 240), radius=60, seed=6)
    strokes = disk_scribbles(truth_a, width=3, margin=8)
    b = np.ascontiguousarray(np.roll(a, 70, axis=1))  # the disk moved right: another image of the same shape
    proc_session.set_image(a)
    expected = proc_session.segment(strokes)
    original = remote.ProcessSession._call

    def cancelled_after_sending(self, name, args, *rest, **kwargs):
        value = original(self, name, args, *rest, **kwargs)
        if name == "set_image" and args[0] is not None and args[0].shape == b.shape and np.array_equal(args[0], b):
            raise Cancelled("cancelled")  # the child holds B, the call did not end
        return value

    monkeypatch.setattr(remote.ProcessSession, "_call", cancelled_after_sending)
    with pytest.raises(Cancelled):
        proc_session.set_image(b)
    proc_session.set_image(a)
    np.testing.assert_array_equal(proc_session.segment(strokes), expected)


def test_a_dead_child_is_one_error_and_the_next_call_starts_a_new_one(proc_session):
    image, truth = disk_image((60, 60), radius=15, seed=3)
    strokes = disk_scribbles(truth, width=2, margin=4)
    proc_session.set_image(image)
    proc_session._proc.kill()
    proc_session._proc.wait()
    with pytest.raises(RuntimeError, match="stopped unexpectedly"):
        proc_session.segment(strokes)
    proc_session.set_image(image)  # sent again: the new child has no image
    assert proc_session.segment(strokes)[30, 30] == 1


def test_the_coarse_preview_comes_back_from_the_child(proc_session):
    image, truth = disk_image((1300, 1300), radius=400, seed=4)  # above COARSEST_PIXELS: coarse-to-fine
    proc_session.set_image(image)
    shown = []
    out = proc_session.segment(disk_scribbles(truth, width=3, margin=10), preview=shown.append)
    assert len(shown) == 1 and shown[0].shape == out.shape
    assert (shown[0] == out).mean() > 0.95  # the coarse result, close to the final one
