"""The default pipeline on real GrabCut images with their published scribbles.

Reads ``$NAPARI_DEEPSEG_DATASETS`` or ``<repo>/../shared/datasets`` (see its
README); skips with a clear reason when the data are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.io.files import read_image, read_labels
from napari_deepseg.core.evaluation.metrics import iou

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

REPO = Path(__file__).resolve().parents[1]
#: a small, a portrait and a landscape image with the denser scribble set
CASES = [("teddy", "scribbles-set-2"), ("person1", "scribbles-set-2"), ("cross", "scribbles-set-2")]


def datasets_dir() -> Path:
    env = os.environ.get("NAPARI_DEEPSEG_DATASETS")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def _one(folder: Path, stem: str) -> Path:
    found = sorted(folder.glob(stem + ".*"))
    if not found:
        pytest.skip(f"GrabCut file {folder / stem}.* is absent from {datasets_dir()}")
    return found[0]


@pytest.fixture(scope="module")
def grabcut():
    base = datasets_dir() / "grabcut"
    if not (base / "images").is_dir():
        pytest.skip(
            f"GrabCut dataset not found at {base} "
            "(set NAPARI_DEEPSEG_DATASETS to the folder holding grabcut/)"
        )
    return base


@pytest.mark.parametrize("stem, scribble_set", CASES)
def test_grabcut_scribbles_default_preset(grabcut, stem, scribble_set):
    image = read_image(_one(grabcut / "images", stem))
    mask = read_labels(_one(grabcut / "masks", stem))
    anno = grabcut / scribble_set / f"{stem}-anno.png"
    if not anno.is_file():
        pytest.skip(f"scribbles {anno} are absent")
    scribbles = read_labels(anno)
    assert image.ndim == 3 and image.shape[:2] == mask.shape == scribbles.shape
    assert set(np.unique(scribbles)) == {0, 1, 2}  # palette indices, not colours

    session = SegmentationSession()  # default backbone
    session.set_image(image)
    pred = session.segment(scribbles)  # default preset
    assert pred.shape == mask.shape
    assert np.all(pred[scribbles == 1] == 1) and np.all(pred[scribbles == 2] == 0)
    score = iou(pred == 1, mask, ignore=128)  # 128 = GrabCut's unknown band
    assert score > 0.5, f"{stem}: IoU {score:.3f}"
