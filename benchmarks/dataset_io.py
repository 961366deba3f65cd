"""What saving an image's state costs in a dataset folder (issue 31), and preparing the next image.

Usage::

    python benchmarks/dataset_io.py [--limit N] [--large] [--json OUT]

On the GrabCut images (``../shared/datasets/grabcut``, read in place; the output
goes to a temporary folder) with the strokes of scribble set 1:

* ``prepare``: :func:`~napari_deepseg.core.dataset.prefetch.make_preparer`'s work
  for one image (read, ``set_image`` + ``prepare_default``, the graphcut click
  engine on the same session): what the prefetcher does in the background;
* ``first cut``: the first ``segment`` on the prepared session;
* ``save``: the first :meth:`DatasetFolder.save` (mask PNG, strokes PNG, record
  JSON, status file), then a save with nothing changed, then one where only a
  click was added (the record alone is written), then a changed mask (the old
  one kept in ``.history/`` first);
* ``load``: :meth:`DatasetFolder.load` (mask, strokes, record);
* the memory three prepared images hold (the prefetcher's bound: current + two neighbours).

``--large`` adds a synthetic 25 MP (5000 x 5000) mask with strokes: save, save
unchanged, load. Medians in milliseconds. Run it alone: timings share the
machine's cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "datasets" / "grabcut"
if not DATA.is_dir():
    DATA = Path("/work/shared/datasets/grabcut")


def _ms(f):
    t0 = time.perf_counter()
    out = f()
    return out, 1000 * (time.perf_counter() - t0)


def grabcut(limit: int) -> dict:
    from napari_deepseg.core.dataset import DatasetFolder, ImageState, Step, click_engine, scribble_engine
    from napari_deepseg.core.dataset.prefetch import make_preparer
    from napari_deepseg.core.io.files import read_labels
    from napari_deepseg.core.prompts.base import Click

    times = {k: [] for k in ("prepare", "first_cut", "save_first", "save_unchanged", "save_record_only",
                             "save_changed_mask", "load")}
    with tempfile.TemporaryDirectory() as out:
        folder = DatasetFolder.open(DATA / "images", out, pattern="*.jpg")
        prepare = make_preparer(folder, click_method="graphcut", click_params={"features": "classic"})
        for i, item in enumerate(folder.items[:limit]):
            strokes = read_labels(DATA / "scribbles-set-1" / f"{item.stem}-anno.png")
            prepared, t = _ms(lambda: prepare(i))
            times["prepare"].append(t)
            mask, t = _ms(lambda: prepared.session.segment(strokes))
            times["first_cut"].append(t)
            steps = [Step("scribbles", scribble_engine(prepared.session), strokes=strokes)]
            state = ImageState(mask, steps)
            times["save_first"].append(_ms(lambda: folder.save(i, state))[1])
            times["save_unchanged"].append(_ms(lambda: folder.save(i, state))[1])
            row, col = np.argwhere(mask == 1)[0]
            state.steps.append(Step("clicks", click_engine("graphcut", features="classic"),
                                    clicks=(Click(int(row), int(col)),), target=2))
            written, t = _ms(lambda: folder.save(i, state))
            assert [p.name for p in written] == [f"{item.stem}.json"], written
            times["save_record_only"].append(t)
            state.mask = mask.copy()
            state.mask[0, 0] = 2
            times["save_changed_mask"].append(_ms(lambda: folder.save(i, state))[1])
            times["load"].append(_ms(lambda: folder.load(i))[1])
        folder.close()
    return {k: round(statistics.median(v), 1) for k, v in times.items()} | {"images": limit}


def prefetch_memory() -> dict:
    """Memory (tracemalloc: numpy arrays included) held by three prepared GrabCut images, click engine included."""
    import gc
    import tracemalloc

    from napari_deepseg.core.dataset import DatasetFolder
    from napari_deepseg.core.dataset.prefetch import make_preparer

    with tempfile.TemporaryDirectory() as out:
        folder = DatasetFolder.open(DATA / "images", out, pattern="*.jpg")
        prepare = make_preparer(folder, click_method="graphcut", click_params={"features": "classic"})
        prepare(0)  # imports and first-use caches out of the count
        gc.collect()
        tracemalloc.start()
        kept = [prepare(i) for i in range(3)]
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        folder.close()
    del kept
    return {"three_prepared_mib": round(held / 2**20, 1), "three_prepared_peak_mib": round(peak / 2**20, 1)}


def large() -> dict:
    from PIL import Image

    from napari_deepseg.core.dataset import DatasetFolder, ImageState, Step, scribble_engine

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        Image.fromarray(np.zeros((5000, 5000), np.uint8)).save(images / "tile.png")
        rng = np.random.default_rng(0)
        mask = np.zeros((5000, 5000), np.uint8)
        for _ in range(200):  # 200 rectangles as objects
            r, c = rng.integers(0, 4900, 2)
            mask[r:r + rng.integers(20, 100), c:c + rng.integers(20, 100)] = rng.integers(1, 200)
        strokes = np.zeros_like(mask)
        strokes[2500, 100:4900] = 1
        strokes[100, 100:4900] = 2
        state = ImageState(mask, [Step("scribbles", scribble_engine(), strokes=strokes)])
        with DatasetFolder.open(images, Path(tmp) / "out") as folder:
            out["large_save_first"] = round(_ms(lambda: folder.save(0, state))[1], 1)
            out["large_save_unchanged"] = round(_ms(lambda: folder.save(0, state))[1], 1)
            state.mask = mask.copy()
            state.mask[0, 0] = 250
            out["large_save_changed_mask"] = round(_ms(lambda: folder.save(0, state))[1], 1)
            out["large_load"] = round(_ms(lambda: folder.load(0))[1], 1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=10, help="GrabCut images (default 10)")
    parser.add_argument("--large", action="store_true", help="also a 25 MP mask")
    parser.add_argument("--json", default=None, help="write the medians here")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        result = grabcut(args.limit) | prefetch_memory()
        if args.large:
            result |= large()
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
