"""Local updates on large photographs: time of one corrective stroke, after the first result (issue 22).

Usage::

    python benchmarks/update_local.py [--runs mosaic:25 upscaled:16 upscaled:64] [--count 10]
        [--backbone classic|resnet50|clip] [--json OUT]

For each run (``mosaic:MP``: Berkeley photos on a grid, ``upscaled:MP``: the
GrabCut ``bool`` photo upscaled, as in ``photo_scaling.py``) a child process
computes the first result (``set_image`` + ``prepare_default`` + ``segment``), then
places ``--count`` corrective strokes across the image, one at a time, as a
user would: the deepest pixel of the largest error region (first result against
the mask) in a cell of a 4 x 4 grid not used yet, a disk of radius 4 px with the
mask's label there. After each stroke it times ``segment(strokes, local=True)``
(the local update, :func:`napari_deepseg.core.cut.pyramid.update_multilevel`);
at the end it times the whole cut with every stroke (``local=False``, what the
widget runs afterwards in the background) and compares the two. With
``--refit-gap S`` it also runs that whole cut after every local update, in a
thread, as the Scribble widget does, and the next stroke, ``S`` seconds later,
cancels it: ``refit_waits_s`` is how long that stroke waits for the cut to stop,
before its own update (``updates_s``).

``--local-corrections`` asks every cut for ``local_corrections=True``, as the Scribble
widget does (issue 32: strokes added to the last answer take only the changed
regions they touch), to time what that adds.

``--backbone resnet50`` or ``clip`` run with randomly initialised weights
saved to a temporary folder (as ``size_scaling.py`` does: no download, the
compute of pretrained weights).
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

RADIUS = 4


def _iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def corrective_strokes(pred: np.ndarray, truth: np.ndarray, count: int, grid: int = 4, erode: int = 2):
    """``(row, col, label)`` of ``count`` strokes at the deepest pixels of the largest error regions, one per cell."""
    from scipy import ndimage as ndi

    err = ndi.binary_erosion(pred != truth, iterations=erode)
    labels, n = ndi.label(err)
    if not n:
        return []
    size = np.bincount(labels.ravel(), minlength=n + 1)
    size[0] = 0
    dist = ndi.distance_transform_edt(err)
    out, used = [], set()
    for region in np.argsort(size)[::-1]:
        if size[region] == 0 or len(out) == count:
            break
        rr, cc = np.nonzero(labels == region)
        best = np.argmax(dist[rr, cc])
        r, c = int(rr[best]), int(cc[best])
        cell = (r * grid // pred.shape[0], c * grid // pred.shape[1])
        if cell in used:
            continue
        used.add(cell)
        out.append((r, c, 1 if truth[r, c] else 2))
    return out


class _BackgroundCut:
    """The whole cut the Scribble widget starts after a local update, in a thread, stopped by the next stroke.

    :meth:`stop` waits ``gap`` seconds from the start (the user's pause before the next stroke), cancels the
    cut and returns how long the stroke then waits for it to stop (about 0 if it finished within the gap);
    ``result`` is then the whole cut's object mask (the widget shows it), else ``None``.
    """

    def __init__(self, session, strokes, gap: float, **kwargs):
        import threading

        from napari_deepseg.core.utils.progress import CancelToken

        self.token, self.gap, self.started, self.result = CancelToken(), gap, time.perf_counter(), None
        self.kwargs = kwargs
        self.thread = threading.Thread(target=self._run, args=(session, strokes), daemon=True)
        self.thread.start()

    def _run(self, session, strokes) -> None:
        from napari_deepseg.core.utils.progress import Cancelled

        try:
            self.result = session.segment(strokes, cancel=self.token, **self.kwargs) == 1
        except Cancelled:
            pass

    def stop(self) -> float:
        time.sleep(max(0.0, self.started + self.gap - time.perf_counter()))  # the user's pause: not counted
        t = time.perf_counter()
        self.token.cancel()
        self.thread.join()
        return time.perf_counter() - t


def _child(args) -> None:
    from napari_deepseg.core import SegmentationSession

    image, truth, strokes = np.load(args.image), np.load(args.mask), np.load(args.strokes)
    params = {"weights": args.weights, "device": "cpu"} if args.weights else {}
    session = SegmentationSession(args.backbone, **params)
    t0 = time.perf_counter()
    session.set_image(image)
    session.prepare_default()
    kw = {"local_corrections": True} if args.local_corrections else {}
    first = session.segment(strokes, **kw) == 1
    t1 = time.perf_counter()
    plan = corrective_strokes(first, truth, args.strokes_count)
    rr, cc = np.ogrid[-RADIUS : RADIUS + 1, -RADIUS : RADIUS + 1]
    disk = rr**2 + cc**2 <= RADIUS**2
    times, ious, local, waits, refit = [], [], [], [], None
    current, pred = strokes.copy(), first
    for r, c, value in plan:
        r0, c0 = max(0, r - RADIUS), max(0, c - RADIUS)
        patch = current[r0 : r + RADIUS + 1, c0 : c + RADIUS + 1]
        d = disk[r0 - (r - RADIUS) :, c0 - (c - RADIUS) :][: patch.shape[0], : patch.shape[1]]
        patch[d] = value
        before = pred
        if refit is not None:  # the next stroke cancels the background refit and waits for it to stop
            waits.append(refit.stop())
            before = before if refit.result is None else refit.result
        t = time.perf_counter()
        pred = session.segment(current, local=args.mode == "local", **kw) == 1
        times.append(time.perf_counter() - t)
        local.append(bool(session.last_local))
        ious.append(_iou(pred, truth))
        if args.check_bound and session.last_local:  # the contract: nothing outside the window changes
            from napari_deepseg.core.cut.pyramid import UPDATE_BOUND

            outside = np.ones(pred.shape, bool)
            outside[max(0, r - RADIUS - UPDATE_BOUND) : r + RADIUS + 1 + UPDATE_BOUND,
                    max(0, c - RADIUS - UPDATE_BOUND) : c + RADIUS + 1 + UPDATE_BOUND] = False
            assert np.array_equal(pred[outside], before[outside]), "a local update changed pixels outside its window"
        if args.refit_gap is not None and session.last_local:  # the widget's refit of the whole image
            refit = _BackgroundCut(session, current.copy(), args.refit_gap, **kw)
    if refit is not None:
        waits.append(refit.stop())
    t2 = time.perf_counter()
    full = session.segment(current, **kw) == 1
    t3 = time.perf_counter()
    print(json.dumps({
        "first_s": t1 - t0, "first_iou": _iou(first, truth), "updates_s": times, "local": local,
        "update_median_s": float(np.median(times)) if times else None, "ious": ious,
        "full_s": t3 - t2, "full_iou": _iou(full, truth), "local_vs_full_iou": _iou(pred, full),
        "peak_mb": hwm_mb(), "strokes": plan, "refit_waits_s": waits,
    }))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["mosaic:25", "upscaled:16", "upscaled:64"])
    ap.add_argument("--count", dest="strokes_count", type=int, default=10, help="corrective strokes (10)")
    ap.add_argument("--mode", choices=("local", "full"), default="local",
                    help="time local updates (default) or whole cuts after every stroke")
    ap.add_argument("--check-bound", action="store_true", help="assert that no pixel outside the window changes")
    ap.add_argument("--backbone", default="classic", choices=("classic", "rgb", "resnet50", "clip"),
                    help="features (deep ones with random weights)")
    ap.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--refit-gap", type=float, default=None,
                    help="after each local update, cut the whole image in a thread (the widget's background "
                         "refit) and cancel it this many seconds later, at the next stroke; the update's time "
                         "then includes the wait for the cut to stop")
    ap.add_argument("--local-corrections", action="store_true",
                    help="every cut with local_corrections=True, as the Scribble widget asks")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("image", "mask", "strokes"):
        ap.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)
    from _photos import photo_run
    from size_scaling import _random_weights

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = _random_weights([args.backbone], tmp).get(args.backbone)
        for run in args.runs:
            data = photo_run(run)
            for name, arr in zip(("image", "mask", "strokes"), data):
                np.save(tmp / f"{name}.npy", arr)
            del data
            cmd = [sys.executable, __file__, "--child", "--image", str(tmp / "image.npy"), "--mask",
                   str(tmp / "mask.npy"), "--strokes", str(tmp / "strokes.npy"), "--count",
                   str(args.strokes_count), "--mode", args.mode, "--backbone", args.backbone]
            cmd += ["--refit-gap", str(args.refit_gap)] if args.refit_gap is not None else []
            cmd += (["--check-bound"] if args.check_bound else []) + (["--weights", weights] if weights else [])
            cmd += ["--local-corrections"] if args.local_corrections else []
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                print(f"{run}: failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                results.append({"run": run, "error": proc.stderr.strip()[-500:]})
                continue
            out = {"run": run, "backbone": args.backbone, "mode": args.mode, **json.loads(proc.stdout.strip().splitlines()[-1])}
            results.append(out)
            print(f"{run} {args.backbone} ({args.mode}): first {out['first_s']:.1f} s IoU {out['first_iou']:.3f}; update median "
                  f"{out['update_median_s']:.2f} s (max {max(out['updates_s']):.2f}, local {sum(out['local'])} of "
                  f"{len(out['local'])}), IoU after {out['ious'][-1]:.3f}; whole cut {out['full_s']:.1f} s IoU "
                  f"{out['full_iou']:.3f}, local vs whole {out['local_vs_full_iou']:.4f}; peak "
                  f"{out['peak_mb'] / 1024:.2f} GB" + (f"; waits for the refit to stop: median "
                  f"{np.median(out['refit_waits_s']):.2f} s (max {max(out['refit_waits_s']):.2f})"
                  if out["refit_waits_s"] else ""), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
