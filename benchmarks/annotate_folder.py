"""A robot user annotates a folder through the real Dataset dock (issue 31): waiting after Next, masks, kills.

Usage (under a display, e.g. ``xvfb-run -a``)::

    python benchmarks/annotate_folder.py [--limit 50] [--json OUT] [--no-prefetch]
    python benchmarks/annotate_folder.py --kills 20 [--limit 12]        # SIGKILL at random moments
    python benchmarks/annotate_folder.py --tiles 3 --tile-mp 25         # a folder of large photo tiles
    python benchmarks/annotate_folder.py --tiles 3 --first-object      # ... stroking one photo of each first

**Timing run.** Opens napari with the Scribble segmentation and Dataset docks, opens the folder
of GrabCut photos (``../shared/datasets/grabcut/images``) with an output folder in a temporary
directory, and for every image: waits ``--think`` seconds (the user looking at the image; the
dock prepares the neighbours meanwhile), paints the set-1 strokes in one go and presses
*Segment* (``first``: from the stroke to the result layer, the time a user waits after *Next*),
then adds one more object stroke and presses *Segment* again (``update``: the time on an image
that is already open), waits for the widget's background refit, then *Done → next*. Every mask
on disk is compared with the layer it was saved from and with what a
``SegmentationSession("classic")`` gives for the same strokes in the same order (first cut,
local update, whole refit: what the single-image widget does), and ``dataset replay``'s dry run
says how many of the records give their mask back bit for bit. ``--no-prefetch`` turns the dock's preparation of the neighbours off (the
behaviour before issue 31: every image waits for its features after it opens).

**Kill run** (``--kills N``): a child process runs the robot (no timing); the parent kills it
with SIGKILL at a random moment (3-20 s after its start: napari's start takes a few of them), checks that every mask, stroke file,
record and ``dataset.json`` on disk reads, that every image the child logged as *done* more than
:data:`LOST_S` seconds before the kill is done on disk, and that every image whose strokes it
painted that long before has its strokes file on disk, then starts the next child, which
resumes where the folder says; N times, then once more to the end.

Reported: median first-result and update times, their ratio, masks equal, the process's peak
resident memory (``VmHWM``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

try:  # torch's optional triton before napari's OpenGL (see napari_deepseg/_qt/_torch_guard.py)
    import torchvision.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

from _data import datasets_dir  # noqa: E402


#: work older than this before a kill must be on disk (the dock saves every 2 s, in a worker)
LOST_S = 4.0


def peak_rss_mb(pid="self") -> float:
    """Peak resident memory (VmHWM) of a process, this one by default."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def children_peak_rss_mb() -> float:
    """The largest peak resident memory of this process's children (the Scribble widget's cutting process)."""
    import psutil

    peaks = []
    for child in psutil.Process().children(recursive=True):
        try:
            peaks.append(peak_rss_mb(child.pid))
        except OSError:  # gone meanwhile
            pass
    return max(peaks, default=0.0)


def scribbles_for(stem: str, base: Path):
    from napari_deepseg.core.io.files import read_labels

    path = base / "scribbles-set-1" / f"{stem}-anno.png"
    return read_labels(path) if path.is_file() else None


def extra_stroke(strokes: np.ndarray) -> np.ndarray:
    """The strokes plus a short object stroke beside the first object pixel (a correction)."""
    more = strokes.copy()
    rows, cols = np.nonzero(strokes == 1)
    r, c = int(rows[len(rows) // 2]), int(cols[len(cols) // 2])
    more[max(0, r - 1): r + 2, max(0, c - 6): c + 7][strokes[max(0, r - 1): r + 2, max(0, c - 6): c + 7] == 0] = 1
    return more


def robot(images: Path, out: Path, limit: int, think: float, prefetch: bool, log=None, check=True, strokes_of=None):
    """Annotate the folder in a real viewer; return the per-image timings.

    ``strokes_of(stem)`` gives an image's strokes (default: the GrabCut set-1 file).
    """
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_deepseg._qt import _layers, dataset_widget
    from napari_deepseg._qt.dataset_widget import DatasetWidget
    from napari_deepseg._qt.scribble_widget import ScribbleSegmentationWidget

    if not prefetch:
        dataset_widget.DatasetWidget._prepare_neighbours = lambda self, i: None
    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=True)
    scribble = ScribbleSegmentationWidget(viewer)
    viewer.window.add_dock_widget(scribble, name="Scribble segmentation")
    dock = DatasetWidget(viewer, scribble_widget=scribble)
    viewer.window.add_dock_widget(dock, name="Dataset")
    base = datasets_dir() / "grabcut"

    def wait(cond, timeout=600.0):
        t0 = time.perf_counter()
        while not cond():
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the widget did not answer")

    def segment_and_wait():
        """Seconds to the first thing shown (a large image's coarse preview) and to the result."""
        result = dock._layer_of(_layers.ROLE_SEGMENTATION)
        before = None if result is None else np.array(result.data)  # the robot's copy: before the clock starts
        shown = []
        t0 = time.perf_counter()

        def done():
            if not shown:
                layer = dock._layer_of(_layers.ROLE_SEGMENTATION)
                if layer is not None and layer.visible and (before is None or not np.array_equal(layer.data, before)):
                    shown.append(time.perf_counter() - t0)
            return not scribble.busy

        assert scribble.segment()
        wait(done)
        total = time.perf_counter() - t0
        return total, (shown[0] if shown else total)

    assert dock.open_folder(images, out)
    rows = []
    while dock.index is not None and len(rows) < limit:
        i = dock.index
        stem = dock.folder.items[i].stem
        strokes = scribbles_for(stem, base) if strokes_of is None else strokes_of(stem)
        t_end = time.perf_counter() + think
        while time.perf_counter() < t_end:  # the user looks at the image: events run, the dock prepares
            app.processEvents()
            time.sleep(0.005)
        layer = dock._layer_of(_layers.ROLE_SCRIBBLES)
        row = {"stem": stem}
        if strokes is not None:
            layer.data = strokes
            if log is not None:  # painted: the autosave must have it on disk a few seconds later
                log.write(f"{time.time():.3f} painted {stem}\n")
                log.flush()
            scribble.image_combo.value = dock.image_layer
            scribble.scribbles_combo.value = layer
            row["first_s"], row["first_shown_s"] = segment_and_wait()
            row["first_status"] = scribble.status.value  # what the widget said (an error is said there too)
            first_layer = dock._layer_of(_layers.ROLE_SEGMENTATION)
            if first_layer is not None:  # object pixels beyond the first strokes' window (a local update's bound)
                rr, cc = np.nonzero(strokes)
                r0, r1, c0, c1 = rr.min() - 512, rr.max() + 513, cc.min() - 512, cc.max() + 513
                fg = np.asarray(first_layer.data) > 0
                row["first_objects_outside_window"] = int(fg.sum() - fg[max(0, r0):r1, max(0, c0):c1].sum())
            layer.data = extra_stroke(strokes)
            row["update_s"], _ = segment_and_wait()
            row["update_status"] = scribble.status.value
            wait(lambda: not scribble.busy and not scribble.refitting)  # the refit after a local update
            if check:
                row["mask"] = np.array(dock._layer_of(_layers.ROLE_SEGMENTATION).data)
                row["strokes"] = extra_stroke(strokes)
        row["child_peak_rss_mb"] = round(children_peak_rss_mb())
        rows.append(row)
        if not dock.mark("done"):
            break
        if log is not None:
            log.write(f"{time.time():.3f} done {stem}\n")
            log.flush()
            os.fsync(log.fileno())
        if dock.folder.first_not_done() is None:
            break
    dock.close_folder()
    viewer.close()
    return rows


def compare_masks(images: Path, out: Path, rows: list, strokes_of=None) -> tuple:
    """Masks on disk vs the widget's layers and vs a fresh session with the same strokes."""
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.io.files import read_image, read_labels

    same_disk = same_session = 0
    checked = 0
    for row in rows:
        if "mask" not in row:
            continue
        checked += 1
        disk = read_labels(out / "masks" / f"{row['stem']}.png")
        same_disk += bool(np.array_equal(disk, row["mask"]))
        image = read_image(next(images.glob(row["stem"] + ".*")))
        session = SegmentationSession("classic")
        session.set_image(image)
        first = scribbles_for(row["stem"], datasets_dir() / "grabcut") if strokes_of is None else strokes_of(row["stem"])
        session.segment(first)  # the first cut, then the update
        session.segment(row["strokes"], local=True)
        fresh = session.segment(row["strokes"])  # the widget's background refit after a local update
        same_session += bool(np.array_equal(fresh.astype(disk.dtype), disk))
    return checked, same_disk, same_session


def make_tiles(folder: Path, count: int, mp: int):
    """``count`` mosaics of Berkeley photos (``mp`` megapixels each) as PNGs, and their strokes by stem."""
    from PIL import Image

    from _photos import photo_mosaic

    folder.mkdir(parents=True)
    grid = int(round(mp ** 0.5))
    strokes = {}
    for k in range(count):
        image, _mask, s = photo_mosaic(grid, start=k * grid * grid)
        Image.fromarray(image).save(folder / f"tile{k}.png", compress_level=1)
        strokes[f"tile{k}"] = s
    return folder, strokes.get


def check_folder(out: Path) -> list:
    """Every file the dock wrote reads; the names of those that do not.

    A temporary file a kill left half-written is not a saved file: nothing reads
    it, and the next opening of the folder removes it (they are counted by
    :func:`temporaries`).
    """
    from napari_deepseg.core.io.atomic import is_temporary
    from napari_deepseg.core.io.files import read_labels

    bad = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.name.startswith(".napari-deepseg.lock") or is_temporary(path):
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix in (".png", ".tif", ".tiff"):
                read_labels(path)
        except Exception as exc:  # noqa: BLE001 - any failure is what we count
            bad.append(f"{path.relative_to(out)}: {exc}")
    return bad


def temporaries(out: Path) -> list:
    """The temporary files in the output folder (a write a kill interrupted)."""
    from napari_deepseg.core.io.atomic import is_temporary

    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and is_temporary(p))


def kill_run(images: Path, out: Path, kills: int, limit: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    log_path = out.parent / "robot.log"
    results = []
    for k in range(kills + 1):
        cmd = [sys.executable, __file__, "--child", str(images), str(out), str(log_path), "--limit", str(limit)]
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        start = time.time()
        if k < kills:
            delay = rng.uniform(3.0, 20.0)
            try:
                child.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)
                child.wait()
        else:
            child.wait(timeout=1800)
        killed_at = time.time()
        from napari_deepseg.core.dataset.folder import read_summary

        bad = check_folder(out)
        done_logged, painted = [], []
        if log_path.is_file():
            for line in log_path.read_text().splitlines():
                t, what, stem = line.split(" ", 2)
                if float(t) < killed_at - LOST_S:
                    (done_logged if what == "done" else painted).append(stem)
        strokes_lost = [s for s in painted if not (out / "records" / f"{s}.strokes-1.png").is_file()]
        status = json.loads((out / "dataset.json").read_text()) if (out / "dataset.json").is_file() else {}
        entries = status.get("items", {})
        lost = [s for s in done_logged if not any(
            (name.rsplit(".", 1)[0] == s and (e.get("status") == "done")) for name, e in entries.items())]
        results.append({"run": k, "alive_s": round(killed_at - start, 1), "unreadable_files": bad,
                        "temporaries_left": temporaries(out),
                        "done_before_lost": lost, "strokes_before_lost": strokes_lost,
                        "summary": read_summary(out) if (out / "dataset.json").is_file() else None})
        print(f"run {k}: {killed_at - start:.1f} s, unreadable {len(bad)}, done lost {len(lost)}, "
              f"strokes lost {len(strokes_lost)}, temporaries left {len(results[-1]['temporaries_left'])}",
              flush=True)
    return {"kills": kills, "runs": results,
            "unreadable_total": sum(len(r["unreadable_files"]) for r in results),
            "lost_total": sum(len(r["done_before_lost"]) + len(r["strokes_before_lost"]) for r in results)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--think", type=float, default=1.0, help="seconds the robot looks at each image before painting")
    ap.add_argument("--no-prefetch", action="store_true")
    ap.add_argument("--no-compare", action="store_true", help="time only: no mask comparison, no replay")
    ap.add_argument("--kills", type=int, default=0)
    ap.add_argument("--tiles", type=int, default=0, help="a folder of this many large photo mosaics instead")
    ap.add_argument("--tile-mp", type=int, default=25, help="megapixels of each tile (a square number)")
    ap.add_argument("--first-object", action="store_true",
                    help="with --tiles: the robot strokes the mosaic's first photo only (its object and background), "
                         "as a user strokes one object of a tile first")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        images, out, log_path = (Path(p) for p in args.child)
        with open(log_path, "a") as log:
            robot(images, out, args.limit, 0.3, True, log=log, check=False)
        return
    images, strokes_of = datasets_dir() / "grabcut" / "images", None
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiles:
            images, strokes_of = make_tiles(Path(tmp) / "tiles", args.tiles, args.tile_mp)
            if args.first_object:
                from window_first import first_photo

                every = strokes_of
                strokes_of = lambda stem: first_photo(every(stem))[0]  # noqa: E731
        out = Path(tmp) / "out"
        if args.kills:
            result = kill_run(images, out, args.kills, args.limit)
        else:
            rows = robot(images, out, args.limit, args.think, not args.no_prefetch, strokes_of=strokes_of,
                         check=not args.no_compare)
            checked = same_disk = same_session = 0
            outcomes = []
            if not args.no_compare:
                checked, same_disk, same_session = compare_masks(images, out, rows, strokes_of)
                from napari_deepseg.core.dataset.folder import DatasetFolder
                from napari_deepseg.core.dataset.replay import replay_folder

                with DatasetFolder.open(images, out, read_only=True) as folder:  # what `dataset replay` would do
                    outcomes = [o.outcome for o in replay_folder(folder, write=False)]
            first = [r["first_s"] for r in rows if "first_s" in r]
            update = [r["update_s"] for r in rows if "update_s" in r]
            shown = [r["first_shown_s"] for r in rows if "first_shown_s" in r]
            result = {"images": len(rows), "prefetch": not args.no_prefetch, "think_s": args.think,
                      "tiles_mp": args.tile_mp if args.tiles else None, "first_object": args.first_object,
                      "first_shown_median_s": float(np.median(shown)),
                      # reached by Next: every image but the folder's first (opened with the folder, nothing
                      # prepared before it)
                      "first_shown_after_next_median_s": float(np.median(shown[1:])) if len(shown) > 1 else None,
                      "first_median_s": float(np.median(first)), "update_median_s": float(np.median(update)),
                      "ratio": float(np.median(first) / np.median(update)),
                      "masks_checked": checked, "disk_equals_layer": same_disk, "disk_equals_session": same_session,
                      "replay": {k: outcomes.count(k) for k in sorted(set(outcomes))},
                      "peak_rss_mb": round(peak_rss_mb()),
                      "child_peak_rss_mb": max((r.get("child_peak_rss_mb", 0) for r in rows), default=0),
                      "per_image": [{k: v for k, v in r.items() if k not in ("mask", "strokes")} for r in rows]}
            print(json.dumps({k: v for k, v in result.items() if k != "per_image"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
