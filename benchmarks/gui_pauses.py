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

``--as-user STEM --size 4000x3000`` does what a new user does instead: the Berkeley photo ``STEM``
upscaled (bicubic) and saved as a JPEG is opened with *File > Open* (``viewer.open``), an empty
Labels layer is made as napari's *New labels layer* button makes it, its strokes (drawn from the
photo's mask) are painted with the brush's call one stroke at a time, and *Segment* is pressed
without *Prepare* (the first result includes the preparation). ``--stacks`` samples the GUI
thread's Python stack (every 10 ms, from another thread) while it is late and prints, for every
pause over 100 ms, the stacks seen in it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:  # torch's optional triton before napari's OpenGL (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mp", type=float, default=16.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--as-user", metavar="STEM", default=None,
                    help="a Berkeley photo opened from a file, strokes painted, Segment without Prepare")
    ap.add_argument("--size", default="4000x3000", help="the photo's size with --as-user, COLSxROWS")
    ap.add_argument("--stacks", action="store_true", help="print the GUI thread's stacks seen in long pauses")
    ap.add_argument("--pause-ms", type=float, default=100.0, help="what --stacks counts as a long pause")
    ap.add_argument("--in-process", action="store_true",
                    help="cut in napari's process, as before issue 24 (PROCESS_MIN_PIXELS = None)")
    args = ap.parse_args(argv)
    if args.in_process:
        from napari_deepseg.core.cut import service

        service.PROCESS_MIN_PIXELS = None

    import napari
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from _photos import strokes_from_mask, upscaled_photo

    tmp = None
    if args.as_user:
        import tempfile

        from PIL import Image

        from _data import datasets_dir

        base = datasets_dir() / "berkeley"
        size = tuple(int(v) for v in args.size.lower().split("x"))
        photo = Image.open(base / "images" / f"{args.as_user}.jpg").convert("RGB").resize(size, Image.BICUBIC)
        mask = np.asarray(Image.open(base / "masks" / f"{args.as_user}.png").convert("L").resize(
            size, Image.BILINEAR)) > 127
        strokes = strokes_from_mask(mask, margin=min(size) // 40)
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / f"{args.as_user}.jpg"
        photo.save(path, quality=95)
        viewer = napari.Viewer(show=True)
        scribbles = None
        pieces = []  # the strokes as the brush paints them: one connected piece per call
        for value in (1, 2):
            labelled, _ = ndi.label(strokes == value, structure=np.ones((3, 3)))
            for box in ndi.find_objects(labelled):
                rows, cols = np.nonzero(labelled[box] > 0)
                pieces.append((rows + box[0].start, cols + box[1].start, value))
    else:
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

    samples = []  # (time, stack) of the GUI thread while it is late
    if args.stacks:
        import threading
        import traceback

        main_id = threading.main_thread().ident

        def sample():
            while timer.isActive():
                time.sleep(0.01)
                if ticks and time.perf_counter() - ticks[-1] > 0.06:
                    frame = sys._current_frames().get(main_id)
                    if frame is not None:
                        stack = "".join(traceback.format_stack(frame, limit=14)[-14:])
                        samples.append((time.perf_counter(), stack))

        threading.Thread(target=sample, daemon=True).start()

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
        if args.stacks:
            for k in np.flatnonzero(gaps > args.pause_ms / 1000):
                seen = [st for t, st in samples if ticks[k] <= t <= ticks[k + 1] + 0.005]
                print(f"--- {name}: pause of {gaps[k] * 1000:.0f} ms at {ticks[k] - t0:.2f} s, "
                      f"{len(seen)} samples", flush=True)
                for st in dict.fromkeys(seen):
                    print(st, flush=True)
        out = {"phase": name, "wall_s": t1 - t0, "longest_gap_ms": float(gaps.max() * 1000),
               "gaps_over_100ms": int((gaps > 0.1).sum())}
        print(f"{name}: {out['wall_s']:.1f} s, longest GUI pause {out['longest_gap_ms']:.0f} ms, "
              f"{out['gaps_over_100ms']} pauses > 100 ms", flush=True)
        return out

    if args.as_user:  # the plugin is docked first, from the Plugins menu; then the photo is opened
        _, widget = viewer.window.add_plugin_dock_widget("napari-deepseg", "Scribble segmentation")
        opened = {}

        def open_photo():
            (opened["photo"],) = viewer.open(path)
            opened["photo"].name = "photo"
            opened["scribbles"] = viewer._new_labels() or viewer.layers[-1]  # older napari returns nothing

        t_open = time.perf_counter()
        results = [measure("open the photo and a new labels layer (widget docked)", open_photo,
                           lambda: time.perf_counter() - t_open > 3.0)]
        scribbles = opened["scribbles"]
        widget.image_combo.value = opened["photo"]
        widget.scribbles_combo.value = scribbles
    else:
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

    if args.as_user:
        def paint():  # the brush's call, stroke by stroke, the events handled between strokes
            for rows, cols, value in pieces:
                scribbles.data_setitem((rows, cols), value)
                app.processEvents()

        results.append(measure("paint the strokes (no cut)", paint, lambda: True))
        results.append(phase("first result (preparation included)", widget.segment))
    else:
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
                                               "as_user": args.as_user, "size": args.size if args.as_user
                                               else None, "phases": results}, indent=1))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
