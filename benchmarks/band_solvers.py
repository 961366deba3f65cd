"""BK against HPF on the band solves of large photographs: cut time, max-flow time, same masks (issue 22).

Usage::

    python benchmarks/band_solvers.py [mosaic:25 upscaled:16 upscaled:64]

For each image (``KIND:MP`` as in ``photo_scaling.py``), a child process per
solver (``bk``: PyMaxflow everywhere; ``hpf``: ``multilevel.HPF_MIN_NODES`` as
shipped, ``thinhpf`` installed) runs ``set_image`` + ``prepare_default``, then
times ``segment`` and the total of ``multilevel.min_cut`` inside it. The parent
reports both and the number of pixels where the two masks differ.
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
    from napari_deepseg.core.cut import multilevel

    if solver == "bk":
        multilevel.HPF_MIN_NODES = None
    image, strokes = np.load(Path(folder) / "image.npy"), np.load(Path(folder) / "strokes.npy")
    spent = [0.0]
    original = multilevel.min_cut

    def timed(*args, **kwargs):
        t = time.perf_counter()
        out = original(*args, **kwargs)
        spent[0] += time.perf_counter() - t
        return out

    multilevel.min_cut = timed
    session = SegmentationSession("classic")
    session.set_image(image)
    session.prepare_default()
    t = time.perf_counter()
    mask = session.segment(strokes) == 1
    cut = time.perf_counter() - t
    np.save(Path(folder) / f"mask_{solver}.npy", mask)
    print(json.dumps({"cut_s": cut, "min_cut_s": spent[0]}))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2])
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
