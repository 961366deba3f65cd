"""Time, peak memory and IoU of the scribble cut on large natural photographs (issue 13).

Usage::

    python benchmarks/photo_scaling.py [--runs mosaic:25:classic upscaled:64:classic ...] [--json OUT]

Each run is ``KIND:MP:FEATURES``:

* ``mosaic``: Berkeley photos, each upscaled (bicubic) to 1000 x 1000, on a
  ``sqrt(MP)`` x ``sqrt(MP)`` grid (4, 16, 25 or 64 MP), strokes from each
  photo's eroded mask (``_photos.photo_mosaic``);
* ``upscaled``: one GrabCut photo (``bool``) upscaled to MP megapixels, strokes
  from its eroded mask drawn at the photo's size (``_photos.upscaled_photo``).

The parent writes image, mask and strokes to ``.npy`` files; a child process per
run loads them (the baseline of its memory), then times

1. the first result: ``SegmentationSession(FEATURES).set_image`` + ``prepare_default``
   + ``segment`` (what the CLI does, nothing prepared beforehand),
2. an update: one more background stroke (a 3-pixel line across the top of
   the image), ``segment`` again,

and reports its resident memory high-water mark (``VmHWM``: the whole process,
image included), the IoU of the first result with the mask, and a 1000-px
picture of the result (``--pictures DIR``) to check for block or tile artefacts.
``resnet50`` uses randomly initialised weights saved to a temporary file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import hwm_mb  # noqa: E402


def _child(args) -> None:
    from napari_deepseg.core import SegmentationSession

    image = np.load(args.image)
    truth = np.load(args.mask)
    strokes = np.load(args.strokes)
    base = hwm_mb()
    params = {}
    if args.features == "resnet50":
        params = {"weights": args.weights, "device": "cpu"}
    session = SegmentationSession(args.features, **params)
    t0 = time.perf_counter()
    session.set_image(image)
    t1 = time.perf_counter()
    session.prepare_default()
    t2 = time.perf_counter()
    mask = session.segment(strokes)
    t3 = time.perf_counter()
    more = strokes.copy()
    line = more[3:6, 10:-10]
    line[line == 0] = 2
    session.segment(more)
    t4 = time.perf_counter()
    pred = mask == 1
    out = {"set_image_s": t1 - t0, "prepare_s": t2 - t1, "cut_s": t3 - t2, "first_s": t3 - t0,
           "update_s": t4 - t3, "iou": float((pred & truth).sum() / max(1, (pred | truth).sum())),
           "peak_mb": hwm_mb(), "image_mb": base}
    if args.picture:
        from PIL import Image

        side = 1000
        Image.fromarray(pred.astype(np.uint8) * 255).resize((side, side * pred.shape[0] // pred.shape[1]),
                                                            Image.BILINEAR).save(args.picture)
    print(json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["mosaic:4:classic", "mosaic:16:classic", "mosaic:25:classic",
                                                 "upscaled:25:classic", "upscaled:64:classic"])
    ap.add_argument("--json", default=None)
    ap.add_argument("--pictures", default=None, help="folder for a small picture of every result")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("image", "mask", "strokes", "features", "weights", "picture"):
        ap.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)
    from _photos import photo_mosaic, upscaled_photo

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "resnet50-random.pth"
        for run in args.runs:
            kind, mp, features = run.split(":")
            mp = float(mp)
            if kind == "mosaic":
                image, truth, strokes = photo_mosaic(int(round(np.sqrt(mp))))
            else:
                image, truth, strokes = upscaled_photo(mp)
            for name, arr in (("image", image), ("mask", truth), ("strokes", strokes)):
                np.save(tmp / f"{name}.npy", arr)
            del image, truth, strokes
            if features == "resnet50" and not weights.exists():
                import torch
                from torchvision.models import resnet50

                torch.save(resnet50(weights=None).state_dict(), weights)
            cmd = [sys.executable, __file__, "--child", "--image", str(tmp / "image.npy"), "--mask",
                   str(tmp / "mask.npy"), "--strokes", str(tmp / "strokes.npy"), "--features", features,
                   "--weights", str(weights)]
            if args.pictures:
                Path(args.pictures).mkdir(parents=True, exist_ok=True)
                cmd += ["--picture", str(Path(args.pictures) / f"{kind}_{mp:g}mp_{features}.png")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                print(f"{run}: failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                results.append({"run": run, "error": proc.stderr.strip()[-500:]})
                continue
            out = {"run": run, "kind": kind, "megapixels": mp, "features": features,
                   **json.loads(proc.stdout.strip().splitlines()[-1])}
            results.append(out)
            print(f"{run}: first {out['first_s']:.1f} s (set_image {out['set_image_s']:.1f}, prepare "
                  f"{out['prepare_s']:.1f}, cut {out['cut_s']:.1f}), update {out['update_s']:.2f} s, peak "
                  f"{out['peak_mb'] / 1024:.2f} GB, IoU {out['iou']:.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
