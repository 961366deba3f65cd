"""Fingerprints of every mask the protocols give: a refactor that keeps behaviour keeps them bit for bit.

Usage::

    python benchmarks/fingerprint.py --json before.json [--parts scribbles clicks box points volume large]
    python benchmarks/fingerprint.py --json after.json --compare before.json

Each part runs a protocol of ``docs/benchmarks.md`` and records the SHA-1 of every mask it
produces (the scribble cut of each GrabCut photo and set; every click's and box's mask of the
click and box protocols on GrabCut and Berkeley; the ``points-graphcut`` engine's clicks on the
first GrabCut photos; the 3-D and per-plane cuts of a 96×256×256 synthetic volume; a 25 MP
mosaic of Berkeley photos cut coarse to fine). ``--compare`` lists every mask whose hash changed
and exits 1 when any did. About 9 minutes on a 2-core machine for all parts (``large``, about 2 GB,
included), 22 minutes on a busy one. The reference is ``docs/benchmarks/fingerprint.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _data import datasets_dir, grabcut_scribble_items  # noqa: E402

PARTS = ("scribbles", "clicks", "box", "points", "volume", "large")


def digest(mask) -> str:
    """SHA-1 of a mask's shape, dtype and bytes."""
    a = np.ascontiguousarray(np.asarray(mask))
    h = hashlib.sha1(f"{a.shape}{a.dtype}".encode())
    h.update(a.tobytes())
    return h.hexdigest()[:16]


class Recorder:
    """Wraps a click method so that every mask it returns is hashed under ``prefix/stem/k``."""

    def __init__(self, method, out: dict):
        self.method, self.out, self.key, self.count = method, out, "", 0
        self.takes_box = getattr(method, "takes_box", False)
        self.name = method.name

    def start(self, key: str):
        self.key, self.count = key, 0

    def set_image(self, image):
        return self.method.set_image(image)

    def _keep(self, mask):
        self.out[f"{self.key}/{self.count}"] = digest(np.asarray(mask, bool))
        self.count += 1
        return mask

    def predict(self, clicks, *a, **k):
        return self._keep(self.method.predict(clicks, *a, **k))

    def predict_box(self, box, clicks=(), *a, **k):
        return self._keep(self.method.predict_box(box, clicks, *a, **k))


def scribbles(out: dict):
    from napari_deepseg.core import SegmentationSession

    for name in ("scribbles-set-1", "scribbles-set-2"):
        for stem, image, _mask, strokes in grabcut_scribble_items(name):
            session = SegmentationSession("classic")
            session.set_image(image)
            out[f"scribbles/{name}/{stem}"] = digest(session.segment(strokes))


def _clicks(out: dict, protocol: str, method_name: str, datasets, limit=None, max_clicks=20):
    from napari_deepseg.core.evaluation.benchmark import dataset_items, run_box_protocol, run_click_protocol
    from napari_deepseg.core.prompts import get_click_method

    rec = Recorder(get_click_method(method_name), out)
    for ds in datasets:
        for item in dataset_items(datasets_dir() / ds, limit=limit):
            image, truth = item.load()
            rec.start(f"{protocol}/{method_name}/{ds}/{item.stem}")
            if protocol == "box":
                run_box_protocol(rec, image, truth, max_clicks=max_clicks)
            else:
                run_click_protocol(rec, image, truth, max_clicks=max_clicks)


def clicks(out: dict):
    _clicks(out, "clicks", "graphcut", ("grabcut", "berkeley"))


def box(out: dict):
    _clicks(out, "box", "graphcut", ("grabcut", "berkeley"))


def points(out: dict):
    _clicks(out, "clicks", "points-graphcut", ("grabcut",), limit=10, max_clicks=5)


def volume(out: dict):
    from napari_deepseg.core.cut.volume import VolumeSession

    rng = np.random.default_rng(0)
    shape = (96, 256, 256)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    blob = ((z - 48) / 30.0) ** 2 + ((y - 128) / 80.0) ** 2 + ((x - 120) / 70.0) ** 2 < 1
    blob |= ((z - 40) / 20.0) ** 2 + ((y - 90) / 40.0) ** 2 + ((x - 170) / 50.0) ** 2 < 1
    vol = np.where(blob, 150.0, 80.0) + rng.normal(0, 20, shape)
    vol = np.clip(vol, 0, 255).astype(np.uint8)
    strokes = np.zeros(shape, np.uint8)
    for p in (30, 48, 66):
        strokes[p, 120:136, 100:140] = 1
        strokes[p, 5:10, :] = 2
        strokes[p, -10:-5, :] = 2
    for mode in ("3d", "planes"):
        for multilevel in (None, True):
            session = VolumeSession()
            session.set_image(vol, spacing=(2.0, 1.0, 1.0))
            labels = session.segment(strokes, mode=mode, multilevel=multilevel)
            out[f"volume/{mode}/{multilevel}"] = digest(labels)


def large(out: dict):
    from _photos import photo_mosaic  # noqa: E402

    from napari_deepseg.core import SegmentationSession

    image, _mask, strokes = photo_mosaic(5)
    session = SegmentationSession("classic")
    session.set_image(image)
    out["large/mosaic25"] = digest(session.segment(strokes))


def compare(new: dict, old: dict) -> int:
    changed = sorted(k for k in old if k in new and new[k] != old[k])
    missing = sorted(set(old) - set(new))
    for k in changed:
        print(f"changed: {k}")
    if missing:
        print(f"not run now: {len(missing)} masks (e.g. {missing[0]})")
    print(f"{len(changed)} of {len(set(old) & set(new))} masks changed")
    return 1 if changed else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--json", required=True, help="write {mask key: hash} here")
    ap.add_argument("--compare", default=None, metavar="JSON", help="a fingerprint to compare with")
    args = ap.parse_args(argv)
    out, seconds = {}, {}
    for part in args.parts:
        t0, before = time.perf_counter(), len(out)
        globals()[part](out)
        seconds[part] = round(time.perf_counter() - t0, 1)
        print(f"{part}: {len(out) - before} masks, {seconds[part]} s", flush=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)
    if args.compare:
        with open(args.compare) as f:
            sys.exit(compare(out, json.load(f)))


if __name__ == "__main__":
    main()
