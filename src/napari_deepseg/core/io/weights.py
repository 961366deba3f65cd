"""Where pretrained weights come from: an explicit file, torchvision's cache, or a download.

Resolution order for a torchvision model:

1. an explicit file (``--weights PATH`` in the CLI, the file field of the widget);
2. the file in the directory named by ``NAPARI_DEEPSEG_WEIGHTS_DIR`` (machines with no internet);
3. torchvision's own cache, ``$TORCH_HOME/hub/checkpoints`` (weights a user already has are reused);
4. a download with a progress bar into that cache, unless ``allow_download=False``.

Checkpoints are always read with ``torch.load(..., weights_only=True)`` or
safetensors, so loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

ENV_WEIGHTS_DIR = "NAPARI_DEEPSEG_WEIGHTS_DIR"


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be found or downloaded (message is one line)."""


def torch_cache_dir() -> Path:
    """torchvision's checkpoint cache, honouring ``TORCH_HOME``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_file_name(url: str) -> str:
    """The file name torchvision stores a checkpoint under (last part of its URL).

    Examples
    --------
    >>> weights_file_name("https://download.pytorch.org/models/resnet50-11ad3fa6.pth")
    'resnet50-11ad3fa6.pth'
    """
    return url.rsplit("/", 1)[-1]


def find_local_weights(url: str) -> Optional[Path]:
    """Return a local copy of the checkpoint at ``url`` if one exists, else ``None``."""
    name = weights_file_name(url)
    candidates = []
    override = os.environ.get(ENV_WEIGHTS_DIR)
    if override:
        candidates.append(Path(override) / name)
    candidates.append(torch_cache_dir() / name)
    for path in candidates:
        if path.is_file():
            return path
    return None


def load_state_dict_file(path) -> dict:
    """Read a state dict from ``.pth``/``.pt`` (``weights_only``) or ``.safetensors``.

    Raises
    ------
    WeightsUnavailableError
        If the file is missing or cannot be read as a state dict.
    """
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsUnavailableError(f"weights file not found: {p}")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        first = " ".join(str(exc).split(". ")[0].split())[:160]  # torch's messages run to many sentences
        raise WeightsUnavailableError(
            f"cannot read weights file {p} (not a PyTorch or safetensors checkpoint?): {type(exc).__name__}: {first}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsUnavailableError(f"weights file {p} does not hold a state dict")
    return state


def resolve_torchvision_weights(
    url: str, weights_path=None, allow_download: bool = True, progress: bool = True
) -> dict:
    """Return the state dict of a torchvision checkpoint, following the module's order.

    Parameters
    ----------
    url : str
        The checkpoint's URL, e.g. ``ResNet50_Weights.IMAGENET1K_V2.url``.
    weights_path : path-like, optional
        An explicit file; when given, nothing else is tried.
    allow_download : bool
        Download into torchvision's cache when no local copy exists.
    progress : bool
        Show a progress bar while downloading.

    Raises
    ------
    WeightsUnavailableError
        With a one-line message naming the missing file and how to provide it.
    """
    if weights_path is not None:
        return load_state_dict_file(weights_path)
    local = find_local_weights(url)
    if local is not None:
        return load_state_dict_file(local)
    name = weights_file_name(url)
    hint = (
        f"pretrained weights '{name}' not found in {torch_cache_dir()}; "
        f"download {url} and pass it with --weights PATH (or put it in ${ENV_WEIGHTS_DIR})"
    )
    if not allow_download:
        raise WeightsUnavailableError(hint)
    import torch.hub

    try:
        return torch.hub.load_state_dict_from_url(url, progress=progress, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - network errors vary; one clear line
        raise WeightsUnavailableError(f"{hint} (download failed: {type(exc).__name__})") from None
