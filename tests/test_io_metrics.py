"""Reading/writing label images and the IoU metric."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_deepseg.core.io.files import read_image, read_labels, write_labels
from napari_deepseg.core.evaluation.metrics import iou


def _labels(max_value, shape=(13, 17), seed=0):
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 4, shape)
    lab[0, 0] = max_value
    return lab


@pytest.mark.parametrize("max_value, bits", [(2, 8), (255, 8), (256, 16), (65535, 16)])
def test_png_round_trip(tmp_path, max_value, bits):
    lab = _labels(max_value)
    path = write_labels(tmp_path / "sub" / "labels.png", lab)  # creates the folder
    assert path.is_file() and path.suffix == ".png"
    with Image.open(path) as im:
        assert (im.mode == "L") == (bits == 8)
    back = read_labels(path)
    assert back.shape == lab.shape
    np.testing.assert_array_equal(back.astype(np.int64), lab)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32])
def test_tiff_round_trip(tmp_path, dtype):
    lab = _labels(70000 if np.dtype(dtype).itemsize == 4 else 200).astype(dtype)
    path = write_labels(tmp_path / "labels.tif", lab)
    back = read_labels(path)
    assert back.dtype == lab.dtype
    np.testing.assert_array_equal(back, lab)


def test_png_rejects_labels_above_16_bit(tmp_path):
    with pytest.raises(ValueError, match="65535") as info:
        write_labels(tmp_path / "big.png", np.array([[0, 70000]]))
    assert "big.tif" in str(info.value)
    assert not (tmp_path / "big.png").exists()


def _palette_png(path, indices):
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    palette = [0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (256 * 3 - 12)
    im.putpalette(palette)
    im.save(path)


def test_palette_png_gives_indices(tmp_path):
    idx = np.zeros((8, 9), np.uint8)
    idx[1:3, 1:4] = 1
    idx[5:7, 2:8] = 2
    idx[0, 8] = 3
    path = tmp_path / "anno.png"
    _palette_png(path, idx)
    np.testing.assert_array_equal(read_labels(path), idx)
    # read as an image, the palette is applied
    rgb = read_image(path)
    assert rgb.shape == (8, 9, 3)
    np.testing.assert_array_equal(rgb[1, 1], [255, 0, 0])
    np.testing.assert_array_equal(rgb[5, 2], [0, 0, 255])


def test_colour_label_file_gives_first_channel(tmp_path):
    lab = np.zeros((5, 6, 3), np.uint8)
    lab[2:4, 2:4] = (2, 9, 9)
    path = tmp_path / "rgb-labels.png"
    Image.fromarray(lab).save(path)
    out = read_labels(path)
    assert out.shape == (5, 6)
    np.testing.assert_array_equal(out, lab[..., 0])


@pytest.mark.parametrize("mode, shape", [("RGB", (6, 7, 3)), ("L", (6, 7)), ("RGBA", (6, 7, 4))])
def test_read_image_modes(tmp_path, mode, shape):
    data = np.random.default_rng(1).integers(0, 256, shape).astype(np.uint8)
    path = tmp_path / f"img-{mode}.png"
    Image.fromarray(data, mode=mode).save(path)
    np.testing.assert_array_equal(read_image(path), data)


def test_read_image_tiff(tmp_path):
    import tifffile

    data = np.random.default_rng(2).random((5, 6)).astype(np.float32)
    tifffile.imwrite(str(tmp_path / "x.tiff"), data)
    np.testing.assert_array_equal(read_image(tmp_path / "x.tiff"), data)


@pytest.mark.parametrize("reader", [read_image, read_labels])
def test_missing_file(tmp_path, reader):
    with pytest.raises(ValueError, match="not found") as info:
        reader(tmp_path / "nothing.png")
    assert "nothing.png" in str(info.value)


@pytest.mark.parametrize("reader", [read_image, read_labels])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_corrupt_file(tmp_path, reader, suffix):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"definitely not an image")
    with pytest.raises(ValueError, match="cannot read") as info:
        reader(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)


# --------------------------------------------------------------------------- IoU
def test_iou_by_hand():
    assert iou([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(1 / 2)
    assert iou([1, 1, 1, 0], [0, 1, 1, 1]) == pytest.approx(2 / 4)
    assert iou([1, 0], [0, 1]) == 0.0
    assert iou([3, 0, 7], [1, 0, 255]) == 1.0  # any non-zero value is object
    assert iou(np.zeros(4), np.zeros(4)) == 1.0


def test_iou_ignore_band():
    pred = np.array([1, 1, 1, 0, 0, 1])
    truth = np.array([1, 0, 128, 128, 0, 255])
    # pixels where truth == 128 are left out: pred {0,1,5}, truth {0,5} -> 2/3
    assert iou(pred, truth, ignore=128) == pytest.approx(2 / 3)
    # without ignoring, 128 counts as object: pred {0,1,2,5}, truth {0,2,3,5} -> 3/5
    assert iou(pred, truth) == pytest.approx(3 / 5)
    # a band covering every disagreement gives a perfect score
    assert iou([1, 0, 1], [1, 128, 128], ignore=128) == 1.0


def test_iou_2d_and_symmetric():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True  # 16
    b[4:8, 4:8] = True  # 16, overlap 4
    assert iou(a, b) == pytest.approx(4 / 28)
    assert iou(a, b) == iou(b, a)


def test_iou_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        iou(np.zeros(3), np.zeros(4))
