"""The zarr feature cache (core/io/feature_cache.py), the session's use of it, and ``precompute`` / ``segment
--feature-cache`` on the command line. ResNet-50 runs use randomly initialised weights saved to a temporary
folder; nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from _synthetic import disk_image, disk_scribbles
from napari_deepseg.cli import main
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.io.feature_cache import (
    FORMAT_VERSION,
    cached_features,
    disk_key,
    load_features,
    save_features,
    store_path,
)
from napari_deepseg.core.features import FeatureMap
from napari_deepseg.core.features.resnet import ResNet50Features
from napari_deepseg.core.features.simple import ClassicFeatures, RGBFeatures

zarr = pytest.importorskip("zarr")
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random-resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return path


@pytest.fixture
def disk():
    image, truth = disk_image((72, 96), channels=3, seed=4)
    return image, truth


def _grid(rows=300, cols=280, ch=5, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, cols, ch)).astype(np.float32)


class _Counting:
    """Counts calls of an extractor class's ``_extract`` (and still runs it)."""

    def __init__(self, monkeypatch, cls):
        self.calls = 0
        original = cls._extract

        def counted(ex, *args):
            self.calls += 1
            return original(ex, *args)

        monkeypatch.setattr(cls, "_extract", counted)


# ============================================================================ the store
def test_round_trip_is_exact_chunked_and_compressed(tmp_path):
    fm = FeatureMap(_grid(), 8, (2395, 2233))
    store = save_features(tmp_path / "f.zarr", "k1", fm, {"backbone": "resnet50", "layers": ("layer2",)})
    back = load_features(store, "k1", (2395, 2233))
    np.testing.assert_array_equal(back.data, fm.data)
    assert (back.stride, back.image_shape) == (8, (2395, 2233))
    arr = zarr.open_group(str(store), mode="r")["k1"]["data"]
    assert arr.chunks[:2] == (256, 256) and arr.shape == fm.data.shape
    assert arr.compressors, "features are stored compressed"
    attrs = dict(zarr.open_group(str(store), mode="r")["k1"].attrs)
    assert attrs["key"] == "k1" and attrs["stride"] == 8 and attrs["image_shape"] == [2395, 2233]
    assert attrs["version"] == FORMAT_VERSION and attrs["info"]["layers"] == ["layer2"]


def test_misses_never_give_other_features(tmp_path):
    store = tmp_path / "f.zarr"
    assert load_features(store, "k1") is None  # no store yet
    save_features(store, "k1", FeatureMap(_grid(20, 30), 1, (20, 30)))
    save_features(store, "k2", FeatureMap(_grid(20, 30, seed=1), 1, (20, 30)))
    assert load_features(store, "k3") is None
    assert load_features(store, "k1", image_shape=(20, 31)) is None
    np.testing.assert_array_equal(load_features(store, "k2").data, _grid(20, 30, seed=1))
    # an entry whose attributes disagree with its name (or an interrupted write) is a miss
    group = zarr.open_group(str(store), mode="a")
    group["k1"].attrs["key"] = "k2"
    group["k2"].attrs["complete"] = False
    assert load_features(store, "k1") is None and load_features(store, "k2") is None


def test_cached_features_computes_once(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return FeatureMap(_grid(8, 9), 1, (8, 9))

    a = cached_features(tmp_path / "c.zarr", "k", (8, 9), compute)
    b = cached_features(tmp_path / "c.zarr", "k", (8, 9), compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(a.data, b.data)


def test_store_path_rules_and_bad_paths(tmp_path):
    assert store_path(tmp_path / "x.zarr") == tmp_path / "x.zarr"
    assert store_path(tmp_path).parent == tmp_path and store_path(tmp_path).suffix == ".zarr"
    file = tmp_path / "file.zarr"
    file.write_text("not a store")
    with pytest.raises(ValueError, match=r"file\.zarr is a file"):
        store_path(file)
    with pytest.raises(TypeError, match="feature_cache must be a folder or a .zarr path, got 3"):
        store_path(3)
    with pytest.raises(ValueError, match="is a file"):
        SegmentationSession("classic", feature_cache=file)
    junk = tmp_path / "junk.zarr"
    junk.mkdir()
    (junk / "zarr.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable zarr store"):
        load_features(junk, "k")


def test_disk_key_follows_the_weights_file(tmp_path):
    w = tmp_path / "w.pth"
    w.write_bytes(b"1234")
    before = disk_key("img", {"weights": str(w)})
    assert disk_key("img", {"weights": str(w)}) == before
    w.write_bytes(b"123456")  # another checkpoint under the same name
    assert disk_key("img", {"weights": str(w)}) != before
    assert disk_key("img", {"weights": ""}) != disk_key("other", {"weights": ""})


# ============================================================================ the session
def test_second_session_loads_instead_of_extracting(tmp_path, disk, monkeypatch):
    image, truth = disk
    counting = _Counting(monkeypatch, ClassicFeatures)
    store = tmp_path / "f.zarr"
    first = SegmentationSession("classic", feature_cache=store)
    ref = first.set_image(image).features  # classic features are computed on first use
    assert counting.calls == 1 and store.is_dir()
    second = SegmentationSession("classic", feature_cache=store)
    again = second.set_image(image).features
    assert counting.calls == 1
    np.testing.assert_array_equal(again.data, ref.data)
    seeds = disk_scribbles(truth)
    np.testing.assert_array_equal(second.segment(seeds, preset="seed"), first.segment(seeds, preset="seed"))


def test_other_image_or_parameters_miss(tmp_path, disk, monkeypatch):
    image, _ = disk
    counting = _Counting(monkeypatch, ClassicFeatures)
    store = tmp_path / "f.zarr"
    SegmentationSession("classic", feature_cache=store).set_image(image).features
    SegmentationSession("classic", feature_cache=store, sigmas=(1.0, 2.0)).set_image(image).features
    other = image.copy()
    other[0, 0] ^= 1  # one pixel differs
    fm = SegmentationSession("classic", feature_cache=store).set_image(other).features
    assert counting.calls == 3
    assert fm.data.shape[-1] == 30
    assert len(zarr.open_group(str(store), mode="r")) == 3


def test_lazy_image_hits_the_entry_of_the_same_numpy_image(tmp_path, disk, monkeypatch):
    da = pytest.importorskip("dask.array")
    image, _ = disk
    counting = _Counting(monkeypatch, RGBFeatures)
    store = tmp_path / "f.zarr"
    ref = SegmentationSession("rgb", feature_cache=store).set_image(image).features
    lazy = SegmentationSession("rgb", feature_cache=store).set_image(da.from_array(image, chunks=(32, 32, 3)))
    np.testing.assert_array_equal(lazy.features.data, ref.data)
    assert counting.calls == 1


def test_resnet50_features_cached_through_the_session(tmp_path, disk, random_weights, monkeypatch):
    image, _ = disk
    counting = _Counting(monkeypatch, ResNet50Features)
    store = tmp_path / "deep.zarr"
    params = dict(weights=random_weights, device="cpu")
    ref = SegmentationSession("resnet50", feature_cache=store, **params).set_image(image).features
    again = SegmentationSession("resnet50", feature_cache=store, **params).set_image(image).features
    assert counting.calls == 1
    assert again.stride == ref.stride == 8 and again.image_shape == (72, 96)
    np.testing.assert_array_equal(again.data, ref.data)
    SegmentationSession("resnet50", feature_cache=store, layers="layer4", **params).set_image(image)
    assert counting.calls == 2  # other layers: another entry


# ============================================================================ command line
def _files(tmp_path, disk):
    image, truth = disk
    img, scr = tmp_path / "disk.png", tmp_path / "scribbles.png"
    Image.fromarray(image).save(img)
    Image.fromarray(disk_scribbles(truth)).save(scr)
    return img, scr


@pytest.mark.parametrize("features", ["classic", "rgb"])
def test_precompute_then_segment_reads_the_cache(tmp_path, disk, capsys, monkeypatch, features):
    img, scr = _files(tmp_path, disk)
    store = tmp_path / "features.zarr"
    cls = {"classic": ClassicFeatures, "rgb": RGBFeatures}[features]
    counting = _Counting(monkeypatch, cls)
    assert main(["precompute", str(img), "--features", features, "-o", str(store)]) == 0
    err = capsys.readouterr().err
    assert f"{store}: {features} features 72x96x" in err and "stride 1" in err
    assert counting.calls == 1 and store.is_dir()
    out = tmp_path / "mask.png"
    assert main(["segment", str(img), "--scribbles", str(scr), "--features", features, "--preset", "seed",
                 "--feature-cache", str(store), "-o", str(out), "-q"]) == 0
    assert counting.calls == 1, "segment recomputed features that precompute stored"
    truth = disk[1]
    assert ((np.array(Image.open(out)) == 1) == truth).mean() > 0.95


def test_precompute_resnet50_random_weights(tmp_path, disk, capsys, random_weights, monkeypatch):
    img, scr = _files(tmp_path, disk)
    store = tmp_path / "deep.zarr"
    counting = _Counting(monkeypatch, ResNet50Features)
    opts = ["--features", "resnet50", "--weights", str(random_weights), "--device", "cpu", "--max-side", "0"]
    assert main(["precompute", str(img), *opts, "-o", str(store)]) == 0
    assert "resnet50 features 12x12x32 (rows x cols x channels) at stride 8" in capsys.readouterr().err
    assert main(["segment", str(img), "--scribbles", str(scr), *opts, "--feature-cache", str(store),
                 "-o", str(tmp_path / "m.png"), "-q"]) == 0
    assert counting.calls == 1
    # other options (the default max_side) are another entry, computed once more
    assert main(["segment", str(img), "--scribbles", str(scr), *opts[:-2], "--feature-cache", str(store),
                 "-o", str(tmp_path / "m2.png"), "-q"]) == 0
    assert counting.calls == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "{tmp}/f.npy"], "cannot write features to {tmp}/f.npy: use a path ending in .zarr"),
        (["-o", "{tmp}/file.zarr"], "feature cache {tmp}/file.zarr is a file, not a zarr store"),
        (["-o", "{tmp}/f.zarr", "--features", "rgb", "--weights", "w.pth"], "--weights is only used by pretrained"),
    ],
)
def test_precompute_errors_are_one_line(tmp_path, disk, args, message, capsys):
    img, _ = _files(tmp_path, disk)
    (tmp_path / "file.zarr").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["precompute", str(img), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("napari-deepseg: error:")
    assert message.replace("{tmp}", str(tmp_path)) in err


def test_precompute_missing_image_subprocess(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "napari_deepseg.cli", "precompute", str(tmp_path / "none.png"),
                           "-o", str(tmp_path / "f.zarr")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"napari-deepseg: error: image file not found: {tmp_path / 'none.png'}"]
    assert not (tmp_path / "f.zarr").exists()


def test_feature_cache_with_points_is_refused(tmp_path, disk, capsys):
    img, _ = _files(tmp_path, disk)
    pts = tmp_path / "p.csv"
    pts.write_text("row,col,positive\n36,48,1\n")
    assert main(["segment", str(img), "--points", str(pts), "--feature-cache", str(tmp_path / "f.zarr"),
                 "-o", str(tmp_path / "m.png")]) == 2
    assert "--feature-cache is used with --scribbles" in capsys.readouterr().err
