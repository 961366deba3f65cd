"""napari's File > Open and File > Save through the plugin's npe2 reader and writer (``napari_deepseg._io``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_deepseg import _io
from napari_deepseg.core.io import files
from napari_deepseg.core.io.files import read_labels

REPO = Path(__file__).resolve().parents[1]
PLUGIN = "napari-deepseg"


def _datasets_dir() -> Path:
    env = os.environ.get("NAPARI_DEEPSEG_DATASETS")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def _palette_png(path: Path, labels: np.ndarray) -> Path:
    """A palette PNG as the GrabCut scribble sets are: index 1 red, 2 blue (colours napari's reader shows)."""
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    im.save(path)
    return path


def _scribbles(shape=(40, 60)) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[10:14, 5:30] = 1
    labels[30:33, 20:55] = 2
    return labels


# ------------------------------------------------------------------------------------------------ manifest
def test_manifest_declares_the_reader_and_the_png_writer():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_distribution(PLUGIN)
    manifest.validate_imports()
    (reader,) = [r for r in manifest.contributions.readers if r.command == "napari-deepseg.get_label_reader"]
    assert tuple(reader.filename_patterns) == _io.LABEL_FILE_PATTERNS and not reader.accepts_directories
    (writer,) = [w for w in manifest.contributions.writers if w.command == "napari-deepseg.write_labels_png"]
    assert writer.layer_types == ["labels"] and writer.filename_extensions == [".png"]


def test_npe2_validate_passes():
    from npe2.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["validate", "napari_deepseg"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


@pytest.mark.parametrize("name", ["cat-scribbles.png", "teddy-anno.png", "cat-mask.png", "tile_mask.tif",
                                  "x_labels.tiff", "CAT-MASK.PNG"])
def test_the_reader_takes_label_file_names(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    assert _io.get_label_reader(str(path)) is _io.read_label_file
    assert _io.get_label_reader([str(path)]) is _io.read_label_file


@pytest.mark.parametrize("name", ["photo.png", "mask.png", "masks.tif", "cat-mask.jpg", "cat-scribbles.png/"])
def test_the_reader_leaves_other_files_to_napari(tmp_path, name):
    path = tmp_path / name.rstrip("/")
    if name.endswith("/"):
        path.mkdir()
    else:
        path.write_bytes(b"")
    assert _io.get_label_reader(str(path)) is None
    assert _io.get_label_reader(str(tmp_path / "absent-mask.png")) is None
    assert _io.get_label_reader([str(tmp_path / "a-mask.png"), str(tmp_path / "b-mask.png")]) is None


def test_napari_offers_only_label_file_names_to_the_plugin(make_napari_viewer):
    from napari.plugins import _npe2

    make_napari_viewer()  # napari discovers its plugins
    assert PLUGIN in _npe2.get_readers("teddy-anno.png")
    assert PLUGIN in _npe2.get_readers("/data/cat-mask.tif")
    assert PLUGIN not in _npe2.get_readers("/data/photo.png")
    assert PLUGIN not in _npe2.get_readers("/data/photo.tif")


# ------------------------------------------------------------------------------------------------ reading
def test_a_palette_scribble_file_is_read_as_label_indices(tmp_path):
    labels = _scribbles()
    path = _palette_png(tmp_path / "cat-scribbles.png", labels)
    assert np.asarray(Image.open(path).convert("RGB")).shape == (40, 60, 3)  # what napari's own reader shows
    ((data, meta, kind),) = _io.read_label_file(str(path))
    assert kind == "labels" and meta["name"] == "cat-scribbles"
    np.testing.assert_array_equal(data, labels)


def test_a_float_file_is_refused_in_one_line(tmp_path):
    import tifffile

    path = tmp_path / "probability-mask.tif"
    tifffile.imwrite(path, np.random.default_rng(0).random((8, 8)).astype(np.float32))
    with pytest.raises(ValueError, match=r"float32 values, not labels") as err:
        _io.read_label_file(str(path))
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------ writing
@pytest.mark.parametrize("top, dtype", [(2, np.uint8), (255, np.uint8), (256, np.uint16), (65535, np.uint16)])
def test_the_png_writer_picks_8_or_16_bit(tmp_path, top, dtype):
    labels = np.zeros((5, 7), np.int32)
    labels[1, 2], labels[3, 4] = 1, top
    (written,) = _io.write_labels_png(str(tmp_path / "m-mask.png"), labels, {})
    back = np.asarray(Image.open(written))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, labels)
    assert [p.name for p in tmp_path.iterdir()] == ["m-mask.png"]  # no temporary file left


@pytest.mark.parametrize("data, error, match", [
    (np.zeros((4, 4), np.float32), TypeError, "dtype float32"),
    (np.full((4, 4), 70_000, np.int32), ValueError, "up to 70000 do not fit a PNG"),
    (np.full((4, 4), -1, np.int32), ValueError, "negative"),
    (np.zeros((2, 4, 4), np.uint8), ValueError, r"shape \(2, 4, 4\)"),
])
def test_the_png_writer_refuses_in_one_line_and_keeps_the_old_file(tmp_path, data, error, match):
    path = tmp_path / "old-mask.png"
    Image.fromarray(np.ones((3, 3), np.uint8)).save(path)
    with pytest.raises(error, match=match) as err:
        _io.write_labels_png(str(path), data, {})
    assert "\n" not in str(err.value)
    np.testing.assert_array_equal(read_labels(path), np.ones((3, 3)))
    assert [p.name for p in tmp_path.iterdir()] == ["old-mask.png"]


def test_the_png_writer_refuses_another_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"ending in \.png"):
        _io.write_labels_png(str(tmp_path / "m.jpg"), np.zeros((3, 3), np.uint8), {})


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "old-mask.png"
    Image.fromarray(np.ones((3, 3), np.uint8)).save(path)

    def broken(p, labels):  # a write cut half-way: part of a file under the temporary name
        Path(p).write_bytes(b"\x89PNG\r\n")
        raise OSError("disk full")

    monkeypatch.setattr(files, "write_labels", broken)
    with pytest.raises(OSError, match="disk full"):
        _io.write_labels_png(str(path), np.full((3, 3), 2, np.uint8), {})
    np.testing.assert_array_equal(read_labels(path), np.ones((3, 3)))
    assert [p.name for p in tmp_path.iterdir()] == ["old-mask.png"]


# ------------------------------------------------------------------------------------- in a real viewer
def test_viewer_opens_a_grabcut_palette_scribble_file_as_labels(make_napari_viewer):
    anno = _datasets_dir() / "grabcut" / "scribbles-set-1" / "teddy-anno.png"
    if not anno.is_file():
        pytest.skip(f"GrabCut scribbles {anno} are absent (set NAPARI_DEEPSEG_DATASETS to the folder holding "
                    "grabcut/)")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(anno), plugin=PLUGIN)
    assert layer._type_string == "labels" and layer.name == "teddy-anno"
    assert layer.data.ndim == 2 and set(np.unique(layer.data)) == {0, 1, 2}


def test_viewer_opens_a_palette_png_as_labels_not_colours(make_napari_viewer, tmp_path):
    labels = _scribbles()
    path = _palette_png(tmp_path / "cat-scribbles.png", labels)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin=PLUGIN)
    assert layer._type_string == "labels"
    np.testing.assert_array_equal(layer.data, labels)


def test_viewer_saves_a_labels_layer_as_png_and_reads_it_back(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    labels = _scribbles()
    labels[0, 0] = 7
    viewer.add_labels(labels, name="result")
    path = tmp_path / "result-mask.png"
    viewer.layers.save(str(path), selected=True)  # File > Save Selected Layers: napari picks the PNG writer
    np.testing.assert_array_equal(np.asarray(Image.open(path)), labels)
    (back,) = viewer.open(str(path), plugin=PLUGIN)
    assert back._type_string == "labels"
    np.testing.assert_array_equal(back.data, labels)


def test_viewer_saves_more_than_255_labels_as_16_bit(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    labels = np.arange(20 * 30, dtype=np.int32).reshape(20, 30)  # 600 objects
    viewer.add_labels(labels, name="objects")
    path = tmp_path / "objects-mask.png"
    viewer.layers.save(str(path), selected=True)
    assert Image.open(path).mode.startswith("I;16")
    (back,) = viewer.open(str(path), plugin=PLUGIN)
    np.testing.assert_array_equal(back.data, labels)


def test_file_open_leaves_photos_to_napari_and_asks_for_label_files(make_napari_viewer, tmp_path):
    from napari.errors import MultipleReaderError

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(photo)
    scribbles = _palette_png(tmp_path / "cat-scribbles.png", _scribbles())
    viewer = make_napari_viewer()
    # plugin=None is what File > Open and drag and drop do (a script's viewer.open uses napari's own reader)
    (layer,) = viewer.open(str(photo), plugin=None)  # no choice to make: the plugin is not offered this file
    assert layer._type_string == "image"
    with pytest.raises(MultipleReaderError) as choice:  # the GUI shows its "Choose reader" dialog
        viewer.open(str(scribbles), plugin=None)
    assert PLUGIN in choice.value.available_plugins
