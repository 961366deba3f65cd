"""``napari-deepseg train MODEL DATASET -o DIR``: train a registered model on a dataset folder.

Runs unchanged under ``torchrun --nproc-per-node N`` (data-parallel, see
:mod:`napari_deepseg.core.models.training.distributed`); only rank 0 prints and writes.
"""

from __future__ import annotations

import inspect
import os
import sys
import time

from ._common import PROG, CLIError


def model_params(factory, args) -> dict:
    """The options the model's factory accepts, taken from the parsed arguments when given."""
    wanted = {"backbone": args.backbone, "image_size": args.image_size, "device": args.device,
              "classes": getattr(args, "classes", None), "width": getattr(args, "width", None),
              "extra_channels": getattr(args, "extra_channels", None),
              "encoder_weights": getattr(args, "encoder_weights", None),
              "pretrain_epochs": getattr(args, "pretrain_epochs", None)}
    if getattr(args, "no_augment", False):
        wanted["augment"] = False
    accepted = inspect.signature(factory).parameters
    unused = [k for k, v in wanted.items() if v is not None and k not in accepted and k != "device"]
    if unused:
        flag = "--" + unused[0].replace("_", "-")
        raise CLIError(f"{flag} is not an option of model '{args.model}'")
    return {k: v for k, v in wanted.items() if v is not None and k in accepted}


def run(args) -> int:
    """Train and report one line per epoch on stderr (with a progress bar over the epochs)."""
    from tqdm import tqdm

    from ..core.models.training import (
        TrainOptions,
        find_samples,
        fit,
        get_trainable,
        trainable_factory,
    )
    from ..core.models.training.advice import data_advice, score_advice
    from ..core.models.training.segmentation import WARNING

    factory = trainable_factory(args.model)
    schedule = args.schedule or getattr(factory, "default_schedule", "constant")
    options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                           seed=args.seed, schedule=schedule)
    samples = find_samples(args.dataset)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    params = model_params(factory, args)
    quiet = args.quiet or os.environ.get("RANK", "0") != "0"
    bar = tqdm(total=options.epochs, desc=args.model, unit="epoch", file=sys.stderr,
               disable=quiet or not sys.stderr.isatty(), leave=False)
    say = (lambda msg: None) if quiet else (lambda msg: bar.write(_prog_warning(msg), file=sys.stderr))
    t0 = time.perf_counter()
    if "log" in inspect.signature(factory).parameters:
        params["log"] = say

    def progress(rep):
        say(rep.line())
        bar.update(rep.epoch - bar.n)
        bar.set_postfix({k: f"{v:.3f}" for k, v in rep.val.items() if k in ("dice", "iou")})

    try:
        trainable = get_trainable(args.model, **params)
        say(f"{args.model}: {len(samples)} annotated images in {args.dataset}")
        pretrained = bool(getattr(trainable, "pretrained", True))
        advice = data_advice(args.model, len(samples), pretrained, options.val_fraction)
        if advice:
            say(WARNING + advice)
        result = fit(trainable, samples, args.output, options, resume=args.resume, progress=progress, log=say)
    finally:
        bar.close()
    if not result.best_epoch:
        raise CLIError("training produced no checkpoint")
    say(f"best {trainable.monitor} {result.best_score:.4f} at epoch {result.best_epoch}; checkpoint in "
        f"{result.folder} ({time.perf_counter() - t0:.0f} s)")
    advice = score_advice(args.model, result.best_score, len(samples), trainable.monitor, pretrained)
    if advice:
        say(WARNING + advice)
    return 0


def _prog_warning(msg: str) -> str:
    """``warning: ...`` lines of the trainer and the advice as ``napari-deepseg: warning: ...``."""
    from ..core.models.training.segmentation import WARNING

    return f"{PROG}: {msg}" if msg.startswith(WARNING) else msg


def add_parser(sub) -> None:
    """Add the ``train`` sub-command."""
    from ..core.models.training import available_trainables

    tr = sub.add_parser("train", help="train a model (unet, resnet34-unet, clip-seg, autoencoder, pointclip) "
                                      "on images/ + masks/ or the Oxford-IIIT Pet layout",
                        description="Train a registered model. Segmentation models: unet, resnet34-unet, clip-seg, "
                                    "autoencoder (Dice + BCE or CE + Dice, augmentation, cosine LR schedule, early "
                                    "stopping on validation Dice). Also runs under torchrun (DistributedDataParallel).")
    tr.add_argument("model", choices=available_trainables(), help="model to train (from the training registry)")
    tr.add_argument("dataset", help="folder with images/ + masks/, or images/ + annotations/trimaps/ (Pet)")
    tr.add_argument("-o", "--output", required=True, help="checkpoint folder (model.safetensors + config.json)")
    tr.add_argument("--backbone", default=None, help="clip-seg, pointclip: CLIP model id or local folder "
                                                     "(default openai/clip-vit-base-patch32)")
    tr.add_argument("--image-size", type=int, default=None,
                    help="square training/inference size (default 256; 224 for clip-seg and pointclip)")
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--batch-size", type=int, default=8, help="images per batch (per process under torchrun)")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    tr.add_argument("--schedule", default=None, choices=("constant", "cosine"),
                    help="learning-rate schedule (default: cosine for segmentation models, constant for pointclip)")
    tr.add_argument("--patience", type=int, default=5,
                    help="early stopping: epochs without a better validation score (Dice; pointclip: IoU)")
    tr.add_argument("--seed", type=int, default=0, help="seed of the split, the augmentation and the click sampling")
    tr.add_argument("--classes", type=int, default=None,
                    help="segmentation: 2 = binary (default; mask non-zero = object), more = multi-class "
                         "(mask value k = class k)")
    tr.add_argument("--width", type=int, default=None, help="segmentation: channels of the first level")
    tr.add_argument("--extra-channels", default=None,
                    help="segmentation: extra input channels computed from the image, e.g. sobel or saliency")
    tr.add_argument("--encoder-weights", default=None,
                    help="resnet34-unet: auto (ImageNet when available, default), imagenet, none, or a file")
    tr.add_argument("--pretrain-epochs", type=int, default=None,
                    help="autoencoder: reconstruction epochs before the encoder is frozen (default 10)")
    tr.add_argument("--no-augment", action="store_true", help="segmentation: no augmentation")
    tr.add_argument("--device", default=None, choices=("auto", "cpu", "cuda", "mps"))
    tr.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    tr.add_argument("--resume", action="store_true", help="continue the run recorded in the output folder")
    tr.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    tr.set_defaults(func=run)
