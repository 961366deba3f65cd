"""How well would a large cut's band solves split in two processes? Components of every band graph of >= 100 000 nodes.

Usage: ``python benchmarks/band_pieces.py`` (the 25 MP mosaic, all its strokes; prints one line per graph and a summary).
"""
from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from _photos import photo_run
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import maxflow

orig = maxflow.min_cut
log = []
def spy(n, edges, src, snk, hard=1e9, init=None, hpf=True):
    t = time.perf_counter(); label = orig(n, edges, src, snk, hard, init, hpf); dt = time.perf_counter() - t
    if n >= 100_000:
        t1 = time.perf_counter()
        i = np.concatenate([p[0] for p in edges.parts]); j = np.concatenate([p[1] for p in edges.parts])
        g = csr_matrix((np.ones(i.size, np.int8), (i, j)), shape=(n, n))
        nc, lab = connected_components(g, directed=False)
        sizes = np.sort(np.bincount(lab))[::-1]
        # greedy two-way split by node count
        a = b = 0
        for sz in sizes:
            if a <= b: a += sz
            else: b += sz
        t_split = time.perf_counter() - t1
        nbytes = sum(p[0].nbytes + p[1].nbytes + p[2].nbytes + p[3].nbytes for p in edges.parts) + src.nbytes + snk.nbytes
        t2 = time.perf_counter(); pickled = len(pickle.dumps((edges.parts, src, snk), protocol=5)); t_pickle = time.perf_counter() - t2
        log.append({"n": n, "solve_s": round(dt, 3), "components": int(nc), "largest_share": round(sizes[0] / n, 3),
                    "split_share": round(max(a, b) / n, 3), "split_s": round(t_split, 3), "mb": round(nbytes / 1e6), "pickled_mb": round(pickled / 1e6), "pickle_s": round(t_pickle, 3)})
        print(log[-1], flush=True)
    return label
maxflow.min_cut = spy
import napari_deepseg.core.cut.bands as bands
bands.maxflow.min_cut = spy
image, mask, strokes = photo_run("mosaic:25")
s = SegmentationSession("classic"); s.set_image(image); s.prepare_default()
t = time.perf_counter(); s.segment(strokes); print("cut %.2f" % (time.perf_counter() - t))
tot = sum(r["solve_s"] for r in log); par = sum(r["solve_s"] * r["split_share"] for r in log)
print(json.dumps({"big_solves": len(log), "solve_total_s": round(tot, 2), "ideal_parallel_s": round(par, 2),
                  "split_overhead_s": round(sum(r["split_s"] for r in log), 2), "pickle_s": round(sum(r["pickle_s"] for r in log), 2)}))
