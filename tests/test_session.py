"""SegmentationSession: the expensive step (cached features) apart from the cheap one (a cut)."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import disk_image, disk_scribbles, three_class_image, three_class_scribbles
from napari_deepseg.core import PRESETS, SegmentationSession, segment_image
from napari_deepseg.core.cut import graphcut
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.utils.progress import CancelToken, Cancelled
from napari_deepseg.core.cut.image import image_key
from napari_deepseg.core.cut.session import labels_from_index

DTYPES = [np.uint8, np.uint16, np.float32]
CHANNELS = [1, 3, 4]
BACKBONES = ["rgb", "classic"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def disk_sessions():
    """Sessions with the features of a disk image set, shared between presets (features are the slow part)."""
    cache = {}

    def get(backbone, dtype, channels):
        key = (backbone, np.dtype(dtype).name, channels)
        if key not in cache:
            image, truth = disk_image(channels=channels, dtype=dtype)
            session = SegmentationSession(backbone)
            session.set_image(image)
            cache[key] = (session, image, truth, disk_scribbles(truth))
        return cache[key]

    return get


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_segments_disk(disk_sessions, backbone, preset, dtype, channels):
    session, image, truth, scribbles = disk_sessions(backbone, dtype, channels)
    out = session.segment(scribbles, preset=preset)
    assert out.shape == truth.shape
    assert out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 1}
    # scribbles are hard constraints
    assert np.all(out[scribbles == 1] == 1) and np.all(out[scribbles == 2] == 0)
    score = iou(out == 1, truth)
    assert score >= 0.9, (
        f"IoU {score:.3f} < 0.9 for {backbone}/{preset}, {np.dtype(dtype).name}, {channels} channel(s): "
        f"{int((out == 1).sum())} object pixels predicted, {int(truth.sum())} true"
    )


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_three_classes(backbone, preset):
    image, truth = three_class_image()
    scribbles = three_class_scribbles(truth)
    session = SegmentationSession(backbone)
    session.set_image(image)
    out = session.segment(scribbles, preset=preset)
    assert out.dtype == np.uint8 and out.shape == truth.shape
    # background scribble 2 becomes 0; the object classes keep their values
    assert set(np.unique(out)) == {0, 1, 3}
    for k in (1, 2, 3):
        expected = 0 if k == 2 else k
        assert np.all(out[scribbles == k] == expected)
    for k in (0, 1, 3):
        score = iou(out == k, truth == k)
        assert score >= 0.9, f"class {k}: IoU {score:.3f} < 0.9 ({backbone}/{preset})"


def test_two_object_classes_without_background():
    image, truth = three_class_image()
    scribbles = three_class_scribbles(truth)
    scribbles[scribbles == 2] = 0
    session = SegmentationSession("rgb")
    session.set_image(image)
    out = session.segment(scribbles, preset="seed")
    assert set(np.unique(out)) <= {1, 3}
    assert np.all(out[scribbles == 1] == 1) and np.all(out[scribbles == 3] == 3)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("backbone", BACKBONES)
def test_single_pixel_scribbles(backbone, preset):
    """One click per class (a one-pixel scribble) is valid input for every preset."""
    image, truth = disk_image(channels=3)
    scribbles = np.zeros(truth.shape, np.uint8)
    scribbles[32, 40] = 1
    scribbles[2, 2] = 2
    session = SegmentationSession(backbone)
    session.set_image(image)
    out = session.segment(scribbles, preset=preset)
    assert out.shape == truth.shape
    assert out[32, 40] == 1 and out[2, 2] == 0


def test_labels_above_255_give_uint16():
    """labels_from_index keeps large class values (uint16); scribbles above 63 are refused at the boundary."""
    out = labels_from_index(np.array([[0, 1, 2]]), np.array([1, 2, 300]))
    assert out.dtype == np.uint16 and out.tolist() == [[1, 0, 300]]
    image, truth = three_class_image()
    scribbles = three_class_scribbles(truth).astype(np.uint16)
    scribbles[scribbles == 3] = 300
    session = SegmentationSession("rgb")
    session.set_image(image)
    with pytest.raises(ValueError, match="convert"):
        session.segment(scribbles, preset="seed")


def test_labels_from_index():
    np.testing.assert_array_equal(labels_from_index(np.array([[0, 1, 2]]), np.array([1, 2, 3])), [[1, 0, 3]])
    np.testing.assert_array_equal(labels_from_index(np.array([[1, 0]]), np.array([1, 2])), [[0, 1]])
    assert labels_from_index(np.array([0, 1]), np.array([2, 256])).dtype == np.uint16


@pytest.mark.parametrize("iterations", [0, 2])
def test_iterations(iterations):
    image, truth = disk_image(channels=3)
    session = SegmentationSession("rgb")
    session.set_image(image)
    out = session.segment(disk_scribbles(truth), iterations=iterations)
    assert iou(out == 1, truth) >= 0.9


def test_segment_image_matches_session():
    image, truth = disk_image(channels=3, seed=2)
    scribbles = disk_scribbles(truth)
    session = SegmentationSession("rgb")
    session.set_image(image)
    np.testing.assert_array_equal(
        segment_image(image, scribbles, backbone="rgb", preset="seed"), session.segment(scribbles, preset="seed")
    )


def test_non_contiguous_image_view():
    image, truth = disk_image(channels=3, seed=4)
    view = image[:, ::-1]
    scribbles = disk_scribbles(truth[:, ::-1])
    a = segment_image(view, scribbles, backbone="rgb", preset="seed")
    b = segment_image(np.ascontiguousarray(view), scribbles, backbone="rgb", preset="seed")
    np.testing.assert_array_equal(a, b)
    assert iou(a == 1, truth[:, ::-1]) >= 0.9


# --------------------------------------------------------------------------- feature cache
@pytest.fixture
def counted_session():
    session = SegmentationSession("classic", sigmas=(1.0,), cache_size=2)
    session.extractor.defer_features = False  # these tests count extractions at set_image
    calls = []
    original = session.extractor.extract

    def counting(image, progress=None, cancel=None):
        calls.append(image.shape)
        return original(image, progress=progress, cancel=cancel)

    session.extractor.extract = counting
    return session, calls


def test_same_image_is_not_recomputed(counted_session):
    session, calls = counted_session
    a, _ = disk_image(seed=0)
    first = session.set_image(a)
    second = session.set_image(a.copy())  # same content, another array
    assert len(calls) == 1
    assert second is first


def test_different_image_is_recomputed_and_lru(counted_session):
    session, calls = counted_session
    a, _ = disk_image(seed=0)
    b, _ = disk_image(seed=1)
    c, _ = disk_image(seed=2)
    session.set_image(a)
    session.set_image(b)
    assert len(calls) == 2
    session.set_image(a)  # still cached (cache_size=2)
    assert len(calls) == 2
    session.set_image(c)  # evicts b, the least recently used
    assert len(calls) == 3
    session.set_image(a)
    assert len(calls) == 3
    session.set_image(b)
    assert len(calls) == 4
    # a tiny change in the data is a different image
    a2 = a.copy()
    a2[0, 0, 0] ^= 1
    session.set_image(a2)
    assert len(calls) == 5


def test_segment_does_not_recompute_features(counted_session, monkeypatch):
    session, calls = counted_session
    image, truth = disk_image()
    scribbles = disk_scribbles(truth)
    session.set_image(image)
    sq_calls = []
    original = graphcut.feature_sqdiffs
    monkeypatch.setattr(graphcut, "feature_sqdiffs", lambda *a, **k: sq_calls.append(1) or original(*a, **k))
    session.segment(scribbles, preset="seed")
    session.segment(scribbles, preset="seed")
    assert len(calls) == 1
    assert len(sq_calls) == 1  # the n-links of one (preset, lam, sigma) are cached too
    session.segment(scribbles, preset="seed", lam=2.5)
    assert len(sq_calls) == 2


def test_reset_image(counted_session):
    session, calls = counted_session
    image, truth = disk_image()
    session.set_image(image)
    assert session.is_image_set
    session.reset_image()
    assert not session.is_image_set
    with pytest.raises(RuntimeError, match="set_image"):
        session.segment(disk_scribbles(truth))
    session.set_image(image)
    assert len(calls) == 2


def test_image_key_depends_on_content_dtype_and_params():
    a = np.zeros((4, 4), np.uint8)
    assert image_key(a, "rgb", {}) == image_key(a.copy(), "rgb", {})
    assert image_key(a, "rgb", {}) != image_key(a.astype(np.uint16), "rgb", {})
    assert image_key(a, "rgb", {}) != image_key(a.reshape(2, 8), "rgb", {})
    assert image_key(a, "rgb", {}) != image_key(a, "classic", {})
    assert image_key(a, "classic", {"s": 1}) != image_key(a, "classic", {"s": 2})


# --------------------------------------------------------------------------- errors
def test_segment_before_set_image():
    with pytest.raises(RuntimeError, match="set_image"):
        SegmentationSession("rgb").segment(np.ones((4, 4), np.uint8))


@pytest.fixture(scope="module")
def ready_session():
    image, truth = disk_image(channels=3)
    session = SegmentationSession("rgb")
    session.set_image(image)
    return session, disk_scribbles(truth)


@pytest.mark.parametrize("lam", [0, -1.0, np.nan, np.inf])
def test_bad_lambda(ready_session, lam):
    session, scribbles = ready_session
    with pytest.raises(ValueError, match="lambda"):
        session.segment(scribbles, lam=lam)


@pytest.mark.parametrize("sigma", [0, -0.5, np.inf])
def test_bad_sigma(ready_session, sigma):
    session, scribbles = ready_session
    with pytest.raises(ValueError, match="sigma"):
        session.segment(scribbles, sigma=sigma)


def test_non_numeric_lambda(ready_session):
    session, scribbles = ready_session
    with pytest.raises(TypeError, match="lambda"):
        session.segment(scribbles, lam="strong")


def test_bad_preset(ready_session):
    session, scribbles = ready_session
    with pytest.raises(ValueError) as info:
        session.segment(scribbles, preset="fast")
    msg = str(info.value)
    assert "'fast'" in msg and all(p in msg for p in PRESETS)


def test_bad_iterations(ready_session):
    session, scribbles = ready_session
    with pytest.raises(ValueError, match="iterations"):
        session.segment(scribbles, iterations=-1)


def test_bad_scribbles(ready_session):
    session, scribbles = ready_session
    with pytest.raises(ValueError, match="shape"):
        session.segment(scribbles[:-1])
    with pytest.raises(ValueError, match="only label 1"):
        session.segment((scribbles == 1).astype(np.uint8))
    with pytest.raises(ValueError, match="empty"):
        session.segment(np.zeros_like(scribbles))


def test_explicit_lambda_and_sigma_work(ready_session):
    session, scribbles = ready_session
    out = session.segment(scribbles, lam=2.0, sigma=0.5)
    assert out.shape == scribbles.shape


@pytest.mark.parametrize("bad", [np.zeros((5,)), np.zeros((4, 4, 2)), np.full((4, 4), np.nan)])
def test_bad_images(bad):
    with pytest.raises(ValueError, match="image"):
        SegmentationSession("rgb").set_image(bad)


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        SegmentationSession("vgg")


def test_segment_image_checks_scribbles_before_features():
    image, _ = disk_image()
    with pytest.raises(ValueError, match="shape"):
        segment_image(image, np.zeros((3, 3), np.uint8), backbone="rgb")


# --------------------------------------------------------------------------- cancel and progress
def test_cancel_before_set_image(counted_session):
    session, calls = counted_session
    image, _ = disk_image()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        session.set_image(image, cancel=token)
    assert calls == [] and not session.is_image_set
    session.set_image(image)  # nothing half-finished was cached
    assert len(calls) == 1


def test_cancel_during_feature_extraction():
    image, _ = disk_image()
    session = SegmentationSession("classic")
    token = CancelToken()
    seen = []

    def progress(done, total, message):
        seen.append(done)
        token.cancel()  # the user presses Cancel as soon as work starts

    with pytest.raises(Cancelled):
        session.set_image(image, progress=progress, cancel=token)
    assert seen and not session.is_image_set


def test_cancel_before_segment(ready_session):
    session, scribbles = ready_session
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        session.segment(scribbles, cancel=token)


def test_cancel_segment_image():
    image, truth = disk_image()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        segment_image(image, disk_scribbles(truth), backbone="classic", cancel=token)


def test_progress_is_reported():
    image, truth = disk_image()
    session = SegmentationSession("classic")
    calls = []

    def progress(done, total, message):
        calls.append((done, total, message))

    session.set_image(image, progress=progress)
    assert len(calls) >= 2
    assert all(isinstance(m, str) and 0 <= d <= t for d, t, m in calls)
    assert calls[-1][0] == calls[-1][1]
    calls.clear()
    session.segment(disk_scribbles(truth), progress=progress)
    assert calls and calls[0][0] == 0 and calls[-1][0] == calls[-1][1]


def test_backbone_appearance_channels_join_the_default_mixture():
    """A stride-1 backbone can declare leading channels for the colour mixture (the saliency backbone does)."""
    from napari_deepseg.core.features import _REGISTRY, register_backbone
    from napari_deepseg.core.features.base import FeatureExtractor, FeatureMap

    rng = np.random.default_rng(0)
    rows, cols = 60, 80
    truth = np.zeros((rows, cols), bool)
    truth[15:45, 20:60] = True
    image = rng.uniform(0.45, 0.55, (rows, cols, 3)).astype(np.float32)  # colour says nothing

    class Cue(FeatureExtractor):
        name = "test-cue"
        appearance_channels = 1

        def params(self):
            return {}

        def _extract(self, img, progress, cancel):
            cue = np.where(truth, 1.0, -1.0).astype(np.float32)[..., None] * 30.0
            return FeatureMap(np.concatenate([cue, img], axis=-1), 1, img.shape[:2])

    register_backbone("test-cue", Cue)
    try:
        seeds = np.zeros((rows, cols), np.uint8)
        seeds[28:32, 38:42] = 1
        seeds[0, :] = 2
        with_cue = SegmentationSession("test-cue")
        with_cue.set_image(image)
        without = SegmentationSession("rgb")
        without.set_image(image)
        a = iou(with_cue.segment(seeds, lam=5, multilevel=False) == 1, truth)
        b = iou(without.segment(seeds, lam=5, multilevel=False) == 1, truth)
        assert a > 0.95 and b < 0.2  # colour alone cannot find it
    finally:
        _REGISTRY.pop("test-cue", None)


def test_prepare_does_the_image_level_work_and_changes_no_result():
    from napari_deepseg.core.cut import pyramid

    image, truth = disk_image((330, 340))  # above the coarse-to-fine size
    assert image.shape[0] * image.shape[1] >= pyramid.MULTILEVEL_MIN_PIXELS
    scribbles = disk_scribbles(truth)
    plain = SegmentationSession("classic")
    plain.set_image(image)
    expected = plain.segment(scribbles)
    session = SegmentationSession("classic")
    calls = []
    entry = session.prepare(image, progress=lambda d, t, m: calls.append((d, t, m)))
    assert entry.appearance is not None and entry.coarse is not None  # the mixture, the pyramid
    assert entry.coarse.nlinks and entry.auto_sigma is not None  # coarsest n-links, band edge σ
    assert any("mixture" in m for _, _, m in calls) and calls[-1][0] == calls[-1][1]
    np.testing.assert_array_equal(session.segment(scribbles), expected)


def test_prepare_can_be_cancelled():
    image, _ = disk_image((330, 340))
    session = SegmentationSession("classic")
    token = CancelToken()
    session.set_image(image)
    token.cancel()
    with pytest.raises(Cancelled):
        session.prepare_default(cancel=token)
    with pytest.raises(RuntimeError, match="set_image"):
        SegmentationSession("classic").prepare_default()


def test_progress_of_a_coarse_to_fine_cut_names_its_levels():
    image, truth = disk_image((330, 340))
    session = SegmentationSession("classic")
    session.set_image(image)
    calls = []
    session.segment(disk_scribbles(truth), progress=lambda d, t, m: calls.append((d, t, m)))
    levels = [(d, t, m) for d, t, m in calls if "level" in m]
    assert levels and "level 1 of" in levels[0][2] and "full resolution" in levels[-1][2]
    # the second cut for the found star centres is said (about 2 s on the coarsest level of a large image)
    assert sum("star centres" in m for _, _, m in levels) == 1
    dones = [d for d, t, _ in levels]
    assert dones == sorted(dones) and all(d < t for d, t, _ in levels)


def test_a_cancel_stops_the_palette_within_a_strip(monkeypatch):
    """A neighbour's preparation cancelled by a cut stops inside the palette's loop (5.7 s at 25 MP), not after it;
    the session keeps no half-built image and builds it whole on the next call."""
    from napari_deepseg.core.cut import palette

    monkeypatch.setattr(palette, "STRIP_PIXELS", 10_000)  # 200 x 200: four strips
    image = np.random.default_rng(0).random((200, 200, 3)).astype(np.float32)
    token, strips_read = CancelToken(), []
    quantise = palette._quantise

    def read_then_cancel(*args):
        strips_read.append(1)
        token.cancel()  # the cut arrives while the first strip is read
        return quantise(*args)

    monkeypatch.setattr(palette, "_quantise", read_then_cancel)
    session = SegmentationSession("classic")
    with pytest.raises(Cancelled):
        session.set_image(image, cancel=token)
    assert len(strips_read) == 1
    assert not session.is_image_set
    monkeypatch.setattr(palette, "_quantise", quantise)
    entry = session.set_image(image)
    assert entry.palette.ids.shape == (200, 200)
