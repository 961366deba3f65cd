"""The epoch loop every trainable model shares: Adam, validation, early stopping, resume.

A model plugs in by implementing :class:`Trainable` (what a batch's loss is,
how validation is scored); :func:`fit` does the rest:

* a fixed 90/10 train/validation split (:func:`~.data.split_samples`);
* Adam, at a constant learning rate or on a cosine schedule (``schedule``),
  mini-batches in a per-epoch seeded order;
* models with a :meth:`Trainable.pretrain` step (the autoencoder) run it first;
* after every epoch: validation, ``progress`` called with an :class:`EpochReport`,
  the best model saved as ``model.safetensors`` + ``config.json`` and the run's
  state (``last.safetensors``, ``optimizer.safetensors``, ``state.json``) so
  that ``resume=True`` continues after the last finished epoch;
* early stopping after ``patience`` epochs without a better validation score;
* a :class:`~napari_deepseg.core.utils.progress.CancelToken` checked between batches;
* under ``torchrun`` the same call trains data-parallel (:mod:`.distributed`):
  DistributedDataParallel, each process a share of every epoch, rank 0 writes.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...utils.progress import CancelToken, check
from . import checkpoint as ckpt
from . import distributed
from .data import split_samples

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainOptions:
    """Hyper-parameters of the loop (the model's own live in its config)."""

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    patience: int = 5
    val_fraction: float = 0.1
    seed: int = 0
    schedule: str = "constant"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0 < float(self.lr) <= 1):
            raise ValueError(f"lr must be in (0, 1], got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")


def scheduled_lr(options: TrainOptions, epoch: int) -> float:
    """Learning rate of epoch ``epoch`` (0-based): constant, or cosine from ``lr`` down to ``lr / 100``.

    Examples
    --------
    >>> o = TrainOptions(epochs=3, lr=1.0, schedule="cosine")
    >>> [round(scheduled_lr(o, e), 3) for e in range(3)]
    [1.0, 0.505, 0.01]
    """
    if options.schedule == "constant" or options.epochs == 1:
        return float(options.lr)
    t = epoch / (options.epochs - 1)
    low = options.lr / 100
    return float(low + (options.lr - low) * 0.5 * (1 + np.cos(np.pi * t)))


@dataclass
class EpochReport:
    """What one finished epoch measured."""

    epoch: int
    epochs: int
    train_loss: float
    val: dict
    seconds: float
    best: bool
    stopped: bool = False

    def line(self) -> str:
        """One human-readable line, e.g. for the command line."""
        val = ", ".join(f"val {k} {v:.4f}" for k, v in self.val.items())
        tail = " (best)" if self.best else ""
        tail += " - early stop" if self.stopped else ""
        return f"epoch {self.epoch}/{self.epochs}: train loss {self.train_loss:.4f}, {val}, {self.seconds:.1f} s{tail}"


@dataclass
class TrainResult:
    """Outcome of :func:`fit`."""

    folder: Path
    best_epoch: int
    best_score: float
    history: list = field(default_factory=list)


class Trainable(abc.ABC):
    """A model the loop can train.

    Attributes
    ----------
    name : str
        The registry name (``napari-deepseg train NAME``).
    monitor : str
        Key of :meth:`evaluate`'s result that early stopping watches (higher is better).
    """

    name: str = ""
    monitor: str = "iou"
    #: learning-rate schedule the command line uses unless told otherwise
    default_schedule: str = "constant"
    #: whether :meth:`distribute` routes the training forward passes through DDP
    supports_ddp: bool = False

    @abc.abstractmethod
    def config(self) -> dict:
        """JSON configuration saved with the weights (must include ``"model": name``)."""

    @abc.abstractmethod
    def module(self):
        """The ``torch.nn.Module`` whose parameters are trained and saved."""

    @abc.abstractmethod
    def prepare(self, samples: list, progress=None, cancel=None):
        """Load (and cache) the samples; returns whatever :meth:`loss` and :meth:`evaluate` take."""

    @abc.abstractmethod
    def loss(self, data, indices: np.ndarray, rng: np.random.Generator):
        """Scalar loss tensor of the mini-batch ``indices`` of ``data`` (module in train mode)."""

    @abc.abstractmethod
    def evaluate(self, data) -> dict:
        """Validation scores (module in eval mode), at least :attr:`monitor`."""

    def size(self, data) -> int:
        """Number of samples in prepared ``data``."""
        return len(data)

    def pretrain(self, data, options: TrainOptions, cancel=None, log=None) -> None:
        """Work before the first epoch of a new run (the autoencoder's reconstruction training)."""

    def distribute(self, wrapped) -> None:
        """Use ``wrapped`` (``DistributedDataParallel`` of :meth:`module`) for training forward passes."""


def _state(epoch, best_score, best_epoch, stale, history, options, config, opt_json) -> dict:
    return {"epoch": epoch, "best_score": best_score, "best_epoch": best_epoch, "stale": stale,
            "history": history, "options": asdict(options), "config": config, "optimizer": opt_json}


def fit(trainable: Trainable, samples: list, folder, options: TrainOptions = TrainOptions(), resume: bool = False,
        progress: Callable[[EpochReport], None] | None = None, cancel: CancelToken | None = None,
        log: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``trainable`` on ``samples``, writing checkpoints into ``folder``.

    Parameters
    ----------
    trainable : Trainable
    samples : list
        Dataset samples (see :func:`~.data.find_samples`), split 90/10 with ``options.seed``.
    folder : path-like
        Checkpoint folder. Must not hold a checkpoint unless ``resume``.
    options : TrainOptions
    resume : bool
        Continue the run recorded in ``folder`` after its last finished epoch.
    progress : callable, optional
        Called with an :class:`EpochReport` after every epoch.
    cancel : CancelToken, optional
    log : callable, optional
        Called with status lines (loading, resuming).

    Raises
    ------
    ValueError
        For a folder that holds another run (without ``resume``), a resume whose
        model or configuration differs, or an unreadable state.
    """
    ctx = distributed.setup(str(getattr(trainable, "device", "cpu")))
    ok = False
    try:
        result = _fit(trainable, samples, Path(folder).expanduser(), options, resume, progress, cancel, log, ctx)
        ok = True
        return result
    finally:
        distributed.teardown(ctx, ok)


def _fit(trainable, samples, folder, options, resume, progress, cancel, log, ctx) -> TrainResult:
    import torch

    config = trainable.config()
    say = (log or (lambda _msg: None)) if ctx.main else (lambda _msg: None)
    if resume:
        state = ckpt.read_json(folder / ckpt.STATE_FILE)
        if state.get("config") != config:
            raise ValueError(f"cannot resume in {folder}: it holds a run of another model or configuration "
                             f"({state.get('config', {}).get('model')!r})")
    elif folder.exists() and ckpt.has_checkpoint(folder):
        raise ValueError(f"{folder} already holds a checkpoint: pass --resume to continue it or choose another folder")
    if ctx.main:
        folder.mkdir(parents=True, exist_ok=True)
    train_s, val_s = split_samples(samples, options.val_fraction, options.seed)
    say(f"{len(train_s)} training and {len(val_s)} validation images"
        + (f", {ctx.world} processes" if ctx.active else ""))
    train_data = trainable.prepare(train_s, cancel=cancel)
    val_data = trainable.prepare(val_s, cancel=cancel)
    module = trainable.module()
    if not resume:
        trainable.pretrain(train_data, options, cancel=cancel, log=say)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=options.lr)
    start, best_score, best_epoch, stale, history = 0, -np.inf, 0, 0, []
    if resume:
        ckpt.load_into(module, ckpt.load_tensors(folder / ckpt.LAST_FILE), f"{folder / ckpt.LAST_FILE}")
        ckpt.restore_optimizer(optimizer, ckpt.load_tensors(folder / ckpt.OPTIMIZER_FILE), state["optimizer"])
        start, best_score, best_epoch = int(state["epoch"]), float(state["best_score"]), int(state["best_epoch"])
        stale, history = int(state["stale"]), list(state["history"])
        say(f"resuming after epoch {start} (best {trainable.monitor} {best_score:.4f} at epoch {best_epoch})")
        if stale >= options.patience or start >= options.epochs:
            say("nothing left to do: the run had finished")
            return TrainResult(folder, best_epoch, best_score, history)
    ddp = ctx.active and trainable.supports_ddp
    if ddp:
        trainable.distribute(distributed.wrap(module, str(getattr(trainable, "device", "cpu"))))
    n = trainable.size(train_data)
    for epoch in range(start, options.epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng([options.seed, epoch])
        torch.manual_seed(options.seed * 100_003 + epoch)
        order = distributed.shard(rng.permutation(n), ctx)
        if ctx.active:  # the same order everywhere, each rank its own augmentation
            rng = np.random.default_rng([options.seed, epoch, ctx.rank])
        for group in optimizer.param_groups:
            group["lr"] = scheduled_lr(options, epoch)
        module.train()
        losses = []
        for b in range(0, len(order), options.batch_size):
            check(cancel)
            optimizer.zero_grad()
            loss = trainable.loss(train_data, order[b : b + options.batch_size], rng)
            loss.backward()
            if ctx.active and not ddp:
                distributed.average_gradients(params, ctx)
            optimizer.step()
            losses.append(float(loss.detach()))
        module.eval()
        with torch.no_grad():
            scores = {k: float(v) for k, v in trainable.evaluate(val_data).items()}
        scores = distributed.broadcast(scores, ctx)
        score = scores[trainable.monitor]
        improved = score > best_score
        if improved:
            best_score, best_epoch, stale = score, epoch + 1, 0
            if ctx.main:
                ckpt.save_checkpoint(folder, module.state_dict(), {**config, "epoch": epoch + 1, "val": scores})
        else:
            stale += 1
        report = EpochReport(epoch + 1, options.epochs, float(np.mean(losses)) if losses else float("nan"),
                             scores, time.perf_counter() - t0, improved, stale >= options.patience)
        history.append({"epoch": epoch + 1, "train_loss": report.train_loss, **scores})
        if ctx.main:
            tensors, opt_json = ckpt.optimizer_tensors(optimizer)
            ckpt.save_tensors(folder / ckpt.LAST_FILE, module.state_dict())
            ckpt.save_tensors(folder / ckpt.OPTIMIZER_FILE, tensors)
            ckpt._atomic_json(folder / ckpt.STATE_FILE,
                              _state(epoch + 1, best_score, best_epoch, stale, history, options, config, opt_json))
            if progress is not None:
                progress(report)
        if report.stopped:
            break
    if ctx.active:
        checksum = distributed.check_agreement(module, ctx)
        say(f"the {ctx.world} processes hold the same weights (checksum {checksum:.6f})")
    return TrainResult(folder, best_epoch, best_score, history)
