"""``napari-deepseg train MODEL DATASET -o DIR``: train a registered model on a dataset folder."""

from __future__ import annotations

import inspect
import sys
import time

from ._common import CLIError


def model_params(factory, args) -> dict:
    """The options the model's factory accepts, taken from the parsed arguments when given."""
    wanted = {"backbone": args.backbone, "image_size": args.image_size, "device": args.device}
    accepted = inspect.signature(factory).parameters
    return {k: v for k, v in wanted.items() if v is not None and k in accepted}


def run(args) -> int:
    """Train and report one line per epoch on stderr."""
    from ..core.training import (
        TrainOptions,
        find_samples,
        fit,
        get_trainable,
        trainable_factory,
    )

    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                           seed=args.seed)
    samples = find_samples(args.dataset)
    factory = trainable_factory(args.model)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    say(f"{args.model}: {len(samples)} annotated images in {args.dataset}; loading the model")
    t0 = time.perf_counter()
    trainable = get_trainable(args.model, **model_params(factory, args))
    result = fit(trainable, samples, args.output, options, resume=args.resume,
                 progress=lambda rep: say(rep.line()), log=say)
    if not result.best_epoch:
        raise CLIError("training produced no checkpoint")
    say(f"best {trainable.monitor} {result.best_score:.4f} at epoch {result.best_epoch}; checkpoint in "
        f"{result.folder} ({time.perf_counter() - t0:.0f} s)")
    return 0


def add_parser(sub) -> None:
    """Add the ``train`` sub-command."""
    from ..core.training import available_trainables

    tr = sub.add_parser("train", help="train a model (pointclip) on images/ + masks/ or the Oxford-IIIT Pet layout")
    tr.add_argument("model", choices=available_trainables(), help="model to train (from the training registry)")
    tr.add_argument("dataset", help="folder with images/ + masks/, or images/ + annotations/trimaps/ (Pet)")
    tr.add_argument("-o", "--output", required=True, help="checkpoint folder (model.safetensors + config.json)")
    tr.add_argument("--backbone", default=None, help="CLIP model id or local folder (default openai/clip-vit-base-patch32)")
    tr.add_argument("--image-size", type=int, default=None, help="square training/inference size (default 224)")
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--batch-size", type=int, default=8)
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    tr.add_argument("--patience", type=int, default=5, help="early stopping: epochs without a better validation IoU")
    tr.add_argument("--seed", type=int, default=0, help="seed of the split and the click sampling")
    tr.add_argument("--device", default=None, choices=("auto", "cpu", "cuda", "mps"))
    tr.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    tr.add_argument("--resume", action="store_true", help="continue the run recorded in the output folder")
    tr.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    tr.set_defaults(func=run)
