"""GUI-thread pauses of the Scribble widget during a cut on a large photograph (issues 22 and 24).

Usage (under a display, e.g. ``xvfb-run -a``)::

    python benchmarks/gui_pauses.py [--mp 16] [--json OUT] [--in-process]

Opens napari with the GrabCut ``bool`` photo upscaled to ``--mp`` megapixels and its strokes
(``_photos.upscaled_photo``), lets the viewer draw them for 2 s (napari's first texture uploads,
reported as their own phase), docks the Scribble widget, waits for its background preparation, then
presses *Segment* three times: the first result, a local update after one more background stroke,
and (when it runs) the background refit that follows. A 10 ms Qt timer ticks on the GUI thread all
along; every gap between two ticks longer than the timer's period is time the GUI thread was busy
(the user's clicks and paint strokes wait for it). Reported per phase: the longest gap and the
number of gaps over 100 ms, and the wall time of the phase.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:  # torch's optional triton before napari's OpenGL (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=16.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--in-process", action="store_true",
                    help="cut in napari's process, as before issue 24 (PROCESS_MIN_PIXELS = None)")
    args = ap.parse_args(argv)
    if args.in_process:
        from napari_deepseg.core.cut import service

        service.PROCESS_MIN_PIXELS = None

    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from _photos import upscaled_photo

    image, _, strokes = upscaled_photo(args.mp)
    viewer = napari.Viewer(show=True)
    viewer.add_image(image, name="photo", rgb=True)
    scribbles = viewer.add_labels(strokes.astype(np.uint8), name="photo scribbles")
    app = QApplication.instance()

    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()

    def wait(condition, limit=600.0):
        t0 = time.perf_counter()
        while not condition() and time.perf_counter() - t0 < limit:
            app.processEvents()
            time.sleep(0.002)

    def measure(name, start, done):
        ticks.clear()
        t0 = time.perf_counter()
        ticks.append(t0)
        start()
        wait(done)
        t1 = time.perf_counter()
        ticks.append(t1)
        gaps = np.diff(np.array(ticks))
        out = {"phase": name, "wall_s": t1 - t0, "longest_gap_ms": float(gaps.max() * 1000),
               "gaps_over_100ms": int((gaps > 0.1).sum())}
        print(f"{name}: {out['wall_s']:.1f} s, longest GUI pause {out['longest_gap_ms']:.0f} ms, "
              f"{out['gaps_over_100ms']} pauses > 100 ms", flush=True)
        return out

    # napari's own first draw of the layers just opened (the photo's and the scribbles' textures) is not
    # part of a cut: the viewer draws them for 2 s before the widget is docked, reported on its own
    t_settle = time.perf_counter()
    results = [measure("viewer draws the layers it opened (no widget yet)", lambda: None,
                       lambda: time.perf_counter() - t_settle > 2.0)]
    _, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
    widget.image_combo.value = viewer.layers["photo"]
    widget.scribbles_combo.value = scribbles

    def phase(name, start):
        out = measure(name, start, lambda: not widget.busy and not widget.preparing
                      and not getattr(widget, "refitting", False))
        out["status"] = widget.status.value
        print(f"  ({out['status']})", flush=True)
        return out

    results.append(phase("prepare", widget.prepare))
    results.append(phase("first result", widget.segment))

    def stroke():  # painted as napari's brush does, into the layer's array
        r, c = scribbles.data.shape[0] // 8, scribbles.data.shape[1] // 2
        rows, cols = np.mgrid[r : r + 8, c - 40 : c + 40]
        scribbles.data_setitem((rows.ravel(), cols.ravel()), 2)
        widget.segment()

    results.append(phase("update (+ background refit)", stroke))
    timer.stop()
    viewer.close()
    if args.json:
        Path(args.json).write_text(json.dumps({"megapixels": args.mp, "in_process": args.in_process,
                                               "phases": results}, indent=1))


if __name__ == "__main__":
    main()
