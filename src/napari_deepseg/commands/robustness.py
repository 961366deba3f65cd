"""``napari-deepseg robustness CKPT_DIR DATASET``: scores of a checkpoint under image perturbations."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import CLIError


def _perturbations(text):
    from ..core.models.robustness import PERTURBATIONS

    if not text:
        return list(PERTURBATIONS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in PERTURBATIONS]
    if bad or not names:
        raise CLIError(f"--perturbations: unknown {bad[0] if bad else 'empty list'!r}; choose from "
                       f"{', '.join(PERTURBATIONS)}")
    return names


def run(args) -> int:
    """Evaluate the checkpoint on the dataset, clean and perturbed; print a table, write JSON / a plot."""
    from tqdm import tqdm

    from ..core.models.predict import SegmentationModel
    from ..core.models.robustness import plot_robustness, robustness_study
    from ..core.models.training import find_samples

    for option, suffixes in (("json", (".json",)), ("plot", (".png", ".pdf", ".svg"))):
        path = getattr(args, option)
        if path is not None and not str(path).lower().endswith(suffixes):
            raise CLIError(f"--{option} {path}: use a file name ending in {' or '.join(suffixes)}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = _perturbations(args.perturbations)
    samples = find_samples(args.dataset)
    if args.limit:
        samples = samples[: args.limit]
    t0 = time.perf_counter()
    model = SegmentationModel(args.checkpoint, device=args.device)
    bar = tqdm(total=0, desc="robustness", unit="prediction", file=sys.stderr,
               disable=args.quiet or not sys.stderr.isatty())

    def progress(done, total, _msg=""):
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = robustness_study(model, samples, names, seed=args.seed, progress=progress)
    finally:
        bar.close()
    print(result.table())
    if args.json:
        from ..core.io.atomic import atomic_write_json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, {"checkpoint": str(args.checkpoint), "dataset": str(args.dataset),
                                      "images": len(samples), "rows": result.rows})
    if args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        plot_robustness(result, args.plot, title=f"{model.config['model']} on {Path(args.dataset).name}")
    if not args.quiet:
        print(f"{len(samples)} images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``robustness`` sub-command."""
    ro = sub.add_parser("robustness", help="Dice/IoU of a checkpoint under noise, blur, contrast, brightness, "
                                           "occlusion, salt-and-pepper",
                        description="Segment every image of DATASET clean and under each perturbation at "
                                    "increasing strength; print a table of mean Dice and IoU.")
    ro.add_argument("checkpoint", metavar="CKPT_DIR", help="segmentation checkpoint folder")
    ro.add_argument("dataset", metavar="DATASET", help="folder with images/ + masks/ (or the Pet layout)")
    ro.add_argument("--perturbations", default=None, help="comma-separated subset (default: all six)")
    ro.add_argument("--limit", type=int, default=0, help="use only the first N images (0 = all)")
    ro.add_argument("--json", default=None, metavar="OUT.json", help="write the rows as JSON")
    ro.add_argument("--plot", default=None, metavar="OUT.png", help="save Dice/IoU-vs-strength panels")
    ro.add_argument("--seed", type=int, default=0, help="seed of the random perturbations")
    ro.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ro.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ro.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    ro.set_defaults(func=run)
