"""How well would a large cut's band solves split in two processes? The pieces of every big band graph.

Usage::

    python benchmarks/band_pieces.py [--run mosaic:25] [--min-nodes 100000]

Cuts the run's image with all its strokes in one process (after ``set_image`` and ``prepare_default``),
wrapping :func:`napari_deepseg.core.cut.maxflow.min_cut`: for every graph of at least ``--min-nodes``
nodes it times the solve, labels the graph's weakly connected components
(``scipy.sparse.csgraph.connected_components``), splits them greedily in two halves by node count, and
times the pickling of the graph's arrays (what a second process would be sent). Prints a line per graph and
a summary: the max-flow time one after the other and with the two halves at once (the larger half's share
of each solve). Issue 33 item 3, docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _photos import photo_run  # noqa: E402


def pieces(n: int, edges) -> tuple:
    """``(number of components, largest share, larger half's share of a greedy two-way split)`` of a graph."""
    i = np.concatenate([p[0] for p in edges.parts])
    j = np.concatenate([p[1] for p in edges.parts])
    count, label = connected_components(csr_matrix((np.ones(i.size, np.int8), (i, j)), shape=(n, n)),
                                        directed=False)
    sizes = np.sort(np.bincount(label))[::-1]
    halves = [0, 0]
    for size in sizes:
        halves[int(halves[0] > halves[1])] += int(size)
    return int(count), float(sizes[0] / n), float(max(halves) / n)


def main(argv=None):
    from napari_deepseg.core import SegmentationSession
    from napari_deepseg.core.cut import maxflow

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="mosaic:25")
    ap.add_argument("--min-nodes", type=int, default=100_000)
    args = ap.parse_args(argv)
    solve, log = maxflow.min_cut, []

    def spy(n, edges, src, snk, hard=1e9, init=None, hpf=True):
        t0 = time.perf_counter()
        label = solve(n, edges, src, snk, hard, init, hpf)
        seconds = time.perf_counter() - t0
        if n >= args.min_nodes:
            t1 = time.perf_counter()
            count, largest, half = pieces(n, edges)
            t2 = time.perf_counter()
            size = len(pickle.dumps((edges.parts, src, snk), protocol=5))
            log.append({"nodes": n, "solve_s": round(seconds, 3), "pieces": count, "largest_share": round(largest, 3),
                        "half_share": round(half, 3), "split_s": round(t2 - t1, 3), "pickled_mb": round(size / 1e6),
                        "pickle_s": round(time.perf_counter() - t2, 3)})
            print(json.dumps(log[-1]), flush=True)
        return label

    maxflow.min_cut = spy  # bands.py calls it through the module
    image, _mask, strokes = photo_run(args.run)
    session = SegmentationSession("classic")
    session.set_image(image)
    session.prepare_default()
    t0 = time.perf_counter()
    session.segment(strokes)
    print(json.dumps({"cut_s": round(time.perf_counter() - t0, 2), "big_solves": len(log),
                      "solve_total_s": round(sum(r["solve_s"] for r in log), 2),
                      "two_halves_at_once_s": round(sum(r["solve_s"] * r["half_share"] for r in log), 2),
                      "split_s": round(sum(r["split_s"] for r in log), 2),
                      "pickle_s": round(sum(r["pickle_s"] for r in log), 2)}))


if __name__ == "__main__":
    main()
