"""``napari-deepseg propose``: a DeepLabV3 proposal (multi-class or chosen classes) for one image."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import CLIError


def run(args) -> int:
    """Propose a mask, optionally refine it with the graph cut, write it."""
    from ..core.io.files import LABEL_SUFFIXES, read_image, write_labels
    from ..core.models.proposals import DeepLabProposer, parse_classes, refine_proposal

    for path in (args.output, args.scribbles_out):
        if path is not None and Path(path).suffix.lower() not in LABEL_SUFFIXES:
            raise CLIError(f"cannot write labels to {path}: use a file name ending in {', '.join(LABEL_SUFFIXES)}")
    classes = parse_classes(args.classes)
    if (args.refine or args.scribbles_out) and not classes:
        raise CLIError("--refine and --scribbles-out need --classes (the object to refine), e.g. --classes pet")
    proposer = DeepLabProposer(args.model, weights=args.weights, device=args.device, precision=args.precision,
                               input_size=args.input_size or None)
    image = read_image(args.image)
    t0 = time.perf_counter()
    proposal = proposer.propose(image, classes=classes)
    t1 = time.perf_counter()
    mask = proposal.labels
    note = ""
    if args.refine or args.scribbles_out:
        from ..core.models.proposals import proposal_scribbles

        if args.refine:
            mask, seeds = refine_proposal(image, proposal, backbone=args.features)
            note = f", refined by the graph cut in {time.perf_counter() - t1:.2f} s"
        else:
            seeds = proposal_scribbles(proposal.object_probability)
        if args.scribbles_out:
            write_labels(args.scribbles_out, seeds)
    out = write_labels(args.output, mask)
    if not args.quiet:
        present = sorted(set(mask.ravel().tolist()))
        names = ", ".join(f"{v} {proposal.class_names[v]}" for v in present if v < len(proposal.class_names))
        print(f"{out}: {mask.shape[1]}x{mask.shape[0]} labels [{names}], {proposal.model} {t1 - t0:.2f} s{note}",
              file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``propose`` sub-command."""
    from ..core.models.proposals import (
        CLASS_GROUPS,
        DEFAULT_MODEL,
        INPUT_SIZE,
        MODEL_ALIASES,
        MODELS,
        PRECISIONS,
    )

    pr = sub.add_parser("propose", help="propose a mask with DeepLabV3 (COCO, VOC classes)",
                        description="Multi-class labels (VOC indices: 0 background, 8 cat, 12 dog, ...) or, with "
                                    "--classes, a binary mask (1 = the chosen classes).")
    pr.add_argument("image", help="image file (PNG, JPEG, BMP, TIFF)")
    pr.add_argument("-o", "--output", required=True, help="output label image (.png or .tif)")
    pr.add_argument("--model", default=DEFAULT_MODEL, choices=list(MODELS) + list(MODEL_ALIASES),
                    help=f"DeepLabV3 variant (default {DEFAULT_MODEL})")
    pr.add_argument("--classes", default=None,
                    help=f"object classes for a binary mask: VOC names or numbers, or {', '.join(CLASS_GROUPS)}")
    pr.add_argument("--weights", default=None, help="local checkpoint file (.pth/.pt/.safetensors)")
    pr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    pr.add_argument("--precision", default="float32", choices=PRECISIONS,
                    help="bfloat16: faster on CPUs with bf16 instructions")
    pr.add_argument("--input-size", type=int, default=INPUT_SIZE,
                    help=f"shorter side of the model's input in pixels (default {INPUT_SIZE}; 0 = the image's own)")
    pr.add_argument("--refine", action="store_true",
                    help="seed the graph cut with the confident object and background and write its result")
    pr.add_argument("--features", default="classic", help="backbone of the refining cut (default classic)")
    pr.add_argument("--scribbles-out", default=None, help="also write the seeds taken from the proposal")
    pr.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    pr.set_defaults(func=run)
