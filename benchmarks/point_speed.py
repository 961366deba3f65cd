"""Speed of point prompts on a 481x321 image: CLIP features, PointCLIP's decoder, the training-free cut.

ViT-B/32 with random weights (``CLIPVisionConfig()``'s defaults are ViT-B/32's
architecture) measures the same compute as the real checkpoint, so no download
is needed. Prints medians::

    python benchmarks/point_speed.py [--repeat 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _image():
    sys.path.insert(0, str(Path(__file__).parent))
    from _data import datasets_dir

    from napari_deepseg.core.evaluation.benchmark import dataset_items

    try:
        return dataset_items(datasets_dir() / "grabcut", limit=1)[0].load()
    except ValueError:
        from napari_deepseg.core.models.training.synthetic import shapes_sample

        image, mask = shapes_sample(321, seed=0)
        return np.pad(image, ((0, 0), (0, 160), (0, 0)), mode="edge"), np.pad(mask, ((0, 0), (0, 160)))


def main(argv=None) -> int:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from napari_deepseg.core import get_extractor
    from napari_deepseg.core.evaluation.benchmark import next_click
    from napari_deepseg.core.prompts.base import get_click_method
    from napari_deepseg.core.prompts.pointclip import build_decoder, default_config
    from napari_deepseg.core.models.training.checkpoint import save_checkpoint
    from napari_deepseg.core.utils.validation import as_float_image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    image, mask = _image()
    truth = (mask > 0) & (mask != 128)
    work = Path(tempfile.mkdtemp(prefix="point-speed-"))
    torch.manual_seed(0)
    CLIPVisionModel(CLIPVisionConfig()).save_pretrained(work / "vit-b-32")
    clip = str(work / "vit-b-32")
    print(f"load {os.getloadavg()[0]:.2f}, image {image.shape}, torch threads {torch.get_num_threads()}")

    # CLIP features as a backbone (points-graphcut on clip), default resolution 448
    ex = get_extractor("clip", weights=clip, device="cpu")
    norm = as_float_image(image)
    ex.extract(norm)  # load + warm up
    t = _median_time(lambda: ex.extract(norm), args.repeat)
    print(f"clip backbone ViT-B/32 at 448 px (grid {ex.extract(norm).data.shape[:2]}): {t:.3f} s per image")

    # PointCLIP: random decoder in a real checkpoint folder, loaded by the click method
    cfg = default_config(clip, 768, 32, 224)
    save_checkpoint(work / "pc", build_decoder(768).state_dict(), cfg)
    pc = get_click_method("pointclip", checkpoint=str(work / "pc"), device="cpu")
    pc.set_image(image)
    pc._cache = None
    t = _median_time(lambda: (setattr(pc, "_cache", None), pc.set_image(image)), args.repeat)
    print(f"pointclip set_image (ViT-B/32 at 224 px): {t:.3f} s")
    click = next_click(np.zeros(truth.shape, bool), truth, np.zeros(truth.shape, bool), ignore=None)
    clicks = [click, type(click)(5, 5, False)]
    t = _median_time(lambda: pc.predict(clicks), args.repeat * 4)
    m = pc.model
    _, _, x, tokens = pc._cache
    from napari_deepseg.core.prompts.pointclip import click_heatmaps, heat_image

    heat = torch.from_numpy(click_heatmaps(clicks, image.shape[:2], m.size, m.sigma))[None]
    heat_tokens = m.encode(heat_image(heat))

    def decode():
        with torch.inference_mode():
            m.decoder(x, heat, tokens, heat_tokens)

    td = _median_time(decode, args.repeat * 4)
    th = _median_time(lambda: m.encode(heat_image(heat)), args.repeat * 4)
    print(f"pointclip predict: {t * 1000:.0f} ms in all = decoder {td * 1000:.0f} ms + heatmap CLIP "
          f"{th * 1000:.0f} ms + resize/threshold")

    # points-graphcut, classic features and clip (random ViT-B/32) features
    for features, extra in (("classic", {}), ("clip", {"weights": clip, "device": "cpu"})):
        method = get_click_method("points-graphcut", features=features, **extra)
        t0 = time.perf_counter()
        method.set_image(image)
        ts = time.perf_counter() - t0
        pred = np.zeros(truth.shape, bool)
        clicked = np.zeros(truth.shape, bool)
        seq, times = [], []
        for _ in range(8):
            c = next_click(pred, truth, clicked, ignore=None)
            clicked[c.row, c.col] = True
            seq.append(c)
            t0 = time.perf_counter()
            pred = method.predict(seq)
            times.append(time.perf_counter() - t0)
        pos = [1000 * s for s, c in zip(times, seq) if c.positive]
        neg = [1000 * s for s, c in zip(times, seq) if not c.positive]
        print(f"points-graphcut {features}: set_image {ts:.2f} s; predict median {1000 * np.median(times):.0f} ms "
              f"(positive clicks {np.median(pos):.0f} ms, negative {np.median(neg) if neg else float('nan'):.0f} ms, "
              f"8 clicks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
