"""Time and peak memory of feature extraction on a large image, tile by tile (issue 5, "Any size").

Usage::

    python benchmarks/features_memory.py                         # resnet50 at max_side 1024 and 0, 5000 x 5000
    python benchmarks/features_memory.py --side 5000 --runs resnet50:1024 resnet50:0 classic rgb --input zarr
    python benchmarks/features_memory.py --runs resnet50:0 --cache  # + loading the features back from a zarr cache

The parent writes a synthetic aerial scene (``samples.aerial_sample``) of
``--side`` x ``--side`` pixels as ``.npy`` (and as a zarr array with
``--input zarr``), and saves a randomly initialised ResNet-50 state dict to a
temporary folder (no download: the compute is the same as with pretrained
weights). Each run is one child process that:

1. imports the core, loads the network through the real code path
   (``extractor.load_model()``; ``import triton`` blocked as the CLI does) and opens the image: a numpy array loaded in
   memory (``--input numpy``, 75 MB for 25 MP RGB) or a lazy zarr array
   (``--input zarr``, read tile by tile); the resident high-water mark then is
   the baseline;
2. ``extractor.extract(image)`` (timed); ``VmHWM`` from ``/proc/self/status``
   after it is the peak of the whole process;
3. with ``--cache``: ``save_features`` to a zarr store, then ``load_features``
   (both timed).

A run is ``NAME`` or ``NAME:MAX_SIDE`` (resnet50's ``max_side``; 0 = full
resolution). Results go to stdout as one JSON object per run. Run ``uptime``
beside it: the machine may be shared. To measure older code, put its ``src``
first on ``PYTHONPATH`` (``git archive COMMIT src | tar -x -C /tmp/old``); an
extractor without ``reads_tiles`` is given ``as_float_image(image)``, as its
session did.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import hwm_mb as _hwm_mb  # noqa: E402


def _child(args) -> None:
    if "triton" not in sys.modules:  # as the CLI does (cli.main): torch runs without torch.compile's compiler
        sys.modules["triton"] = None
    from napari_deepseg.core import get_extractor

    name, _, max_side = args.run.partition(":")
    params = {}
    if name == "resnet50":
        params = {"weights": args.weights, "device": "cpu"}
        if max_side:
            params["max_side"] = int(max_side)
    ex = get_extractor(name, **params)
    if hasattr(ex, "load_model"):
        ex.load_model()
    if args.input == "zarr":
        import zarr

        image = zarr.open_array(args.image_zarr, mode="r")
    else:
        image = np.load(args.image_npy)
    legacy = not hasattr(ex, "reads_tiles")  # code before tiled inputs (e.g. a git archive on PYTHONPATH)
    if legacy:  # its session handed the extractor as_float_image(image), float32 (counted in the baseline)
        from napari_deepseg.core.utils.validation import as_float_image

        image = as_float_image(np.asarray(image))
    out = {"run": args.run, "input": args.input, "rows": int(image.shape[0]), "cols": int(image.shape[1]),
           "legacy_float_input": legacy, "baseline_mb": round(_hwm_mb())}
    t0 = time.perf_counter()
    fm = ex.extract(image)
    out["extract_s"] = round(time.perf_counter() - t0, 2)
    out["peak_mb"] = round(_hwm_mb())
    out.update(grid=list(fm.data.shape), stride=fm.stride, features_mb=round(fm.nbytes / 2**20, 1))
    if args.cache:
        from napari_deepseg.core.io.feature_cache import load_features, save_features

        store = Path(args.tmp) / f"{args.run.replace(':', '-')}.zarr"
        t0 = time.perf_counter()
        save_features(store, "bench", fm)
        out["cache_save_s"] = round(time.perf_counter() - t0, 2)
        size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        out["cache_disk_mb"] = round(size / 2**20, 1)
        t0 = time.perf_counter()
        back = load_features(store, "bench")
        out["cache_load_s"] = round(time.perf_counter() - t0, 2)
        out["cache_equal"] = bool(np.array_equal(back.data, fm.data))
        out["peak_after_cache_mb"] = round(_hwm_mb())
    print(json.dumps(out), flush=True)


def _random_resnet50(folder: Path) -> Path:
    import torch
    from torchvision.models import resnet50

    torch.manual_seed(0)
    path = folder / "random-resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=5000, help="image side in pixels (square RGB image)")
    ap.add_argument("--runs", nargs="+", default=["resnet50:1024", "resnet50:0"],
                    help="NAME or resnet50:MAX_SIDE (0 = full resolution)")
    ap.add_argument("--input", choices=("numpy", "zarr"), default="numpy",
                    help="the image as a loaded numpy array or a lazy zarr array on disk")
    ap.add_argument("--cache", action="store_true", help="also save to and load from a zarr feature cache")
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--image-npy", help=argparse.SUPPRESS)
    ap.add_argument("--image-zarr", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        _child(args)
        return
    from napari_deepseg.samples import aerial_sample

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image, _ = aerial_sample(shape=(args.side, args.side))
        npy, zpath = tmp / "image.npy", tmp / "image.zarr"
        np.save(npy, image)
        if args.input == "zarr":
            import zarr

            arr = zarr.open_array(str(zpath), mode="w", shape=image.shape, chunks=(1024, 1024, image.shape[2]),
                                  dtype=image.dtype)
            arr[...] = image
        del image
        weights = _random_resnet50(tmp) if any(r.startswith("resnet50") for r in args.runs) else ""
        for run in args.runs:
            cmd = [sys.executable, __file__, "--run", run, "--weights", str(weights), "--image-npy", str(npy),
                   "--image-zarr", str(zpath), "--input", args.input, "--tmp", str(tmp)]
            if args.cache:
                cmd.append("--cache")
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
            if proc.returncode:
                print(json.dumps({"run": run, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)
            else:
                print(proc.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
