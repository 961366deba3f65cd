"""``napari-deepseg demo --save-sample DIR``: the bundled samples as files the other commands read."""

from __future__ import annotations

import numpy as np

from napari_deepseg.cli import main
from napari_deepseg.core.io.files import read_image, read_labels


def test_save_sample_writes_images_and_scribbles(tmp_path, capsys):
    out = tmp_path / "samples"
    assert main(["demo", "--save-sample", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    assert names == ["aerial-scribbles.png", "aerial.png", "cat-scribbles.png", "cat.png"]
    assert stdout.split() == [str(out / n) for n in ("cat.png", "cat-scribbles.png", "aerial.png",
                                                      "aerial-scribbles.png")]
    assert "segment" in stderr
    for name in ("cat", "aerial"):
        image, scribbles = read_image(out / f"{name}.png"), read_labels(out / f"{name}-scribbles.png")
        assert image.ndim == 3 and image.shape[:2] == scribbles.shape
        assert set(np.unique(scribbles)) == {0, 1, 2}
    # ... and segment reads them as they are
    assert main(["segment", str(out / "cat.png"), "--scribbles", str(out / "cat-scribbles.png"), "-o",
                 str(tmp_path / "mask.png"), "-q"]) == 0
    mask = read_labels(tmp_path / "mask.png")
    assert 0.05 < (mask == 1).mean() < 0.9


def test_save_sample_into_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["demo", "--save-sample", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1


def test_aerial_strokes_give_roofs_without_wedges():
    """Unstroked roofs next to stroked ones are taken without a wedge of grass joining them (issue 15, item 17).

    Before, the star rays from the nearest stroke forced a strip of grass between
    them, and one roof lost a corner on a diagonal (IoU 0.806).
    """
    from scipy import ndimage as ndi

    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.evaluation.metrics import iou
    from napari_deepseg.samples import aerial_sample, roof_mask

    image, scribbles = aerial_sample()
    session = SegmentationSession("classic")
    session.set_image(image)
    mask = session.segment(scribbles) == 1
    roofs, _ = ndi.label(roof_mask())
    parts, m = ndi.label(mask, structure=np.ones((3, 3), bool))
    for k in range(1, m + 1):
        under = np.unique(roofs[parts == k])
        assert np.count_nonzero(under) <= 1, f"one object joins roofs {under[under > 0].tolist()}"
        assert np.count_nonzero(roofs[parts == k] == 0) <= 0.05 * np.count_nonzero(parts == k)  # no grass strip
    assert iou(mask, roof_mask()) > 0.83
