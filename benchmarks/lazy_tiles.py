"""Large TIFF tiles in the Dataset dock read whole (today) or lazily (tifffile ``aszarr`` + dask): memory and Next.

Usage (under a display, e.g. ``xvfb-run -a``)::

    python benchmarks/lazy_tiles.py [--tiles 3] [--tile-mp 25] [--json OUT]

Writes ``--tiles`` photo mosaics (Berkeley photos, :func:`_photos.photo_mosaic`) of ``--tile-mp``
megapixels as tiled, uncompressed TIFFs, then, in a fresh process per mode, opens the folder in a real
Dataset dock (no Scribble widget: the images alone, no features), waits until the next tile is read
in the background, and measures:

* ``next_s``: *Next* until the image layer is added and its plane drawn (events processed, the canvas
  repainted), median over the moves tile0 -> tile1 -> tile2 -> tile1 -> tile0;
* ``to_numpy_s``: turning the current tile into one contiguous numpy array, what a cut of a large plane
  does before it sends the image to its child process
  (:meth:`~napari_deepseg.core.cut.remote.ProcessSession.set_image`) and what the features read;
* ``peak_rss_mb``: the process's peak resident memory (``VmHWM``) at the end, and ``held_mb``: the
  resident memory after the moves minus before the folder was opened.

Modes: ``whole`` is the dock as it is (``core.io.files.read_image``); ``lazy`` replaces the dock's
reader by ``dask.array.from_zarr(tifffile.imread(path, aszarr=True))``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MOVES = (1, 1, -1, -1)


def status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_tiles(folder: Path, count: int, mp: int) -> Path:
    """``count`` photo mosaics of ``mp`` megapixels as tiled (512 x 512), uncompressed RGB TIFFs."""
    import tifffile

    from _photos import photo_mosaic

    folder.mkdir(parents=True, exist_ok=True)
    grid = int(round(mp ** 0.5))
    for k in range(count):
        image, _mask, _strokes = photo_mosaic(grid, start=k * grid * grid)
        tifffile.imwrite(folder / f"tile{k}.tif", image, tile=(512, 512), photometric="rgb")
    return folder


def read_lazy(path):
    """A TIFF as a dask array over tifffile's zarr store (other files as ``read_image`` reads them)."""
    import dask.array as da
    import tifffile
    import zarr

    from napari_deepseg.core.io.files import read_image

    if not isinstance(path, (str, Path)):
        return path  # pixels already read (the dock's _prepare re-reads what is not a numpy array)
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        return read_image(path)
    return da.from_zarr(zarr.open(tifffile.imread(path, aszarr=True), mode="r"))


def run_mode(images: Path, mode: str) -> dict:
    """One mode in this process (a fresh one: ``VmHWM`` is the process's)."""
    import numpy as np
    from napari import Viewer
    from qtpy.QtWidgets import QApplication

    from napari_deepseg._qt import dataset_widget as dw

    if mode == "lazy":
        dw.read_image = read_lazy
    viewer = Viewer(show=True)
    app = QApplication.instance()
    dock = dw.DatasetWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Dataset")

    def settle(cond, timeout=300.0):
        end = time.perf_counter() + timeout
        while not cond() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.01)

    def drawn():
        app.processEvents()
        viewer.window._qt_viewer.canvas.native.repaint()
        app.processEvents()

    settle(lambda: False, 1.0)
    before = status_mb("VmRSS")
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        dock.open_folder(images, Path(out) / "out")
        drawn()
        open_s = time.perf_counter() - t
        times = []
        for step in MOVES:
            target = dock.index + step
            settle(lambda: target in dock._images and not dock._preparer.running)
            t = time.perf_counter()
            dock.next() if step > 0 else dock.previous()
            drawn()
            times.append(time.perf_counter() - t)
        settle(lambda: not dock._preparer.running)
        held = status_mb("VmRSS") - before
        t = time.perf_counter()
        arr = np.ascontiguousarray(np.asarray(dock.image_layer.data))
        to_numpy = time.perf_counter() - t
        shape = arr.shape
        del arr
        dock.close_folder()
    viewer.close()
    return {"mode": mode, "shape": list(shape), "open_s": round(open_s, 3), "next_s": [round(x, 3) for x in times],
            "next_median_s": round(statistics.median(times), 3), "to_numpy_s": round(to_numpy, 3),
            "held_mb": round(held), "peak_rss_mb": round(status_mb("VmHWM"))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=3)
    ap.add_argument("--tile-mp", type=int, default=25, help="megapixels of each tile (a square number)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--mode", choices=("whole", "lazy"), help=argparse.SUPPRESS)  # one mode, in a child
    ap.add_argument("--images", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mode:
        print(json.dumps(run_mode(args.images, args.mode)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        images = make_tiles(Path(tmp) / "tiles", args.tiles, args.tile_mp)
        for mode in ("whole", "lazy"):
            done = subprocess.run([sys.executable, __file__, "--mode", mode, "--images", str(images)],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"tiles": args.tiles, "tile_mp": args.tile_mp, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
