"""First result on a large photograph, in one process: set_image, prepare_default, segment (issue 22).

Usage::

    python benchmarks/photo_scaling.py ...   # makes the images; or, for the .npy files of a mosaic:
    python benchmarks/first_result_large.py mosaic:25 [upscaled:16 ...]

Each argument is ``KIND:MP`` as in ``photo_scaling.py`` (``mosaic``: Berkeley photos on a grid, ``upscaled``:
the GrabCut ``bool`` photo). Prints one JSON line per image: the stages' seconds, the IoU against the mask
and the process's peak resident memory (``VmHWM``, image included). Run it with ``PYTHONPATH`` pointing at
another checkout's ``src`` to compare two versions on the same machine in one sitting.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import hwm_mb  # noqa: E402
from _photos import photo_run  # noqa: E402


def first_result(image, truth, strokes) -> dict:
    from napari_deepseg.core import SegmentationSession

    session = SegmentationSession("classic")
    t0 = time.perf_counter()
    session.set_image(image)
    t1 = time.perf_counter()
    session.prepare_default()
    t2 = time.perf_counter()
    mask = session.segment(strokes) == 1
    t3 = time.perf_counter()
    return {"set_image_s": round(t1 - t0, 2), "prepare_s": round(t2 - t1, 2), "cut_s": round(t3 - t2, 2),
            "first_s": round(t3 - t0, 2), "iou": round(float((mask & truth).sum() / max(1, (mask | truth).sum())), 4),
            "peak_gb": round(hwm_mb() / 1024, 2)}


def main(argv=None):
    for run in (sys.argv[1:] if argv is None else argv) or ["mosaic:25"]:
        print(json.dumps({"run": run, **first_result(*photo_run(run))}), flush=True)


if __name__ == "__main__":
    main()
