"""``napari-deepseg predict CKPT_DIR INPUT... -o OUT_DIR``: label images with a trained segmentation model."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import PROG, CLIError


def input_files(inputs) -> list:
    """Image files of the inputs (folders expanded to their images, sorted), stems unique.

    Raises
    ------
    CLIError
        For a missing input, an empty folder or two inputs with the same stem.
    """
    from ..core.models.training.data import IMAGE_SUFFIXES

    files = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            if not found:
                raise CLIError(f"folder {path} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CLIError(f"input not found: {path}")
    seen: dict = {}
    for f in files:
        if f.stem in seen:
            raise CLIError(f"{seen[f.stem]} and {f} have the same stem: their outputs would overwrite each other")
        seen[f.stem] = f
    return files


def output_name(stem: str, labels_ndim: int) -> str:
    """``STEM.png`` for a 2-D result, ``STEM.tif`` for a stack.

    Examples
    --------
    >>> output_name("cat", 2), output_name("cells", 3)
    ('cat.png', 'cells.tif')
    """
    return f"{stem}.png" if labels_ndim == 2 else f"{stem}.tif"


def run(args) -> int:
    """Load the checkpoint once, label every input, write one label image per input."""
    from tqdm import tqdm

    from ..core.io.files import read_image, write_labels
    from ..core.models.predict import SegmentationModel

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    files = input_files(args.inputs)
    out = Path(args.output).expanduser()
    if out.exists() and not out.is_dir():
        raise CLIError(f"-o {out} is a file, not a folder")
    t0 = time.perf_counter()
    model = SegmentationModel(args.checkpoint, device=args.device, backbone=args.backbone)
    options = {"scale": args.scale, "tile": args.tile, "overlap": args.overlap}
    failed = 0
    for path in tqdm(files, desc="predict", unit="image", file=sys.stderr, disable=args.quiet or len(files) < 2 or not sys.stderr.isatty()):
        try:
            labels = model.predict_stack(read_image(path), **options)
        except ValueError as exc:
            if len(files) == 1:
                raise
            print(f"{PROG}: {path.name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        write_labels(out / output_name(path.stem, labels.ndim), labels)
    if failed == len(files):
        raise CLIError("no input could be labelled")
    if not args.quiet:
        print(f"{len(files) - failed} label images in {out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``predict`` sub-command."""
    pr = sub.add_parser("predict", help="label images with a trained segmentation checkpoint",
                        description="Label every INPUT (image files, or folders of images) with the model in "
                                    "CKPT_DIR; writes OUT_DIR/STEM.png (2-D) or STEM.tif (stacks): 0 background, "
                                    "1 object, or the class index.")
    pr.add_argument("checkpoint", metavar="CKPT_DIR", help="folder from napari-deepseg train (model.safetensors + "
                                                          "config.json)")
    pr.add_argument("inputs", metavar="INPUT", nargs="+", help="image files or folders of images")
    pr.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for the label images")
    pr.add_argument("--scale", type=float, default=None,
                    help="resize by this factor and predict in tiles (default: resize to the training size)")
    pr.add_argument("--tile", type=int, default=512, help="tile side with --scale (network input pixels)")
    pr.add_argument("--overlap", type=int, default=64, help="tile overlap with --scale")
    pr.add_argument("--backbone", default=None, help="clip-seg: where the CLIP model is now (id or folder)")
    pr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    pr.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    pr.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    pr.set_defaults(func=run)
