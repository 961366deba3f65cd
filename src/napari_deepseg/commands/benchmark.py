"""``napari-deepseg benchmark``: the click, box, scribble and corrective-stroke protocols on a dataset folder."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

from ._common import CLIError, add_backbone_options, backbone_params

PLOT_SUFFIXES = (".png", ".svg", ".pdf")
#: the most corrective strokes ``--protocol corrections`` paints per image
MAX_STROKES = 20


def _method_params(factory, args) -> dict:
    """The options a click method's constructor accepts, from the parsed arguments."""
    params = {"features": args.features}
    params.update(backbone_params(args))
    if args.checkpoint:
        params["checkpoint"] = args.checkpoint
    accepted = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        return params
    unused = [k for k in ("weights", "checkpoint") if params.get(k) and k not in accepted]
    if unused:
        raise CLIError(f"method '{args.method}' takes no --{unused[0]}")
    return {k: v for k, v in params.items() if k in accepted}


def _progress_bar(total: int, desc: str, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="image", file=sys.stderr, disable=quiet, dynamic_ncols=True)


def _click_method(args):
    """The click method the arguments name, wrapped in a PromiseWatch for ``--check-promises``."""
    from ..core.evaluation.promises import PromiseWatch
    from ..core.prompts.base import _METHODS, get_click_method

    method = get_click_method(args.method, **_method_params(_METHODS[args.method], args))
    return PromiseWatch(method) if args.check_promises else method


def _add_promises(summary: dict, method, items) -> None:
    """The promise counts of a watched method, and the masks that broke one (``[stem, clicks, promises]``)."""
    from ..core.evaluation.promises import PromiseWatch

    if isinstance(method, PromiseWatch):
        summary["promises"] = method.counts.as_dict()
        summary["promise_failures"] = [[items[i].stem, n, broken] for i, n, broken in method.failures]


def _run_clicks(args, items) -> dict:
    from ..core.evaluation import benchmark as B

    method = _click_method(args)
    runs, per_image = [], {}
    with _progress_bar(len(items), f"{args.method} clicks", args.quiet) as bar:
        for stem, run in B.run_clicks_on_dataset(method, items, ignore=args.ignore, max_clicks=args.max_clicks,
                                                 target=args.target):
            runs.append(run)
            per_image[stem] = {"noc85": run.noc(0.85, args.max_clicks), "noc90": run.noc(0.90, args.max_clicks),
                               "ious": [round(v, 4) for v in run.ious]}
            bar.set_postfix(noc90=f"{sum(r.noc(0.9, args.max_clicks) for r in runs) / len(runs):.2f}")
            bar.update()
    summary = B.summarize_clicks(runs, args.max_clicks)
    summary["per_image"] = per_image
    _add_promises(summary, method, items)
    return summary


def _run_boxes(args, items) -> dict:
    from ..core.evaluation import benchmark as B

    method = _click_method(args)
    if not getattr(method, "takes_box", False):
        raise CLIError(f"method '{args.method}' takes no box; the box protocol runs graphcut")
    runs, per_image = [], {}
    with _progress_bar(len(items), f"{args.method} box", args.quiet) as bar:
        for stem, run in B.run_boxes_on_dataset(method, items, ignore=args.ignore, margin=args.box_margin,
                                                max_clicks=args.max_clicks, target=args.target):
            runs.append(run)
            b = run.box
            per_image[stem] = {"box": [b.r0, b.c0, b.r1, b.c1], "box_iou": round(run.box_iou, 4),
                               "box_error": round(run.box_error, 5),
                               "noc85": run.noc(0.85, args.max_clicks), "noc90": run.noc(0.90, args.max_clicks),
                               "ious": [round(v, 4) for v in run.ious]}
            bar.set_postfix(miou_box=f"{sum(r.box_iou for r in runs) / len(runs):.3f}")
            bar.update()
    summary = B.summarize_boxes(runs, args.max_clicks)
    summary.update(per_image=per_image, box_margin=args.box_margin)
    _add_promises(summary, method, items)
    return summary


def _run_scribbles(args, items) -> dict:
    from ..core import SegmentationSession
    from ..core.evaluation import benchmark as B

    if args.method != "graphcut":
        raise CLIError(f"the scribble protocol runs the graph cut; method '{args.method}' takes clicks only")
    session = SegmentationSession(args.features, **backbone_params(args))

    def segment(image, scribbles):
        session.set_image(image)
        return session.segment(scribbles)

    with _progress_bar(len(items), f"{args.scribbles_dir}", args.quiet) as bar:
        return B.run_scribble_protocol(segment, items, args.dataset, args.scribbles_dir, ignore=args.ignore,
                                       progress=lambda done, total, stem: bar.update())


def live_options(args):
    """The :class:`~napari_deepseg.core.cut.service.Options` of the Scribble widget's default request for ``args``."""
    from ..core.cut import service

    return service.Options(args.features, "default", None, None, tuple(sorted(backbone_params(args).items())))


def live_cut(slot, options, image):
    """``cut(scribbles) -> labels`` for ``image`` as the Scribble widget answers a stroke with Live on.

    The widget's path (``_qt/scribble_widget.py``): one pooled session of the default
    preset per backbone (:class:`~napari_deepseg.core.cut.service.SessionPool`; ``slot``
    is its slot for ``options``), every request a
    :func:`~napari_deepseg.core.cut.service.run_request` with ``local=True`` and all
    strokes so far (``local_corrections=True``: strokes added to the last answer change
    only the regions they touch; and ``defer=True``: a small image's whole cut leaves its found star
    centres to a second cut). Where the local update applied or the cut was deferred,
    the widget shows it and then cuts the whole image in the background
    (``local=False``, ``defer=False``), which replaces it on screen: that last mask is
    the one returned. ``cut.local`` lists, per call,
    whether the local update applied (never on GrabCut's photos: the update's
    window, the strokes' box grown by ``UPDATE_BOUND`` = 512 px, covers more than a
    quarter of a 640 x 480 photo, so every request is a whole cut).
    """
    from ..core.cut import service

    def cut(scribbles):
        labels = service.run_request(slot, image, scribbles, options, local=True, defer=True,
                                     local_corrections=True)
        local = bool(getattr(slot.last, "last_local", False))
        cut.local.append(local)
        if local or getattr(slot.last, "last_deferred", False):  # the widget's background cut of the whole image
            labels = service.run_request(slot, image, scribbles, options, local_corrections=True)
        return labels

    cut.local = []
    return cut


def _run_corrections(args, items) -> dict:
    """The corrective-stroke protocol (:func:`~napari_deepseg.core.evaluation.benchmark.run_correction_protocol`)
    on every image with a scribble file, cut as :func:`live_cut` does."""
    from ..core.cut.service import SessionPool
    from ..core.evaluation import benchmark as B
    from ..core.io.files import read_labels

    if args.method != "graphcut":
        raise CLIError(f"the corrections protocol runs the scribble cut; method '{args.method}' takes clicks only")
    pool, options = SessionPool(), live_options(args)
    runs, per_image, missing = {}, {}, []
    try:
        with _progress_bar(len(items), f"{args.scribbles_dir} + {args.strokes} strokes", args.quiet) as bar:
            for item in items:
                path = B.scribble_path(args.dataset, args.scribbles_dir, item.stem)
                if path is None:
                    missing.append(item.stem)
                    bar.update()
                    continue
                image, mask = item.load()
                cut = live_cut(pool.slot(options), options, image)
                run = B.run_correction_protocol(cut, mask, read_labels(path), strokes=args.strokes,
                                                ignore=args.ignore)
                runs[item.stem] = run
                per_image[item.stem] = {
                    "ious": [round(v, 4) for v in run.ious],
                    "strokes": [s.as_list() for s in run.strokes],
                    "far_changed": [p["far_changed"] for p in run.promises],
                    "far_distance": [p["distance"] for p in run.promises],
                    "far_limit": run.promises[0]["limit"] if run.promises else None,
                    "far_broken": [p["broken"] for p in run.promises],
                    "local": cut.local,
                }
                bar.set_postfix(gain=f"{sum(r.ious[-1] - r.ious[0] for r in runs.values()) / len(runs):+.3f}")
                bar.update()
    finally:
        pool.close()
    if not runs:
        raise CLIError(f"no scribble file found in {args.dataset / args.scribbles_dir} for any image")
    summary = B.summarize_corrections(runs)
    summary.update(per_image=per_image, missing=missing, scribbles_dir=args.scribbles_dir,
                   stroke_format="[row, col, radius, label (1 object, 2 background), depth, error region px]")
    return summary


def _print_summary(args, result: dict) -> None:
    if args.protocol == "clicks":
        print(f"{args.dataset.name}: {result['n']} images, {args.method}/{args.features}: "
              f"NoC@85 {result['noc85']:.2f}, NoC@90 {result['noc90']:.2f}, NoF@85 {result['nof85']}, "
              f"NoF@90 {result['nof90']}, mIoU@1 {result['miou_at_clicks'][0]:.3f}, "
              f"mIoU@5 {result['miou_at_clicks'][min(4, len(result['miou_at_clicks']) - 1)]:.3f}, "
              f"{1000 * result['seconds_per_click']:.0f} ms/click (median), {result['seconds_total']:.0f} s in all")
    elif args.protocol == "box":
        print(f"{args.dataset.name}: {result['n']} images, box margin {args.box_margin:g}, "
              f"{args.method}/{args.features}: after the box mIoU {result['miou_box']:.3f}, mean error "
              f"{100 * result['error_box']:.2f} % of the box, then "
              f"NoC@85 {result['noc85']:.2f}, NoC@90 {result['noc90']:.2f}, NoF@85 {result['nof85']}, "
              f"NoF@90 {result['nof90']}, {1000 * result['seconds_per_update']:.0f} ms/update (median), "
              f"{result['seconds_total']:.0f} s in all")
    elif args.protocol == "corrections":
        means = " → ".join(f"{v:.3f}" for v in result["miou_per_stroke"])
        worst = ", ".join(f"{stem} {a:.3f} → {b:.3f}" for stem, a, b in result["lost_after_1"][:4])
        print(f"{args.dataset.name}/{args.scribbles_dir} + {result['strokes']} corrective strokes: {result['n']} "
              f"images, {args.features}: mean IoU {means}; stroke 1 made {len(result['worse_after_1'])} worse, "
              f"{len(result['lost_after_1'])} by more than {result['loss_tolerance']:g}"
              f"{' (' + worst + ')' if worst else ''}; {len(result['ended_below_start'])} end below their start; "
              f"far-change promise broken per stroke {result['far_broken_per_stroke']}; "
              f"{result['seconds_total']:.0f} s in all")
    else:
        print(f"{args.dataset.name}/{args.scribbles_dir}: {result['n']} images, {args.features}: "
              f"mean IoU {result['miou']:.3f}, {result['seconds_total']:.0f} s in all")
    if "promises" in result:
        p = result["promises"]
        print(f"promises: {p['masks']} masks, {p['broken']} broken ({p['stray_pieces']} with a piece holding no "
              f"positive click outside the box; negative clicks on the object still object: {p['negatives_kept']} "
              f"of {p['negatives_on_object']}; positive clicks on missed parts still missed: {p['positives_lost']} "
              f"of {p['positives_on_missed']})")


def run(args) -> int:
    """Run one protocol on one dataset; print a summary, optionally write JSON and a plot."""
    import time

    from ..core.evaluation import benchmark as B
    from ..core.prompts.base import available_click_methods

    for opt, suffixes in (("json", (".json",)), ("plot", PLOT_SUFFIXES)):
        value = getattr(args, opt)
        if value and Path(value).suffix.lower() not in suffixes:
            raise CLIError(f"--{opt} {value}: use a file name ending in {', '.join(suffixes)}")
    if args.check_promises and args.protocol in ("scribbles", "corrections"):
        raise CLIError("--check-promises checks the masks of clicks and boxes: use it with --protocol clicks or box "
                       "(--protocol corrections always checks its far-change promise)")
    if args.strokes is not None and args.protocol != "corrections":
        raise CLIError("--strokes counts corrective strokes: use it with --protocol corrections")
    if args.protocol == "corrections":
        args.strokes = 1 if args.strokes is None else args.strokes
        if not 1 <= args.strokes <= MAX_STROKES:
            raise CLIError(f"--strokes must be between 1 and {MAX_STROKES}, got {args.strokes}")
    if args.plot and args.protocol != "clicks":
        raise CLIError("--plot draws click curves: use it with --protocol clicks")
    if args.method not in available_click_methods():
        raise CLIError(f"unknown method '{args.method}'; choose one of {', '.join(available_click_methods())}")
    if not 0 <= args.box_margin <= 10:
        raise CLIError(f"--box-margin must be between 0 and 10 (a fraction of the object's size), got {args.box_margin}")
    if not 1 <= args.max_clicks <= 100:
        raise CLIError(f"--max-clicks must be between 1 and 100, got {args.max_clicks}")
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be at least 1, got {args.limit}")
    args.dataset = Path(args.dataset)
    items = B.dataset_items(args.dataset, args.limit)
    t0 = time.perf_counter()
    runner = {"clicks": _run_clicks, "box": _run_boxes, "scribbles": _run_scribbles,
              "corrections": _run_corrections}[args.protocol]
    result = runner(args, items)
    result["seconds_total"] = time.perf_counter() - t0
    result.update(dataset=args.dataset.name, protocol=args.protocol, method=args.method, features=args.features)
    if args.protocol in ("scribbles", "corrections"):
        result["scribbles_dir"] = args.scribbles_dir
    if not args.quiet:
        _print_summary(args, result)
    if args.json:
        from ..core.io.atomic import atomic_write_json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, result)
    if args.plot:
        curves = {f"{args.method}/{args.features}": result}
        for other in args.compare or ():
            data = json.loads(Path(other).read_text())
            if "miou_at_clicks" not in data:
                raise CLIError(f"--compare {other} holds no click results (no 'miou_at_clicks')")
            curves[f"{data.get('method', '?')}/{data.get('features', '?')} ({Path(other).stem})"] = data
        B.plot_click_curves(curves, args.plot, dataset=args.dataset.name.lower())
    return 0


def add_parser(sub) -> None:
    """Add the ``benchmark`` sub-command."""
    from ..core.evaluation.benchmark import DEFAULT_IGNORE, MAX_CLICKS, TARGET_IOU
    from ..core.prompts.box import DEFAULT_MARGIN

    b = sub.add_parser("benchmark",
                       help="score a method on a dataset with the click, box, scribble or corrective-stroke protocol",
                       description="DATASET holds images/ and masks/ with matching file stems.")
    b.add_argument("dataset", help="dataset folder with images/ and masks/ (e.g. ../shared/datasets/grabcut)")
    b.add_argument("--protocol", choices=("clicks", "box", "scribbles", "corrections"), default="clicks",
                   help="clicks; box (a box around the object, then clicks); scribbles; corrections (the "
                        "scribbles, then --strokes corrective strokes, each a disk where the mask is most wrong, "
                        "cut as the Scribble widget does with Live on)")
    b.add_argument("--box-margin", type=float, default=DEFAULT_MARGIN,
                   help=f"box protocol: the object's tight box enlarged by this fraction of its size on each side "
                        f"(default {DEFAULT_MARGIN:g}); 0: the literature's tight box of the object and its unknown "
                        f"band (--ignore), scored by IoU and the error rate (misclassified pixels / box area)")
    b.add_argument("--scribbles-dir", default="scribbles-set-1",
                   help="scribble folder inside DATASET (scribbles, corrections)")
    b.add_argument("--strokes", type=int, default=None,
                   help=f"corrections: corrective strokes per image, 1 to {MAX_STROKES} (default 1)")
    b.add_argument("--method", default="graphcut", help="click method (default graphcut)")
    add_backbone_options(b)
    b.add_argument("--checkpoint", default=None, help="trained model folder, for methods that take one")
    b.add_argument("--max-clicks", type=int, default=MAX_CLICKS, help=f"click budget (default {MAX_CLICKS})")
    b.add_argument("--target", type=float, default=TARGET_IOU, help="stop an image at this IoU (default 0.90)")
    b.add_argument("--ignore", type=int, default=DEFAULT_IGNORE, help="mask value left out (default 128)")
    b.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by stem)")
    b.add_argument("--json", default=None, help="write the results as JSON")
    b.add_argument("--plot", default=None, help="write mIoU-vs-clicks curves (PNG/SVG/PDF)")
    b.add_argument("--compare", nargs="*", default=None, metavar="JSON",
                   help="earlier --json results drawn beside this run in --plot")
    b.add_argument("--check-promises", action="store_true",
                   help="check every mask against the click engine's promises (docs/point-prompts.md): every piece "
                        "holds a positive click or lies in the box, a negative click on the object removes what it "
                        "lands on, a positive click on a missed part adds it; counted in the summary and the JSON")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    b.set_defaults(func=run)
