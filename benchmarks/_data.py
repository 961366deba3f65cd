"""Locate and read the public benchmark datasets in ``../shared/datasets``."""

from __future__ import annotations

import os
from pathlib import Path

from napari_deepseg.core.io.files import read_image, read_labels

ROOT = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    """``$NAPARI_DEEPSEG_DATASETS`` or ``../shared/datasets`` beside the checkout."""
    env = os.environ.get("NAPARI_DEEPSEG_DATASETS")
    return Path(env) if env else ROOT.parent / "shared" / "datasets"


def grabcut_scribble_items(scribble_set: str):
    """Yield ``(stem, image, mask, scribbles)`` for one GrabCut scribble set."""
    base = datasets_dir() / "grabcut"
    for anno in sorted((base / scribble_set).glob("*-anno.png")):
        stem = anno.name[: -len("-anno.png")]
        image_path = next(p for p in (base / "images").glob(stem + ".*"))
        mask_path = next(p for p in (base / "masks").glob(stem + ".*"))
        yield stem, read_image(image_path), read_labels(mask_path), read_labels(anno)
