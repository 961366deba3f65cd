"""Speed of DeepLabV3 proposals on a 500 x 375 photo, one lean-inference step at a time.

Usage::

    python benchmarks/proposals_speed.py [--model deeplabv3_resnet101] [--repeat 3] [--steps] [--json OUT]

Each row is the best of ``--repeat`` runs (after one warm-up) of a forward
pass at the 520-pixel input (693 x 520 for a 500 x 375 photo). ``--steps``
first measures torchvision's model as it comes, then adds one change at a time:
``torch.inference_mode`` without the auxiliary head, ``channels_last``
tensors, batch-norm folded into the convolutions, bfloat16 autocast. The last
rows time :meth:`DeepLabProposer.propose` end to end (resize, tiling check,
forward, upsampling to the photo and the labels), float32 and bfloat16.
Weights are random (the compute is the same as with the COCO checkpoint),
saved to a temporary file and loaded through the plugin's real loader.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def best_of(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def photo():
    """A 375 x 500 RGB test picture (scikit-image's chelsea, resized)."""
    from skimage import data, transform

    img = transform.resize(data.chelsea(), (375, 500), anti_aliasing=True)
    return (img * 255).astype(np.uint8)


def main(argv=None):
    import torch
    import torchvision.models.segmentation as seg

    from napari_deepseg.core.models.inference import fold_batchnorm, to_tensor
    from napari_deepseg.core.models.proposals import (
        MODELS,
        DeepLabProposer,
        model_input_shape,
        model_name,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deeplabv3_resnet101")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", action="store_true", help="also time each lean-inference step on the bare model")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    name = model_name(args.model)
    torch.manual_seed(0)
    image = photo()
    shape = model_input_shape(image.shape[:2], 520)
    rows = {"model": name, "input": list(shape), "threads": torch.get_num_threads(),
            "load_before": os.getloadavg()[0], "seconds": {}}
    net = getattr(seg, MODELS[name][0])(weights=None, weights_backbone=None, num_classes=21, aux_loss=True).eval()
    if args.steps:
        x = to_tensor(image / 255.0, size=shape, channels_last=False)
        with torch.no_grad():
            rows["seconds"]["torchvision forward (no_grad, aux head)"] = best_of(lambda: net(x), args.repeat)
        net.aux_classifier = None
        with torch.inference_mode():
            rows["seconds"]["+ inference_mode, no aux head"] = best_of(lambda: net(x), args.repeat)
            net = net.to(memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)
            rows["seconds"]["+ channels_last"] = best_of(lambda: net(xc), args.repeat)
            fold_batchnorm(net)
            rows["seconds"]["+ batch-norm folded"] = best_of(lambda: net(xc), args.repeat)

            def bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    net(xc)

            rows["seconds"]["+ bfloat16 autocast"] = best_of(bf16, args.repeat)
        net = getattr(seg, MODELS[name][0])(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weights.pth")
        torch.save(net.state_dict(), path)
        net = None  # free it before timing the plugin's own model
        for precision in ("float32", "bfloat16"):
            proposer = DeepLabProposer(name, weights=path, device="cpu", precision=precision)
            proposer.load_model()
            rows["seconds"][f"propose() end to end, {precision}"] = best_of(
                lambda p=proposer: p.propose(image, classes="pet"), args.repeat)
    rows["load_after"] = os.getloadavg()[0]
    for k, v in rows["seconds"].items():
        print(f"{k:45s} {v:6.2f} s")
    print(f"load average before/after: {rows['load_before']:.2f} / {rows['load_after']:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
