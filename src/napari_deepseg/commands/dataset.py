"""``napari-deepseg dataset status | replay``: an annotated folder's progress, and its masks re-made from the records."""

from __future__ import annotations

import sys

from ._common import CLIError


def run_status(args) -> int:
    """Print ``done/total`` and the number of images per status (and each unreadable file's reason)."""
    from ..core.dataset.folder import STATUSES, read_summary

    summary = read_summary(args.output)
    if args.json:
        import json

        print(json.dumps({"output": str(args.output), **summary}, indent=1))
        return 0
    counts, total = summary["counts"], summary["total"]
    print(f"{args.output}: {counts['done']}/{total} done")
    for status in STATUSES:
        print(f"  {status:<13} {counts[status]}")
    for name, reason in sorted(summary["unreadable"].items()):
        print(f"  unreadable: {name}: {reason}")
    return 0


def run_replay(args) -> int:
    """Re-create the masks of an output folder from its records with the current engines."""
    from ..core.dataset import DatasetFolder
    from ..core.dataset.replay import replay_folder

    folder = DatasetFolder.reopen(args.output, images=args.images, read_only=args.dry_run)
    try:
        if folder.read_only and not args.dry_run:
            raise CLIError(f"{folder.message}; close the other session (or use --dry-run to compare only)")

        def progress(done, total, name):
            if not args.quiet:
                print(f"[{done}/{total}] {name}", file=sys.stderr)

        outcomes = replay_folder(folder, write=not args.dry_run, progress=progress)
    finally:
        folder.close()
    counts = {k: sum(o.outcome == k for o in outcomes) for k in ("same", "changed", "kept", "failed")}
    changed = "differ (not written: --dry-run)" if args.dry_run else "changed (written; the old masks are in .history/)"
    print(f"{args.output}: {len(outcomes)} records: {counts['same']} same, {counts['changed']} {changed}, "
          f"{counts['kept']} kept (edited by hand or no prompts), {counts['failed']} failed")
    for o in outcomes:
        if o.outcome == "failed":
            print(f"{o.name}: failed: {o.reason}", file=sys.stderr)
        elif o.outcome == "changed" and not args.quiet:
            print(f"{o.name}: {'differs' if args.dry_run else 'changed'}" + (f" ({o.reason})" if o.reason else ""))
    return 1 if counts["failed"] else 0


def add_parser(sub) -> None:
    """Add the ``dataset`` sub-command (``status``, ``replay``)."""
    ds = sub.add_parser("dataset", help="a folder annotated image by image: its status, its masks replayed",
                        description="The output folder of a dataset annotated in napari (masks/, records/, "
                                    "dataset.json): print its status, or re-create its masks from the records.")
    verbs = ds.add_subparsers(dest="dataset_command", required=True)
    st = verbs.add_parser("status", help="print done/total and the number of images per status")
    st.add_argument("output", help="the dataset's output folder (holds dataset.json)")
    st.add_argument("--json", action="store_true",
                    help='print {"output", "images", "total", "counts": {status: n}, "unreadable": {name: reason}}')
    st.set_defaults(func=run_status)
    rp = verbs.add_parser("replay", help="re-create the masks from the saved records with the current engines",
                          description="Re-create every mask that has a record (strokes, clicks, boxes, engine) "
                                      "with the engines of this version; masks painted by hand are kept. A mask "
                                      "that changes is written atomically, its previous version kept in .history/. "
                                      "Exit status 1 when an image fails.")
    rp.add_argument("output", help="the dataset's output folder (holds dataset.json)")
    rp.add_argument("--images", default=None, metavar="DIR",
                    help="read the images from this folder (the same file names) instead of the recorded one, "
                         "which it replaces in dataset.json; images of another size (the originals of a shrunk "
                         "copy that was annotated) are replayed with their prompts rescaled")
    rp.add_argument("--dry-run", action="store_true", help="compare only: write nothing")
    rp.add_argument("-q", "--quiet", action="store_true", help="print the summary and failures only")
    rp.set_defaults(func=run_replay)
