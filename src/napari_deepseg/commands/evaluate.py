"""``napari-deepseg evaluate``: score a folder of predicted masks against a folder of references."""

from __future__ import annotations

import sys
import time

from ._common import PROG, CLIError


def _classes(text):
    if text is None:
        return None
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise CLIError(f"--classes must be comma-separated integer labels, got {text!r}") from None
    if not values:
        raise CLIError("--classes is empty")
    return values


def run(args) -> int:
    """Pair files by stem, score each pair, print the means, write JSON/CSV."""
    from ..core.evaluation.folders import FILE_COLUMNS, evaluate_folders, write_csv, write_json
    from ..core.evaluation.metrics import SCORE_NAMES

    for option, suffix in (("json", ".json"), ("csv", ".csv")):
        path = getattr(args, option)
        if path is not None and not str(path).lower().endswith(suffix):
            raise CLIError(f"--{option} {path}: use a file name ending in {suffix}")
    t0 = time.perf_counter()
    result = evaluate_folders(args.pred_dir, args.gt_dir, ignore=args.ignore, classes=_classes(args.classes),
                              workers=args.workers)
    seconds = time.perf_counter() - t0
    for name, reason in result.problems:
        print(f"{PROG}: {name}: {reason}", file=sys.stderr)
    if args.json:
        write_json(args.json, result)
    if args.csv:
        mean_row = {"file": "mean", "status": f"{result.evaluated} files", **result.mean}
        write_csv(args.csv, result.rows + [mean_row], FILE_COLUMNS)
    if not result.evaluated:
        raise CLIError(f"no pair of files could be evaluated ({len(result.rows)} stems, see the lines above)")
    print(" ".join(f"{k}={result.mean[k]:.4f}" for k in SCORE_NAMES))
    if not args.quiet:
        print(f"{result.evaluated} of {len(result.rows)} files evaluated in {seconds:.2f} s"
              f"{f', {len(result.problems)} not' if result.problems else ''}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``evaluate`` sub-command."""
    ev = sub.add_parser("evaluate", help="score predicted masks against reference masks (files paired by stem)",
                        description="Score every mask in PRED_DIR against the mask of the same file stem in "
                                    "GT_DIR: IoU, Dice, pixel accuracy, precision, recall, F1, MSE. Binary "
                                    "(non-zero = object) unless --classes is given. Missing partners, unreadable "
                                    "files and shape mismatches are reported per file.")
    ev.add_argument("pred_dir", metavar="PRED_DIR", help="folder of predicted masks (.png, .tif, .bmp, ...)")
    ev.add_argument("gt_dir", metavar="GT_DIR", help="folder of reference masks")
    ev.add_argument("--ignore", type=int, default=None, help="reference value left out of every score, e.g. 128")
    ev.add_argument("--classes", default=None,
                    help="comma-separated labels scored one against the rest (mean per file), e.g. 0,1,2")
    ev.add_argument("--json", default=None, metavar="OUT.json", help="write the means and a row per file")
    ev.add_argument("--csv", default=None, metavar="OUT.csv", help="write a row per file and a mean row")
    ev.add_argument("--workers", type=int, default=2, help="threads reading files (default 2)")
    ev.add_argument("-q", "--quiet", action="store_true", help="print only the mean scores")
    ev.set_defaults(func=run)
