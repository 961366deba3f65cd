"""The scribble cut as a service (core/cut/service.py): what the Scribble widget runs, used as a script would
(no viewer, no Qt; ``test_headless_import.py`` runs it with napari, Qt and magicgui blocked)."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import disk_image, disk_scribbles

from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import service
from napari_deepseg.core.cut.service import Options, SessionPool, check_volume_options, prepare_request, run_request
from napari_deepseg.core.cut.volume import VolumeSession


@pytest.fixture
def disk():
    image, truth = disk_image((96, 120), seed=3)
    return image, disk_scribbles(truth), truth


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_a_request_gives_the_session_s_own_mask(disk, preset):
    image, scribbles, truth = disk
    options = Options("classic", preset, lam=None, sigma=None)
    pool = SessionPool()
    slot = pool.slot(options)
    prepare_request(slot, image, options)
    labels = run_request(slot, image, scribbles, options)
    session = SegmentationSession("classic")
    session.set_image(image)
    reference = session.segment(scribbles, preset=preset)
    np.testing.assert_array_equal(labels, reference)
    assert ((labels == 1) == truth).mean() > 0.95
    assert slot.last is slot.session and slot.remote is None  # a small plane is cut in this process
    assert pool.close()


def test_the_pool_keeps_the_most_recently_used_sessions(monkeypatch):
    monkeypatch.setattr(service, "MAX_SESSIONS", 2)
    made = []
    pool = SessionPool(before_new=made.append)
    classic = pool.slot(Options("classic", "default", None, None))
    pool.slot(Options("rgb", "default", None, None))
    assert pool.slot(Options("classic", "seed", 5.0, None)) is classic  # λ, σ and preset share the session
    pool.slot(Options("classic", "default", None, None, feature_cache="/tmp/x.zarr"))
    assert list(pool.slots) == [("classic", ()), ("classic", (), "/tmp/x.zarr")]  # rgb was least recently used
    assert made == []  # no session with pretrained weights was made
    volume = pool.slot(Options("classic", "default", None, None, volume="3d"))
    assert isinstance(volume.session, VolumeSession) and len(pool.slots) == 2


def test_a_refused_session_drops_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "MAX_SESSIONS", 1)
    pool = SessionPool()
    kept = pool.slot(Options("classic", "default", None, None))
    afile = tmp_path / "file.txt"
    afile.write_text("not a store")
    with pytest.raises(ValueError):
        pool.slot(Options("classic", "default", None, None, feature_cache=str(afile)))
    assert list(pool.slots.values()) == [kept]


def test_a_volume_request_cuts_in_3d():
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:12, :32, :32]
    truth = (zz - 6) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 < 8 ** 2
    volume = np.where(truth, 0.8, 0.2) + rng.normal(0, 0.05, truth.shape)
    scribbles = np.zeros(truth.shape, np.uint8)
    scribbles[6, 14:18, 14:18] = 1
    scribbles[:, :2] = 2
    options = Options("classic", "default", None, None, volume="3d", spacing=(1.0, 1.0, 1.0))
    labels = run_request(SessionPool().slot(options), volume, scribbles, options)
    assert labels.shape == truth.shape and ((labels == 1) == truth).mean() > 0.95


@pytest.mark.parametrize("kwargs, needle", [
    ({"backbone": "resnet50"}, "backbone 'resnet50'"),
    ({"backbone": "classic", "preset": "seed"}, "preset 'seed'"),
    ({"backbone": "rgb", "channel_axis": -1}, "channel axis -1"),
    ({"backbone": "classic", "feature_cache": "f.zarr"}, "feature cache f.zarr"),
])
def test_3d_options_are_refused_in_one_line(kwargs, needle):
    with pytest.raises(ValueError, match="weight-free") as info:
        check_volume_options(**kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_the_cli_asks_the_same_rule(tmp_path, capsys):
    import tifffile

    from napari_deepseg.cli import main

    tifffile.imwrite(tmp_path / "v.tif", np.zeros((4, 16, 16), np.uint8))
    tifffile.imwrite(tmp_path / "s.tif", np.ones((4, 16, 16), np.uint8))
    code = main(["segment", str(tmp_path / "v.tif"), "--scribbles", str(tmp_path / "s.tif"),
                 "--features", "resnet50", "-o", str(tmp_path / "o.tif")])
    err = capsys.readouterr().err
    assert code == 2 and "backbone 'resnet50' is for 2-D images" in err


def test_a_neighbour_is_prepared_beside_the_session_and_handed_over(monkeypatch):
    """prepare_neighbour computes without the slot's lock, then the image's first request finds it cached."""
    import threading

    from napari_deepseg.core.cut import session as session_module

    image, truth = disk_image((80, 96), seed=3)
    other, _ = disk_image((80, 96), seed=4)
    options = Options("classic", "default", None, None)
    slot = SessionPool().slot(options)
    slot.session.cache_size = 3
    run_request(slot, other, disk_scribbles(truth), options)  # the image the user works on
    current = slot.session._current
    palettes, prepared = [], threading.Event()
    real = session_module.build_palette
    monkeypatch.setattr(session_module, "build_palette", lambda *a, **k: palettes.append(1) or real(*a, **k))
    aside = slot.session.prepare_aside
    monkeypatch.setattr(slot.session, "prepare_aside", lambda *a, **k: (aside(*a, **k), prepared.set())[0])
    with slot.lock:  # a request holds the session: the preparation runs all the same, then waits to hand over
        worker = threading.Thread(target=service.prepare_neighbour, args=(slot, image, options))
        worker.start()
        assert prepared.wait(timeout=60)
        assert palettes == [1] and worker.is_alive()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert slot.session._current is current  # the current image stays current
    labels = run_request(slot, image, disk_scribbles(truth), options)
    assert palettes == [1]  # the request found the image prepared
    fresh = SegmentationSession("classic")
    fresh.set_image(image)
    np.testing.assert_array_equal(labels, fresh.segment(disk_scribbles(truth)))


def test_request_options_from_a_form(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    options = service.request_options("resnet50", "seed", lam=5.0, weights=weights, device="cpu",
                                      rgb_channels="3, 0, 1", feature_cache=tmp_path / "f.zarr", channel_axis=-1)
    assert options == Options("resnet50", "seed", 5.0, None, (("weights", str(weights)), ("device", "cpu"),
                                                             ("rgb_channels", (3, 0, 1))), str(tmp_path / "f.zarr"), -1)
    # the weight-free backbones ignore weights, device and RGB channels; empty file boxes are no path
    assert service.request_options("classic", weights=".", rgb_channels="not read", feature_cache=" ") == \
        Options("classic", "default", None, None)


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"backbone": "resnet50", "weights": "/no/such.pth"}, ValueError, "weights file not found: /no/such.pth"),
    ({"backbone": "resnet50", "rgb_channels": "1, 2"}, ValueError, "RGB channels must be three channel indices"),
    ({"backbone": "clip", "rgb_channels": "r g b"}, TypeError, "RGB channels must be three channel indices"),
    ({"backbone": "classic", "preset": "seed", "volume": "3d"}, ValueError, "or segment the current plane"),
])
def test_request_options_bad_inputs(kwargs, error, needle):
    with pytest.raises(error) as info:
        service.request_options(**kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_slot_keeps_more_images_here_and_in_its_child_process():
    slot = SessionPool().slot(Options("classic", "default", None, None))
    assert slot.session.cache_size == 2
    slot.keep_images(3)
    assert slot.session.cache_size == 3 and slot.session_kwargs["cache_size"] == 3  # the child starts with it
    slot.keep_images(1)  # never fewer than asked before
    assert slot.session.cache_size == 3 and slot.session_kwargs["cache_size"] == 3


def test_a_large_plane_is_prepared_in_the_child_without_holding_the_lock(monkeypatch):
    """Planes cut in the child process: the opened image is prepared by the child's preparation thread, the
    neighbours' wishes reach the child while it does (the lock is free), a cut finds it ready; an image the
    child cannot prepare is done again holding the lock, its error raised."""
    import threading

    monkeypatch.setattr(service, "PROCESS_MIN_PIXELS", 0)  # every plane is cut in the child
    image, truth = disk_image((120, 150), seed=5)
    nxt, _ = disk_image((120, 150), seed=6)
    options = Options("classic", "default", None, None)
    slot = SessionPool().slot(options)
    slot.keep_images(3)
    try:
        done = threading.Event()
        worker = threading.Thread(target=lambda: (service.prepare_request(slot, image, options), done.set()))
        worker.start()
        service.prepare_neighbour(slot, nxt, options)  # not held up by the opened image's preparation
        worker.join(timeout=120)
        assert done.is_set()
        from napari_deepseg.core.cut import remote

        states = slot.remote.prepared()
        assert states[(remote._digest(np.ascontiguousarray(image)), image.shape, image.dtype.str)] == "ready"
        assert states[(remote._digest(np.ascontiguousarray(nxt)), nxt.shape, nxt.dtype.str)] in ("pending", "ready")
        labels = run_request(slot, image, disk_scribbles(truth), options)
        fresh = SegmentationSession("classic")
        fresh.set_image(image)
        np.testing.assert_array_equal(labels, fresh.segment(disk_scribbles(truth)))
        with pytest.raises(ValueError):
            service.prepare_request(slot, np.zeros((4, 5, 6, 7)), options)
    finally:
        slot.close()
