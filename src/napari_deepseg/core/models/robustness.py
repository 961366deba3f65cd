"""Robustness of a trained segmentation model to image perturbations (``napari-deepseg robustness``).

As the CLIP work did: every image of a dataset is perturbed at increasing
strength, segmented by the model, and scored against its mask (Dice and IoU,
unknown pixels left out). Strength 0 is the clean image.

========================  ==========================================================
perturbation              strength
========================  ==========================================================
``gaussian_noise``        standard deviation of additive noise (image in [0, 1])
``gaussian_blur``         σ of a Gaussian blur, in pixels
``contrast``              fraction of contrast removed (0.9 = a tenth is left)
``brightness``            shift added to every channel (clipped to [0, 1])
``occlusion``             fraction of the image covered by gray squares
``salt_and_pepper``       fraction of pixels set to black or white
========================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..utils.progress import CancelToken, ProgressCallback, check, report

#: strengths studied by default (the clean image, strength 0, is always included)
LEVELS = {
    "gaussian_noise": (0.02, 0.05, 0.1, 0.2, 0.3),
    "gaussian_blur": (0.5, 1.0, 2.0, 4.0, 8.0),
    "contrast": (0.2, 0.4, 0.6, 0.8, 0.9),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "occlusion": (0.05, 0.1, 0.2, 0.3, 0.5),
    "salt_and_pepper": (0.01, 0.02, 0.05, 0.1, 0.2),
}
PERTURBATIONS = tuple(LEVELS)


def perturb(image: np.ndarray, name: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A perturbed copy of a float ``(rows, cols, 3)`` image in [0, 1].

    Raises
    ------
    ValueError
        For an unknown perturbation or a negative strength.

    Examples
    --------
    >>> img = np.full((8, 8, 3), 0.5, np.float32)
    >>> round(float(perturb(img, "brightness", 0.2, np.random.default_rng(0)).mean()), 4)
    0.7
    >>> float(perturb(img, "contrast", 0.5, np.random.default_rng(0)).std())
    0.0
    """
    from scipy import ndimage as ndi

    if name not in LEVELS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    s = float(strength)
    if s < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    img = np.asarray(image, np.float32).copy()
    if s == 0:
        return img
    if name == "gaussian_noise":
        img += rng.normal(0, s, img.shape).astype(np.float32)
    elif name == "gaussian_blur":
        img = ndi.gaussian_filter(img, sigma=(s, s, 0))
    elif name == "contrast":
        mean = img.mean(axis=(0, 1), keepdims=True)
        img = mean + (img - mean) * (1 - min(s, 1.0))
    elif name == "brightness":
        img += s
    elif name == "occlusion":
        img = _occlude(img, min(s, 1.0), rng)
    else:  # salt_and_pepper
        hit = rng.random(img.shape[:2]) < s
        img[hit] = (rng.random(int(hit.sum())) < 0.5).astype(np.float32)[:, None]
    return np.clip(img, 0, 1)


def _occlude(img: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Gray squares (a tenth of the shorter side) at random places until ``fraction`` of the pixels is covered."""
    rows, cols = img.shape[:2]
    side = max(1, min(rows, cols) // 10)
    covered = np.zeros((rows, cols), bool)
    for _ in range(100_000):
        if covered.mean() >= fraction:
            break
        r, c = int(rng.integers(0, max(1, rows - side + 1))), int(rng.integers(0, max(1, cols - side + 1)))
        covered[r : r + side, c : c + side] = True
    img[covered] = 0.5
    return img


@dataclass
class RobustnessResult:
    """Scores per perturbation and strength.

    Attributes
    ----------
    rows : list of dict
        ``perturbation``, ``strength``, ``dice``, ``iou``, ``images`` (means over images);
        the clean image is ``perturbation = "none"``, ``strength = 0``.
    """

    rows: list = field(default_factory=list)

    def clean(self) -> dict:
        """The row of the unperturbed images."""
        return next(r for r in self.rows if r["perturbation"] == "none")

    def table(self) -> str:
        """A plain-text table (one line per perturbation and strength)."""
        lines = [f"{'perturbation':<16} {'strength':>8} {'dice':>7} {'iou':>7}"]
        for r in self.rows:
            lines.append(f"{r['perturbation']:<16} {r['strength']:>8.3g} {r['dice']:>7.4f} {r['iou']:>7.4f}")
        return "\n".join(lines)


def robustness_study(model, samples: list, perturbations=None, levels: dict | None = None, seed: int = 0,
                     progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> RobustnessResult:
    """Score ``model`` on ``samples`` under each perturbation at each strength.

    Parameters
    ----------
    model : SegmentationModel
        Anything with ``predict(image) -> labels`` and ``classes``.
    samples : list
        Dataset samples (:func:`~napari_deepseg.core.models.training.find_samples`).
    perturbations : sequence of str, optional
        Default: all of :data:`PERTURBATIONS`.
    levels : dict, optional
        ``{name: strengths}`` overriding :data:`LEVELS`.
    seed : int
        Seed of the random perturbations (the same for every model).

    Raises
    ------
    ValueError
        For an unknown perturbation or an empty sample list.
    """
    from .training.data import read_sample
    from .training.segmentation import score_batch

    names = list(PERTURBATIONS if perturbations is None else perturbations)
    for name in names:
        if name not in LEVELS:
            raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    if not samples:
        raise ValueError("no images to evaluate")
    grid = [("none", 0.0)] + [(n, float(s)) for n in names for s in (levels or {}).get(n, LEVELS[n])]
    scores = {key: [] for key in grid}
    total = len(samples) * len(grid)
    done = 0
    classes = int(model.classes)
    for i, sample in enumerate(samples):
        rgb, target = read_sample(sample, classes)
        image = rgb.astype(np.float32) / 255.0
        for name, strength in grid:
            check(cancel)
            report(progress, done, total, f"{name} {strength:g}")
            rng = np.random.default_rng([seed, i, int(strength * 1000)])
            pred = model.predict(perturb(image, name, strength, rng) if name != "none" else image)
            scores[(name, strength)].extend(score_batch(pred[None], target[None], classes))
            done += 1
    report(progress, total, total, "done")
    rows = [{"perturbation": n, "strength": s, "dice": float(np.mean([v[0] for v in scores[(n, s)]])),
             "iou": float(np.mean([v[1] for v in scores[(n, s)]])), "images": len(samples)} for n, s in grid]
    return RobustnessResult(rows)


def plot_robustness(result: RobustnessResult, path, title: str = "") -> None:
    """Save a figure: one panel per perturbation, Dice and IoU against strength (clean image at 0)."""
    from matplotlib.figure import (
        Figure,  # no pyplot: leaves the application's backend alone
    )

    clean = result.clean()
    names = [n for n in dict.fromkeys(r["perturbation"] for r in result.rows) if n != "none"]
    cols = min(3, max(1, len(names)))
    rows = -(-len(names) // cols) or 1
    fig = Figure(figsize=(4 * cols, 3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        pts = [clean] + [r for r in result.rows if r["perturbation"] == name]
        xs = [r["strength"] for r in pts]
        ax.plot(xs, [r["dice"] for r in pts], "o-", label="Dice")
        ax.plot(xs, [r["iou"] for r in pts], "s--", label="IoU")
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("strength")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].legend(loc="lower left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
