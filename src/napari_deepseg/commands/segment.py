"""``napari-deepseg segment``: one image, a scribble image, point prompts and/or a box, a label mask out."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import CLIError, add_backbone_options, backbone_params

#: click methods answering ``--points`` (the first is the default)
POINT_METHODS = ("graphcut", "points-graphcut", "pointclip")


def run(args) -> int:
    """Segment one image from a scribble image, point prompts or a box and write the label mask."""
    if args.scribbles is None and args.points is None and args.box is None:
        raise CLIError("give the prompts: --scribbles, --points and/or --box")
    if args.box is not None:
        return run_box(args)
    if args.scribbles is not None and args.points is not None:
        raise CLIError("--points and --scribbles go together only with a --box")
    if args.points is not None:
        if args.feature_cache is not None:
            raise CLIError("--feature-cache is used with --scribbles, not with --points")
        if args.channel_axis is not None:
            raise CLIError("--channel-axis is used with --scribbles, not with --points")
        if args.mode is not None or args.spacing is not None:
            raise CLIError("--mode and --spacing are used with 3-D --scribbles, not with --points")
        return run_points(args)
    from ..core import SegmentationSession
    from ..core.io.files import LABEL_SUFFIXES, read_image, read_labels, write_labels
    from ..core.utils.validation import as_float_image, channels_last, check_scribbles

    if Path(args.output).suffix.lower() not in LABEL_SUFFIXES:
        raise CLIError(f"cannot write labels to {args.output}: use a file name ending in {', '.join(LABEL_SUFFIXES)}")
    image = read_image(args.image)
    scribbles = read_labels(args.scribbles)
    if _is_volume(image, scribbles, args):
        return run_volume(args, image, scribbles, write_labels)
    if args.spacing is not None:
        raise CLIError("--spacing is for 3-D images (a TIFF stack with 3-D scribbles)")
    axis = args.channel_axis
    plane = as_float_image(image) if axis is None else channels_last(image, axis, name=f"image {args.image}")
    check_scribbles(scribbles, plane.shape[:2], name=f"scribbles {args.scribbles}")
    del plane
    t0 = time.perf_counter()
    session = SegmentationSession(args.features, feature_cache=args.feature_cache, **backbone_params(args))
    session.set_image(image, channel_axis=axis)
    t1 = time.perf_counter()
    mask = session.segment(scribbles, preset=args.preset, lam=args.lam, sigma=args.sigma, iterations=args.iterations)
    t2 = time.perf_counter()
    out = write_labels(args.output, mask)
    if not args.quiet:
        print(f"{out}: {mask.shape[1]}x{mask.shape[0]} labels {sorted(set(mask.ravel().tolist()))}, "
              f"features {t1 - t0:.2f} s, cut {t2 - t1:.2f} s", file=sys.stderr)
    return 0


def _is_volume(image, scribbles, args) -> bool:
    """A 3-D cut when the scribbles are 3-D (a TIFF stack) or ``--mode`` asks for one."""
    return scribbles.ndim == 3 or args.mode is not None


def run_volume(args, image, scribbles, write_labels) -> int:
    """Segment a volume or stack with 3-D scribbles (``--mode 3d`` or ``planes``) and write a TIFF stack."""
    from ..core.cut.service import check_volume_options
    from ..core.cut.volume import VolumeSession

    try:
        check_volume_options(args.features, args.preset, args.channel_axis, args.feature_cache)
    except ValueError as exc:
        raise CLIError(f"{exc}; 3-D images take --mode, --spacing, --lambda, --sigma and --iterations only") from None
    if Path(args.output).suffix.lower() not in (".tif", ".tiff"):
        raise CLIError(f"a 3-D result needs a TIFF: write {Path(args.output).with_suffix('.tif')} instead")
    if scribbles.ndim != 3:
        raise CLIError(f"--mode needs 3-D scribbles (a TIFF stack), got shape {scribbles.shape} from {args.scribbles}")
    t0 = time.perf_counter()
    session = VolumeSession()
    session.set_image(image, spacing=args.spacing)
    t1 = time.perf_counter()
    mask = session.segment(scribbles, mode=args.mode or "3d", lam=args.lam, sigma=args.sigma,
                           iterations=args.iterations)
    t2 = time.perf_counter()
    out = write_labels(args.output, mask)
    if not args.quiet:
        z, y, x = mask.shape
        print(f"{out}: {z}x{y}x{x} volume ({args.mode or '3d'}), object {int(mask.sum())} voxels, "
              f"palette {t1 - t0:.2f} s, cut {t2 - t1:.2f} s", file=sys.stderr)
    return 0


def point_method_params(args) -> dict:
    """Constructor parameters of the chosen point method, from the options the user gave."""
    if args.method == "pointclip":
        return {"checkpoint": args.checkpoint, "device": args.device}
    if args.checkpoint is not None:
        raise CLIError("--checkpoint is only used by --method pointclip")
    if args.method == "graphcut":
        return {"features": args.features, "lam": args.lam, **backbone_params(args)}
    params = {"features": args.features, "device": args.device}
    if args.weights is not None:
        params["weights"] = args.weights
    return params


def run_points(args) -> int:
    """Segment one image (each plane of a stack that has points) from a CSV of point prompts."""
    import numpy as np

    from ..core.prompts.base import get_click_method
    from ..core.io.files import LABEL_SUFFIXES, read_image, write_labels
    from ..core.prompts.files import clicks_by_plane, read_points_csv

    if Path(args.output).suffix.lower() not in LABEL_SUFFIXES:
        raise CLIError(f"cannot write labels to {args.output}: use a file name ending in {', '.join(LABEL_SUFFIXES)}")
    image = read_image(args.image)
    coords, positive = read_points_csv(args.points)
    ndim = coords.shape[1]
    colour = image.ndim == ndim + 1 and image.shape[-1] in (3, 4)
    spatial = image.shape[:-1] if colour else image.shape
    groups = clicks_by_plane(coords, positive, spatial)
    for plane, clicks in groups.items():
        if not any(c.positive for c in clicks):
            where = f" in plane {plane}" if plane else ""
            raise CLIError(f"no positive point{where}: add at least one point with positive=1 on the object")
    t0 = time.perf_counter()
    method = get_click_method(args.method, **point_method_params(args))
    mask = np.zeros(spatial, np.uint8)
    t_feat = t_pred = 0.0
    for plane, clicks in sorted(groups.items()):
        t1 = time.perf_counter()
        method.set_image(image[plane])
        t2 = time.perf_counter()
        mask[plane] = method.predict(clicks)
        t_feat, t_pred = t_feat + t2 - t1, t_pred + time.perf_counter() - t2
    out = write_labels(args.output, mask)
    if not args.quiet:
        print(f"{out}: {args.method}, {len(coords)} points in {len(groups)} plane(s), {int(mask.sum())} object "
              f"pixels, model {time.perf_counter() - t0 - t_feat - t_pred:.2f} s, "
              f"set_image {t_feat:.2f} s, predict {t_pred:.3f} s", file=sys.stderr)
    return 0


def run_box(args) -> int:
    """Segment one 2-D image from a box (``--box R0,C0,R1,C1``), optionally with points and scribbles."""
    import numpy as np

    from ..core.prompts.base import get_click_method
    from ..core.prompts.box import parse_box
    from ..core.io.files import LABEL_SUFFIXES, read_image, read_labels, write_labels
    from ..core.prompts.files import read_points_csv
    from ..core.prompts.base import clicks_from_arrays

    if args.method != "graphcut":
        raise CLIError(f"--box is answered by --method graphcut, not {args.method}")
    for opt in ("feature_cache", "channel_axis", "mode", "spacing"):
        if getattr(args, opt) is not None:
            raise CLIError(f"--{opt.replace('_', '-')} is not used with --box")
    if Path(args.output).suffix.lower() not in LABEL_SUFFIXES:
        raise CLIError(f"cannot write labels to {args.output}: use a file name ending in {', '.join(LABEL_SUFFIXES)}")
    box = parse_box(args.box)
    image = read_image(args.image)
    clicks = []
    if args.points is not None:
        coords, positive = read_points_csv(args.points)
        if coords.shape[1] != 2:
            raise CLIError(f"--box takes 2-D points (row,col,positive), got {coords.shape[1]} coordinates")
        clicks = clicks_from_arrays(coords, positive)
    strokes = None if args.scribbles is None else read_labels(args.scribbles)
    t0 = time.perf_counter()
    method = get_click_method("graphcut", **point_method_params(args))
    method.set_image(image)
    t1 = time.perf_counter()
    mask = np.asarray(method.predict_box(box, clicks, strokes=strokes), np.uint8)
    t2 = time.perf_counter()
    out = write_labels(args.output, mask)
    if not args.quiet:
        print(f"{out}: graphcut, box ({box.r0},{box.c0})-({box.r1},{box.c1}), {len(clicks)} points, "
              f"{int(mask.sum())} object pixels, set_image {t1 - t0:.2f} s, cut {t2 - t1:.3f} s", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``segment`` sub-command."""
    from ..core import PRESETS
    from ..core.cut.session import DEFAULT_ITERATIONS

    seg = sub.add_parser("segment", help="segment an image from a scribble image or point prompts")
    seg.add_argument("image", help="image file (PNG, JPEG, BMP, TIFF): grayscale, RGB or RGBA, 8/16-bit or float")
    seg.add_argument("--scribbles", help="label image: 0 none, 1 object, 2 background, k class k")
    seg.add_argument("--points", help="CSV of point prompts: row,col,positive (napari order; leading axes "
                     "first for stacks)")
    seg.add_argument("--box", metavar="R0,C0,R1,C1",
                     help="a box around the object: top-left and bottom-right corners (row,col; end exclusive); "
                          "combinable with --points and --scribbles")
    seg.add_argument("--method", default="graphcut", choices=POINT_METHODS,
                     help="--points: the graph cut with clicks as seeds (default), the point-prompt graph cut "
                          "or a trained pointclip checkpoint")
    seg.add_argument("--checkpoint", default=None, help="--method pointclip: checkpoint folder from 'train pointclip'")
    seg.add_argument("-o", "--output", required=True, help="output label image (.png or .tif)")
    add_backbone_options(seg)
    seg.add_argument("--channel-axis", type=int, default=None, metavar="K",
                     help="axis of the image's channels (e.g. -1 or 0 for an RGB + near-infrared TIFF): every "
                          "band is kept (a 4th is not alpha) and stretched on its own; deep backbones read "
                          "the three --rgb-channels")
    seg.add_argument("--feature-cache", default=None, metavar="FEATURES.zarr",
                     help="zarr feature cache (see 'precompute'): features are read from it if present, else "
                          "computed and added to it")
    seg.add_argument("--mode", default=None, choices=("3d", "planes"),
                     help="3-D images: one 3-D cut or every plane on its own (default: 3d with 3-D scribbles)")
    seg.add_argument("--spacing", type=float, nargs=3, default=None, metavar=("Z", "Y", "X"),
                     help="3-D images: voxel size along each axis (e.g. 2 1 1), for the 3-D edges")
    seg.add_argument("--preset", default="default", choices=PRESETS, help="energy preset")
    seg.add_argument("--lambda", dest="lam", type=float, default=None, help="smoothness weight (default: the preset's, 20 for default, 1 for seed)")
    seg.add_argument("--sigma", type=float, default=None, help="contrast scale (default: estimated from the image)")
    seg.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="appearance refits of the default preset")
    seg.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    seg.set_defaults(func=run)
