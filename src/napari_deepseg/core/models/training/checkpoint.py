"""Checkpoints: a safetensors file of tensors plus a JSON file of everything else.

A checkpoint folder holds ``model.safetensors`` and ``config.json`` (the model's
name and hyper-parameters). A run in progress also keeps ``last.safetensors``,
``optimizer.safetensors`` and ``state.json`` so that it can be resumed. Nothing
is ever unpickled: safetensors holds only tensors, JSON only plain values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
LAST_FILE = "last.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def save_tensors(path, tensors: dict, metadata=None) -> None:
    """Write ``{name: tensor}`` to ``path`` as safetensors, atomically (a crash keeps the old file)."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def load_tensors(path) -> dict:
    """Read a safetensors file; a missing or corrupt file is one ``ValueError`` line."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint file not found: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several kinds; one clear line
        raise ValueError(f"cannot read checkpoint file {path}: {type(exc).__name__}: {exc}") from None


def read_json(path) -> dict:
    """A JSON object from ``path``; missing, corrupt or non-object files raise one ``ValueError`` line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise TypeError(f"{path} does not hold a JSON object")
    return data


def save_checkpoint(folder, state_dict: dict, config: dict) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder`` (created if needed).

    Examples
    --------
    >>> import tempfile, torch
    >>> d = tempfile.mkdtemp()
    >>> _ = save_checkpoint(d, {"w": torch.ones(2)}, {"model": "demo"})
    >>> state, config = load_checkpoint(d); state["w"].tolist(), config["model"]
    ([1.0, 1.0], 'demo')
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / MODEL_FILE, state_dict, metadata={"model": str(config.get("model", ""))})
    _atomic_json(folder / CONFIG_FILE, config)
    return folder


def load_checkpoint(folder) -> tuple:
    """``(state_dict, config)`` of a checkpoint folder.

    Raises
    ------
    ValueError
        If the folder, ``model.safetensors`` or ``config.json`` is missing or unreadable.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"checkpoint folder not found: {folder}")
    return load_tensors(folder / MODEL_FILE), read_json(folder / CONFIG_FILE)


def load_into(module, state: dict, source: str) -> None:
    """Load ``state`` into ``module`` strictly; a mismatch is one ``ValueError`` line naming ``source``."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
            if keys
        )
        raise ValueError(f"{source} does not fit the model's architecture: {detail}")
    module.load_state_dict(state)


def optimizer_tensors(optimizer) -> tuple:
    """Split an optimizer's state into ``({name: tensor}, json_part)`` for safetensors + JSON."""
    import torch

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in sd["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer, tensors: dict, json_part: dict) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict = {}
    for key, value in list(tensors.items()) + list(json_part.get("scalars", {}).items()):
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json_part["param_groups"]})


def has_checkpoint(folder) -> bool:
    """Whether ``folder`` already holds a checkpoint or a run in progress."""
    folder = Path(folder)
    return any((folder / f).exists() for f in (MODEL_FILE, LAST_FILE, STATE_FILE))
