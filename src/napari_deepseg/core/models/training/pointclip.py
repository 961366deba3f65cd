"""Training of PointCLIP (``napari-deepseg train pointclip``): click sampling, loss, validation.

Clicks per training image, as the original work sampled them: one positive
click inside the object (drawn with weight growing with the distance to the
boundary) and, most of the time, one negative click in the background. Half
of the batches then add one or two clicks where the current model errs
(the benchmark's next-click rule), so the decoder learns to correct. The loss
is the pixel-wise cross-entropy, unknown pixels left out. Validation scores
the IoU from the single first click of the published protocol.

CLIP is frozen: its tokens of every training image are computed once in
:meth:`PointCLIPTrainer.prepare` (float16) and only the decoder is trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...evaluation.benchmark import next_click
from ...prompts.base import Click
from ...features.clip import DEFAULT_CLIP, normalize_clip
from ...features.resnet import resolve_device
from ...evaluation.metrics import iou
from ...prompts.pointclip import PointCLIPModel, click_heatmaps, default_config
from ...utils.progress import check, report
from . import register_trainable
from .data import IGNORE, load_sample
from .loop import Trainable

#: probability that a training image also gets a negative first click
NEGATIVE_PROB = 0.7
#: probability that a batch adds clicks on the current model's errors
CORRECTION_PROB = 0.5


@dataclass
class PreparedData:
    """Training images at the model's size, their targets and their CLIP tokens."""

    images: np.ndarray  # uint8 (n, s, s, 3)
    targets: np.ndarray  # uint8 (n, s, s): 0, 1, IGNORE
    tokens: object  # torch float16 (n, hidden, g, g)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def first_clicks(target: np.ndarray, rng: np.random.Generator, negative_prob: float = NEGATIVE_PROB) -> list:
    """One positive click inside the object (interior preferred) and maybe one negative click.

    Examples
    --------
    >>> t = np.zeros((9, 9), np.uint8); t[2:7, 2:7] = 1
    >>> c = first_clicks(t, np.random.default_rng(0), negative_prob=1.0)
    >>> [(k.positive, bool(t[k.row, k.col])) for k in c]
    [(True, True), (False, False)]
    """
    from scipy import ndimage as ndi

    obj = target == 1
    dist = ndi.distance_transform_edt(np.pad(obj, 1))[1:-1, 1:-1].ravel()
    p = dist / dist.sum()
    k = int(rng.choice(dist.size, p=p))
    clicks = [Click(k // target.shape[1], k % target.shape[1], True)]
    bg = np.flatnonzero(target.ravel() == 0)
    if bg.size and rng.random() < negative_prob:
        j = int(bg[rng.integers(bg.size)])
        clicks.append(Click(j // target.shape[1], j % target.shape[1], False))
    return clicks


def correction_click(pred: np.ndarray, target: np.ndarray, clicks: list):
    """The protocol's next click on the errors of ``pred``, or ``None`` when there are none."""
    valid = target != IGNORE
    if not ((pred != (target == 1)) & valid).any():
        return None
    clicked = np.zeros(target.shape, bool)
    for c in clicks:
        clicked[c.row, c.col] = True
    return next_click(pred, target, clicked, ignore=IGNORE)


@register_trainable("pointclip")
class PointCLIPTrainer(Trainable):
    """PointCLIP's decoder trained on a dataset, CLIP frozen.

    Parameters
    ----------
    backbone : str
        CLIP checkpoint id or local folder.
    image_size : int
        Square training and inference size (a multiple of the patch size and of 8).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    max_corrections : int
        Most clicks added on the model's errors per batch.
    seed : int
        Seed of the decoder's initial weights.
    """

    monitor = "iou"

    def __init__(self, backbone: str = DEFAULT_CLIP, image_size: int = 224, device: str = "auto",
                 max_corrections: int = 2, seed: int = 0):
        import torch

        from ...features.clip import load_clip_vision
        from ...io.weights import WeightsUnavailableError

        dev = resolve_device(device)
        try:
            clip = load_clip_vision(backbone, dev)
        except WeightsUnavailableError as exc:
            exc.option = "--backbone"  # train's option for a local CLIP folder
            raise
        cfg = default_config(backbone, clip.config.hidden_size, clip.config.patch_size, int(image_size))
        torch.manual_seed(seed)
        self.model = PointCLIPModel(cfg, dev)
        self.max_corrections = int(max_corrections)

    def config(self) -> dict:
        return dict(self.model.config)

    def module(self):
        return self.model.decoder

    def prepare(self, samples: list, progress=None, cancel=None) -> PreparedData:
        import torch

        size = self.model.size
        images = np.empty((len(samples), size, size, 3), np.uint8)
        targets = np.empty((len(samples), size, size), np.uint8)
        keep = []
        for i, s in enumerate(samples):
            check(cancel)
            images[i], targets[i] = load_sample(s, size)
            if (targets[i] == 1).any():
                keep.append(i)
        if not keep:
            raise ValueError("no training image has object pixels in its annotation")
        images, targets = images[keep], targets[keep]
        tokens = []
        for b in range(0, len(keep), 16):
            check(cancel)
            report(progress, b, len(keep), "clip features of the training images")
            x = torch.from_numpy(images[b : b + 16]).permute(0, 3, 1, 2).float() / 255.0
            tokens.append(self.model.encode(normalize_clip(x)).half())
        return PreparedData(images, targets, torch.cat(tokens))

    def _batch(self, data: PreparedData, idx):
        import torch

        x = torch.from_numpy(data.images[idx]).permute(0, 3, 1, 2).float() / 255.0
        tok = data.tokens[idx].to(self.model.device).float()
        return x.to(self.model.device), tok

    def _heat(self, clicks_per_image: list):
        import torch

        s = self.model.size
        heat = np.stack([click_heatmaps(c, (s, s), s, self.model.sigma) for c in clicks_per_image])
        return torch.from_numpy(heat).to(self.model.device)

    def loss(self, data: PreparedData, indices, rng):
        import torch
        import torch.nn.functional as F

        idx = np.asarray(indices)
        x, tok = self._batch(data, idx)
        targets = data.targets[idx]
        clicks = [first_clicks(t, rng) for t in targets]
        rounds = int(rng.integers(1, self.max_corrections + 1)) if rng.random() < CORRECTION_PROB else 0
        dec = self.model.decoder
        for _ in range(rounds if self.max_corrections > 0 else 0):
            dec.eval()
            with torch.no_grad():
                pred = self.model.logits(x, self._heat(clicks), tok).argmax(1).cpu().numpy().astype(bool)
            dec.train()
            for k, t in enumerate(targets):
                c = correction_click(pred[k], t, clicks[k])
                if c is not None:
                    clicks[k].append(c)
        logits = self.model.logits(x, self._heat(clicks), tok)
        y = torch.from_numpy(targets.astype(np.int64)).to(self.model.device)
        return F.cross_entropy(logits, y, ignore_index=IGNORE)

    def evaluate(self, data: PreparedData) -> dict:
        import torch
        import torch.nn.functional as F

        ious, losses = [], []
        for b in range(0, len(data), 16):
            idx = np.arange(b, min(len(data), b + 16))
            x, tok = self._batch(data, idx)
            targets = data.targets[idx]
            clicks = [[next_click(np.zeros(t.shape, bool), t, np.zeros(t.shape, bool), ignore=IGNORE)]
                      for t in targets]
            logits = self.model.logits(x, self._heat(clicks), tok)
            y = torch.from_numpy(targets.astype(np.int64)).to(self.model.device)
            losses.append(float(F.cross_entropy(logits, y, ignore_index=IGNORE)) * len(idx))
            pred = logits.argmax(1).cpu().numpy().astype(bool)
            ious.extend(iou(p, t, ignore=IGNORE) for p, t in zip(pred, targets))
        return {"iou": float(np.mean(ious)), "loss": float(np.sum(losses) / len(data))}
