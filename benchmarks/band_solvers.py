"""BK against HPF on the band solves of large photographs: cut time, max-flow time, same masks (issue 22).

Usage::

    python benchmarks/band_solvers.py [mosaic:25 upscaled:16 upscaled:64]

For each image (``KIND:MP`` as in ``photo_scaling.py``), a child process per
solver (``bk``: PyMaxflow everywhere; ``hpf``: ``maxflow.HPF_MIN_NODES`` as
shipped, ``thinhpf`` installed) runs ``set_image`` + ``prepare_default``, then
times ``segment`` and the total of ``maxflow.min_cut`` inside it. The parent
reports both and the number of pixels where the two masks differ.

``python benchmarks/band_solvers.py --per-band upscaled:64`` solves every band of
at least ``HPF_MIN_NODES`` nodes of one first result with both solvers and prints,
per band, whether its hard links conflict, HPF's scale, the hard links cut and the
finite capacity cut by the coarser level's labels, BK and HPF, their times and
the number of nodes where the two differ (the cut goes on with BK's labels).

``python benchmarks/band_solvers.py --per-band-3d 96 256 256`` does the same for the 3-D
cut (``mode="3d"``) of the synthetic volume of ``volume_3d.py`` of that shape: every level
and band of at least ``HPF_MIN_NODES`` nodes, whatever ``volume.HPF_3D`` says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _child(folder: str, solver: str) -> None:
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.cut import maxflow

    if solver == "bk":
        maxflow.HPF_MIN_NODES = None
    image, strokes = np.load(Path(folder) / "image.npy"), np.load(Path(folder) / "strokes.npy")
    spent = [0.0]
    original = maxflow.min_cut

    def timed(*args, **kwargs):
        t = time.perf_counter()
        out = original(*args, **kwargs)
        spent[0] += time.perf_counter() - t
        return out

    maxflow.min_cut = timed
    session = SegmentationSession("classic")
    session.set_image(image)
    session.prepare_default()
    t = time.perf_counter()
    mask = session.segment(strokes) == 1
    cut = time.perf_counter() - t
    np.save(Path(folder) / f"mask_{solver}.npy", mask)
    print(json.dumps({"cut_s": cut, "min_cut_s": spent[0]}))


def _both_solvers():
    """A ``min_cut`` that solves every large graph by BK and by HPF, prints both, and goes on with BK's labels."""
    from napari_deepseg.core.cut import maxflow

    def both(n, edges, src, snk, hard=1e9, init=None, **_):  # solver options ignored: both solvers
        hard = min(hard, maxflow.HPF_HARD)
        if n < maxflow.HPF_MIN_NODES:
            return maxflow._bk_cut(n, edges, src, snk)
        t = time.perf_counter()
        bk = maxflow._bk_cut(n, edges, src, snk)
        t_bk = time.perf_counter() - t
        scale = maxflow.hpf_scale(init, edges, src, snk, hard)
        t = time.perf_counter()
        hpf = maxflow._hpf_cut(n, edges, src, snk, scale)
        t_hpf = time.perf_counter() - t
        value = lambda label: maxflow.cut_value(label, edges, src, snk, hard)  # noqa: E731
        print(json.dumps({"nodes": n, "conflict": maxflow.hard_conflict(n, edges, src, snk, hard),
                          "scale": round(scale, 1), "coarse": value(init), "bk": value(bk),
                          "hpf": value(hpf), "bk_s": round(t_bk, 2), "hpf_s": round(t_hpf, 2),
                          "differ": int((bk != hpf).sum())}), flush=True)
        return bk

    return both


def per_band(run: str) -> None:
    """Both solvers on every large band of one first result (see the module's docstring)."""
    from _photos import photo_run

    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.cut import maxflow

    maxflow.min_cut = _both_solvers()
    image, _, strokes = photo_run(run)
    session = SegmentationSession("classic")
    session.set_image(image)
    session.segment(strokes)


def per_band_3d(shape) -> None:
    """Both solvers on every large graph of the 3-D cut of ``volume_3d.py``'s volume (see the module's docstring)."""
    from volume_3d import make_volume

    from napari_deepseg.core.cut import maxflow
    from napari_deepseg.core.cut.volume import VolumeSession

    maxflow.min_cut = _both_solvers()
    volume, _, scribbles = make_volume(shape)
    session = VolumeSession()
    session.set_image(volume, spacing=(2.0, 1.0, 1.0))
    session.segment(scribbles, mode="3d")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2])
    if argv[:1] == ["--per-band"]:
        return per_band(argv[1])
    if argv[:1] == ["--per-band-3d"]:
        return per_band_3d(tuple(int(a) for a in argv[1:4]))
    from _photos import photo_run

    for run in argv or ["mosaic:25", "upscaled:16", "upscaled:64"]:
        image, _, strokes = photo_run(run)
        with tempfile.TemporaryDirectory() as tmp:
            np.save(Path(tmp) / "image.npy", image)
            np.save(Path(tmp) / "strokes.npy", strokes)
            del image, strokes
            out = {}
            for solver in ("bk", "hpf"):
                proc = subprocess.run([sys.executable, __file__, "--child", tmp, solver], capture_output=True,
                                      text=True, check=True)
                out[solver] = json.loads(proc.stdout.strip().splitlines()[-1])
            differ = int((np.load(Path(tmp) / "mask_bk.npy") != np.load(Path(tmp) / "mask_hpf.npy")).sum())
        print(f"{run}: BK cut {out['bk']['cut_s']:.1f} s (max-flow {out['bk']['min_cut_s']:.1f} s); HPF cut "
              f"{out['hpf']['cut_s']:.1f} s (max-flow {out['hpf']['min_cut_s']:.1f} s); {differ} pixels differ",
              flush=True)


if __name__ == "__main__":
    main()
