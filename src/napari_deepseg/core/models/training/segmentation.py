"""Training of segmentation models (``napari-deepseg train unet|resnet34-unet|clip-seg|autoencoder``).

One :class:`SegmentationTrainer` per architecture of :mod:`.networks`, all
plugged into the shared loop (:func:`~.loop.fit`):

* images and targets loaded once at ``image_size x image_size`` (plus the
  extra input channels of :mod:`.channels`);
* every batch augmented (:mod:`.augment`);
* loss: soft Dice + binary cross-entropy for two classes, cross-entropy + soft
  Dice over the classes otherwise, unknown pixels (:data:`~.data.IGNORE`) left out;
* validation: mean Dice and IoU per image (:mod:`napari_deepseg.core.evaluation.metrics`),
  early stopping on Dice;
* ``autoencoder`` first trains its encoder to reconstruct the training images
  (a denoising autoencoder), then freezes it under the segmentation head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...features.resnet import resolve_device
from ...evaluation.metrics import binary_scores, multiclass_scores
from ...utils.progress import check
from . import register_trainable
from .augment import Augmentation, augment_batch
from .channels import check_channels, compute_channels
from .data import IGNORE, load_sample
from .distributed import local_device
from .loop import Trainable
from .networks import (
    DEFAULT_WIDTHS,
    IMAGENET_NORM,
    STRIDE,
    build_network,
    load_encoder_weights,
)

TASK = "segmentation"
#: batch size of validation and prediction passes
EVAL_BATCH = 8


@dataclass
class SegmentationData:
    """Training images at the model's size, their extra channels and targets."""

    images: np.ndarray  # uint8 (n, s, s, 3)
    extras: np.ndarray  # float16 (n, e, s, s)
    targets: np.ndarray  # uint8 (n, s, s)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def dice_bce_loss(logits, target):
    """Binary cross-entropy + (1 - soft Dice) of ``(n, 1, h, w)`` logits; :data:`IGNORE` pixels left out.

    Examples
    --------
    >>> import torch
    >>> t = torch.tensor([[[0, 1], [1, IGNORE]]])
    >>> good = dice_bce_loss(torch.tensor([[[[-9.0, 9.0], [9.0, 0.0]]]]), t)
    >>> bad = dice_bce_loss(torch.tensor([[[[9.0, -9.0], [-9.0, 0.0]]]]), t)
    >>> float(good) < 0.01 < 1.5 < float(bad)
    True
    """
    import torch
    import torch.nn.functional as F

    valid = (target != IGNORE).float()
    obj = (target == 1).float()
    z = logits[:, 0]
    bce = (F.binary_cross_entropy_with_logits(z, obj, reduction="none") * valid).sum() / valid.sum().clamp(min=1)
    p = torch.sigmoid(z) * valid
    inter = (p * obj).sum(dim=(1, 2))
    dice = (2 * inter + 1) / (p.sum(dim=(1, 2)) + (obj * valid).sum(dim=(1, 2)) + 1)
    return bce + (1 - dice).mean()


def ce_dice_loss(logits, target):
    """Cross-entropy + (1 - mean soft Dice over classes) of ``(n, k, h, w)`` logits; :data:`IGNORE` left out."""
    import torch.nn.functional as F

    k = logits.shape[1]
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    valid = (target != IGNORE).float()[:, None]
    prob = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=k - 1), k).permute(0, 3, 1, 2).float() * valid
    inter = (prob * onehot).sum(dim=(0, 2, 3))
    dice = (2 * inter + 1) / (prob.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3)) + 1)
    return ce + (1 - dice).mean()


def segmentation_loss(logits, target):
    """:func:`dice_bce_loss` for one logit channel, :func:`ce_dice_loss` for several."""
    return dice_bce_loss(logits, target) if logits.shape[1] == 1 else ce_dice_loss(logits, target)


def labels_from_logits(logits):
    """Labels ``(n, h, w)``: sigmoid > 0.5 for one channel, argmax otherwise."""
    return (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)


def score_batch(pred: np.ndarray, target: np.ndarray, classes: int) -> list:
    """``(dice, iou)`` per image of label batches; multi-class: the mean over the object classes 1..k-1."""
    out = []
    for p, t in zip(pred, target):
        if classes == 2:
            s = binary_scores(p, t, ignore=IGNORE)
        else:
            s = multiclass_scores(p, t, classes=range(1, classes), ignore=IGNORE)["mean"]
        out.append((s["dice"], s["iou"]))
    return out


def segmentation_config(arch: str, image_size: int, classes: int, width: int | None, extra_channels,
                        **more) -> dict:
    """The JSON configuration of a segmentation checkpoint (what :func:`.networks.build_network` reads).

    Raises
    ------
    ValueError
        For an image size that is not a positive multiple of 32, fewer than 2 classes or a bad width.

    Examples
    --------
    >>> c = segmentation_config("unet", 64, 2, None, ())
    >>> c["model"], c["in_channels"], c["width"]
    ('unet', 3, 32)
    """
    image_size, classes = int(image_size), int(classes)
    if image_size < STRIDE or image_size % STRIDE:
        raise ValueError(f"image_size must be a positive multiple of {STRIDE}, got {image_size}")
    if not 2 <= classes <= 255:
        raise ValueError(f"classes must be between 2 (binary) and 255, got {classes}")
    width = DEFAULT_WIDTHS[arch] if width is None else int(width)
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    extras = list(check_channels(extra_channels))
    return {"model": arch, "task": TASK, "classes": classes, "image_size": image_size, "width": width,
            "extra_channels": extras, "in_channels": 3 + len(extras), "normalisation": dict(IMAGENET_NORM), **more}


class SegmentationTrainer(Trainable):
    """A segmentation network trained by the shared loop.

    Parameters
    ----------
    image_size : int
        Square training size (a multiple of 32); prediction resizes to it too.
    classes : int
        2 for binary (object vs background), more for multi-class (mask value = class).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps`` (under ``torchrun``: the process's own GPU).
    width : int, optional
        Channels of the first level (default per architecture).
    extra_channels : sequence of str or str
        Names from :data:`.channels.CHANNELS` appended to the RGB input.
    augment : bool
        Augment every training batch.
    seed : int
        Seed of the initial weights.
    log : callable, optional
        Receives status lines (weights found or not, pretraining epochs); lines
        the user must see start with :data:`WARNING` (see :meth:`warn`).

    Attributes
    ----------
    warnings : list of str
        What the user should know about this run (an encoder that starts from
        random weights), also sent to ``log``.
    """

    monitor = "dice"
    default_schedule = "cosine"
    supports_ddp = True
    arch = ""
    #: stride of the network's deepest BatchNorm layer (see :meth:`lone_image_repeated`)
    deepest_norm_stride = 16

    def __init__(self, image_size: int = 256, classes: int = 2, device: str = "auto", width: int | None = None,
                 extra_channels=(), augment: bool = True, seed: int = 0, log=None, **more):
        import torch

        self.device = local_device(resolve_device(device))
        self._config = segmentation_config(self.arch, image_size, classes, width, extra_channels, **more)
        self.augmentation = Augmentation() if augment else None
        self.log = log or (lambda _msg: None)
        self.warnings: list = []
        torch.manual_seed(int(seed))
        self.net = self.build()
        self.forward = self.net

    def warn(self, message: str) -> None:
        """Record ``message`` in :attr:`warnings` and send it to the log as ``"warning: ..."``."""
        self.warnings.append(message)
        self.log(WARNING + message)

    # -- what a subclass changes -----------------------------------------------------------------
    def build(self):
        """The randomly initialised network (subclasses load pretrained parts)."""
        return build_network(self._config, self.device)

    # -- Trainable ---------------------------------------------------------------------------
    def config(self) -> dict:
        return dict(self._config)

    def module(self):
        return self.net

    def distribute(self, wrapped) -> None:
        """Run training forward passes through ``wrapped`` (DistributedDataParallel of :meth:`module`)."""
        self.forward = wrapped

    def prepare(self, samples: list, progress=None, cancel=None) -> SegmentationData:
        s, classes = int(self._config["image_size"]), int(self._config["classes"])
        names = self._config["extra_channels"]
        n = len(samples)
        images = np.empty((n, s, s, 3), np.uint8)
        targets = np.empty((n, s, s), np.uint8)
        extras = np.empty((n, len(names), s, s), np.float16)
        for i, sample in enumerate(samples):
            check(cancel)
            images[i], targets[i] = load_sample(sample, s, classes)
            extras[i] = compute_channels(images[i], names, device=self.device)
        return SegmentationData(images, extras, targets)

    def batch(self, data: SegmentationData, idx):
        """``(x, y)`` tensors of samples ``idx`` on the device: x ``(n, 3 + e, s, s)`` in [0, 1], y long."""
        import torch

        x = torch.from_numpy(data.images[idx]).permute(0, 3, 1, 2).float() / 255.0
        if data.extras.shape[1]:
            x = torch.cat([x, torch.from_numpy(data.extras[idx].astype(np.float32))], 1)
        y = torch.from_numpy(data.targets[idx].astype(np.int64))
        return x.to(self.device), y.to(self.device)

    def lone_image_repeated(self) -> bool:
        """Whether a training batch of one image is trained as two augmented copies of it.

        BatchNorm in train mode needs more than one value per channel; a batch of one
        image has a single value per channel where the network's deepest feature map
        is 1x1 (``resnet34-unet``, stride 32, at ``image_size`` 32). Such a batch (the
        last one of an epoch, every batch of ``batch_size`` 1, or a one-image training
        set) is trained on the image twice, each copy augmented on its own; every
        other batch is trained as it is.

        Examples
        --------
        >>> small = ResNet34UNetTrainer(image_size=32, device="cpu", width=4, encoder_weights="none")
        >>> big = ResNet34UNetTrainer(image_size=64, device="cpu", width=4, encoder_weights="none")
        >>> small.lone_image_repeated(), big.lone_image_repeated()
        (True, False)
        """
        return int(self._config["image_size"]) // self.deepest_norm_stride < 2

    def loss(self, data: SegmentationData, indices, rng):
        """Loss of the batch ``indices`` (a lone image repeated where :meth:`lone_image_repeated`)."""
        indices = np.asarray(indices)
        if indices.size == 1 and self.lone_image_repeated():
            indices = np.repeat(indices, 2)
        x, y = self.batch(data, indices)
        if self.augmentation is not None:
            x, y = augment_batch(x, y, rng, self.augmentation)
        return segmentation_loss(self.forward(x), y)

    def evaluate(self, data: SegmentationData) -> dict:
        classes = int(self._config["classes"])
        scores, losses = [], []
        for b in range(0, len(data), EVAL_BATCH):
            idx = np.arange(b, min(len(data), b + EVAL_BATCH))
            x, y = self.batch(data, idx)
            logits = self.net(x)
            losses.append(float(segmentation_loss(logits, y)) * len(idx))
            pred = labels_from_logits(logits).cpu().numpy()
            scores.extend(score_batch(pred, data.targets[idx], classes))
        dice, iou = np.mean(scores, axis=0)
        return {"dice": float(dice), "iou": float(iou), "loss": float(np.sum(losses) / len(data))}


@register_trainable("unet")
class UNetTrainer(SegmentationTrainer):
    """UNet (random initialisation)."""

    arch = "unet"


#: the start of a log line the user must see (the Train widget shows it as a notification)
WARNING = "warning: "


def random_encoder_note(exc) -> str:
    """What a resnet34-unet run without ImageNet weights tells the user (from the error's facts).

    Examples
    --------
    >>> from napari_deepseg.core.io.weights import WeightsUnavailableError
    >>> random_encoder_note(WeightsUnavailableError(file="r.pth", searched=["/c"], cause="no internet connection"))
    'no ImageNet weights for the resnet34-unet encoder (no internet connection): it starts from random weights, which needs more labelled images and epochs; for ImageNet weights put r.pth in /c or the folder named by NAPARI_DEEPSEG_WEIGHTS_DIR'
    """
    why = getattr(exc, "cause", None) or " ".join(str(exc).split())[:120]
    note = (f"no ImageNet weights for the resnet34-unet encoder ({why}): it starts from random weights, "
            "which needs more labelled images and epochs")
    if getattr(exc, "file", None) and getattr(exc, "searched", None):
        where = exc.searched[-1] + (f" or the folder named by {exc.override_env}" if exc.override_env else "")
        note += f"; for ImageNet weights put {exc.file} in {where}"
    return note


@register_trainable("resnet34-unet")
class ResNet34UNetTrainer(SegmentationTrainer):
    """UNet decoder on a torchvision ResNet-34 encoder.

    Parameters
    ----------
    encoder_weights : str
        ``auto`` (ImageNet weights when a copy is on disk or downloadable, random
        initialisation otherwise, said in the log), ``imagenet`` (required),
        ``none`` (random), or the path of a ResNet-34 ``.pth``/``.safetensors`` file.
    """

    arch = "resnet34-unet"
    deepest_norm_stride = 32  # the encoder's layer4
    #: whether the encoder starts from ImageNet weights (``False`` after the random fallback)
    pretrained = True

    def __init__(self, image_size: int = 256, classes: int = 2, device: str = "auto", width: int | None = None,
                 extra_channels=(), augment: bool = True, seed: int = 0, log=None, encoder_weights: str = "auto"):
        self.encoder_weights = str(encoder_weights or "auto")
        super().__init__(image_size, classes, device, width, extra_channels, augment, seed, log,
                         encoder_weights=self.encoder_weights)

    def build(self):
        from ...io.weights import WeightsUnavailableError, resolve_torchvision_weights

        net = super().build()
        choice = self.encoder_weights
        if choice == "none":
            self.pretrained = False
            return net
        import torchvision

        url = torchvision.models.ResNet34_Weights.IMAGENET1K_V1.url
        path = None if choice in ("auto", "imagenet") else choice
        try:
            state = resolve_torchvision_weights(url, weights_path=path)
        except WeightsUnavailableError as exc:
            exc.option = "--encoder-weights"
            if choice != "auto":
                raise exc from None
            self.pretrained = False
            self.warn(random_encoder_note(exc))
            return net
        load_encoder_weights(net, state, path or url.rsplit("/", 1)[-1])
        self.log("encoder initialised with ImageNet ResNet-34 weights")
        return net


@register_trainable("clip-seg")
class CLIPSegTrainer(SegmentationTrainer):
    """CLIP vision patch tokens (frozen) under a UNet-style decoder.

    Parameters
    ----------
    backbone : str
        CLIP checkpoint id or local folder (see :func:`~napari_deepseg.core.features.clip.load_clip_vision`).
    """

    arch = "clip-seg"

    def __init__(self, image_size: int = 224, classes: int = 2, device: str = "auto", width: int | None = None,
                 extra_channels=(), augment: bool = True, seed: int = 0, log=None, backbone: str | None = None):
        from ...features.clip import DEFAULT_CLIP

        self.backbone = str(backbone or DEFAULT_CLIP)
        super().__init__(image_size, classes, device, width, extra_channels, augment, seed, log,
                         backbone=self.backbone, token_width=96)

    def build(self):
        from ...features.clip import load_clip_vision
        from ...io.weights import WeightsUnavailableError

        try:
            clip = load_clip_vision(self.backbone, self.device)
        except WeightsUnavailableError as exc:
            exc.option = "--backbone"  # train's option for a local CLIP folder
            raise
        self._config["hidden_size"] = int(clip.config.hidden_size)
        self._config["patch_size"] = int(clip.config.patch_size)
        return build_network(self._config, self.device, clip=clip)


@register_trainable("autoencoder")
class AutoencoderTrainer(SegmentationTrainer):
    """A convolutional encoder pretrained as a denoising autoencoder, then frozen under a segmentation head.

    Parameters
    ----------
    pretrain_epochs : int
        Epochs of reconstruction training before the segmentation training.
    """

    arch = "autoencoder"

    def __init__(self, image_size: int = 256, classes: int = 2, device: str = "auto", width: int | None = None,
                 extra_channels=(), augment: bool = True, seed: int = 0, log=None, pretrain_epochs: int = 10):
        if int(pretrain_epochs) < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {pretrain_epochs}")
        self.pretrain_epochs = int(pretrain_epochs)
        super().__init__(image_size, classes, device, width, extra_channels, augment, seed, log,
                         pretrain_epochs=self.pretrain_epochs)

    def pretrain(self, data: SegmentationData, options, cancel=None, log=None) -> None:
        """Train encoder + reconstruction decoder to restore noisy training images; then freeze the encoder."""
        import torch

        from .networks import network_class

        say = log or self.log
        net = self.net
        decoder = network_class("reconstruction")(net.encoder.widths, 3).to(self.device)
        net.freeze_encoder(False)
        params = list(net.encoder.parameters()) + list(decoder.parameters())
        opt = torch.optim.Adam(params, lr=options.lr)
        n = len(data)
        for epoch in range(self.pretrain_epochs):
            rng = np.random.default_rng([options.seed, 7919, epoch])
            net.encoder.train()
            decoder.train()
            losses = []
            order = rng.permutation(n)
            for b in range(0, n, options.batch_size):
                check(cancel)
                x, y = self.batch(data, order[b : b + options.batch_size])
                if self.augmentation is not None:
                    x, _ = augment_batch(x, y, rng, self.augmentation)
                noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
                loss = torch.nn.functional.mse_loss(decoder(net.encoder(noisy)[-1]), x[:, :3])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            say(f"autoencoder pretraining epoch {epoch + 1}/{self.pretrain_epochs}: reconstruction MSE "
                f"{np.mean(losses):.4f}")
        net.freeze_encoder(True)
