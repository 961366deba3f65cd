"""Scribbles that hold grey-mask values (0/128/255) or are a red/blue drawing: refused with the way to convert."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_deepseg.cli import main
from napari_deepseg.core.io.files import read_labels
from napari_deepseg.core.utils.validation import MAX_SCRIBBLE_LABEL, check_scribbles


def _grey_scribbles():
    s = np.zeros((20, 24), np.uint8)
    s[8:12, 10:14] = 255
    s[0:2, :] = 128
    return s


def test_grey_mask_values_are_refused_with_a_conversion():
    with pytest.raises(ValueError) as info:
        check_scribbles(_grey_scribbles(), (20, 24))
    msg = str(info.value)
    assert "\n" not in msg and "128, 255" in msg and "grey mask" in msg
    assert "1 = object" in msg and "2 = background" in msg and "numpy.select" in msg and "palette PNG" in msg


def test_a_single_grey_value_is_refused_too():
    s = np.zeros((6, 7), np.uint8)
    s[2:4, 2:4] = 255
    with pytest.raises(ValueError, match="grey mask"):
        check_scribbles(s, (6, 7))


def test_labels_up_to_the_limit_are_classes():
    s = np.zeros((6, 7), np.uint16)
    s[0, 0], s[1, 1], s[2, 2] = 1, 2, MAX_SCRIBBLE_LABEL
    assert set(np.unique(check_scribbles(s, (6, 7)))) == {0, 1, 2, MAX_SCRIBBLE_LABEL}
    s[3, 3] = MAX_SCRIBBLE_LABEL + 1
    with pytest.raises(ValueError, match="grey mask"):
        check_scribbles(s, (6, 7))


def _red_blue_drawing(path, alpha=False):
    rgb = np.zeros((20, 24, 4 if alpha else 3), np.uint8)
    rgb[8:12, 10:14, 0] = 255  # red object strokes
    rgb[0:2, :, 2] = 255  # blue background strokes
    if alpha:
        rgb[..., 3] = 255
    Image.fromarray(rgb).save(path)
    return rgb


@pytest.mark.parametrize("alpha", [False, True])
def test_red_blue_drawing_is_refused_with_the_conversion(tmp_path, alpha):
    _red_blue_drawing(tmp_path / "s.png", alpha)
    with pytest.raises(ValueError) as info:
        read_labels(tmp_path / "s.png")
    msg = str(info.value)
    assert "\n" not in msg and "colour picture" in msg and "first channel" in msg and "48 painted pixels" in msg
    assert "palette PNG" in msg and "1 = object" in msg and "Scribble files" in msg


def test_grey_saved_as_rgb_still_reads_its_first_channel(tmp_path):
    s = np.zeros((6, 7), np.uint8)
    s[1, 1], s[4, 5] = 1, 2
    Image.fromarray(np.dstack([s, s, s])).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_labels(tmp_path / "g.png"), s)


def test_readme_conversion_recipe_works(tmp_path):
    """The README's recipe turns the red/blue drawing into 0/1/2 scribbles."""
    rgb = _red_blue_drawing(tmp_path / "s.png")
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    labels = np.select([(r > 127) & (b < 128), (b > 127) & (r < 128)], [1, 2]).astype(np.uint8)
    assert set(np.unique(check_scribbles(labels, (20, 24)))) == {0, 1, 2}
    assert np.count_nonzero(labels == 1) == 16 and np.count_nonzero(labels == 2) == 48


def test_segment_command_refuses_both_in_one_line(tmp_path, capsys):
    image = np.zeros((20, 24, 3), np.uint8)
    image[6:14, 8:16] = 200
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(_grey_scribbles()).save(tmp_path / "grey.png")
    _red_blue_drawing(tmp_path / "rgb.png")
    for scribbles, words in (("grey.png", "grey mask"), ("rgb.png", "colour picture")):
        code = main(["segment", str(tmp_path / "img.png"), "--scribbles", str(tmp_path / scribbles), "-o",
                     str(tmp_path / "out.png")])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out.png").exists()
