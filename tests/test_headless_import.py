"""The core imports and segments with napari, Qt and magicgui unavailable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

BLOCKED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt")

CHILD = textwrap.dedent(
    """
    import importlib, importlib.util, json, pkgutil, sys

    BLOCKED = set(json.loads(sys.argv[1]))
    attempts = []

    class Blocker:
        # a meta path finder that makes the GUI stack look uninstalled
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ImportError(f"{name} is blocked by the headless test")
            return None

    sys.meta_path.insert(0, Blocker())

    # the blocker really blocks
    try:
        import napari  # noqa: F401
    except ImportError:
        napari_blocked = True
    else:
        napari_blocked = False
    attempts.clear()

    import numpy as np
    import napari_deepseg.core as core

    modules = []
    for info in pkgutil.walk_packages(core.__path__, core.__name__ + "."):
        importlib.import_module(info.name)
        modules.append(info.name)
    has_cli = importlib.util.find_spec("napari_deepseg.cli") is not None
    if has_cli:
        importlib.import_module("napari_deepseg.cli")
        modules.append("napari_deepseg.cli")

    image = np.zeros((24, 24, 3), np.uint8)
    image[6:18, 6:18] = (220, 60, 40)
    scribbles = np.zeros((24, 24), np.uint8)
    scribbles[11:13, 9:15] = 1
    scribbles[0:2, :] = 2
    results = {}
    for backbone in ("rgb", "classic"):
        mask = core.segment_image(image, scribbles, backbone=backbone)
        results[backbone] = [int(mask[12, 12]), int(mask[1, 1]), int(mask[6:18, 6:18].sum()), int(mask.sum())]

    from napari_deepseg.core.cut import service  # the Scribble widget's requests, as a script runs them
    options = service.Options("classic", "default", lam=None, sigma=None)
    pool = service.SessionPool()
    service.prepare_request(pool.slot(options), image, options)
    labels = service.run_request(pool.slot(options), image, scribbles, options)
    results["service"] = [int(labels[12, 12]), int(labels[1, 1]), int(labels[6:18, 6:18].sum()), int(labels.sum())]

    print(json.dumps({
        "napari_blocked": napari_blocked,
        "attempts": attempts,
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
        "modules": modules,
        "has_cli": has_cli,
        "results": results,
    }))
    """
)


def run_child():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(BLOCKED)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},  # speed only, see conftest.py
    )
    assert proc.returncode == 0, f"headless import failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_imports_and_segments_without_gui_stack():
    out = run_child()
    assert out["napari_blocked"], "the import blocker did not block napari"
    assert out["loaded"] == [], f"GUI modules were imported: {out['loaded']}"
    assert out["attempts"] == [], f"the core tried to import GUI modules: {out['attempts']}"
    # every module of the core was imported
    for name in ("cut.graphcut", "cut.session", "cut.energy", "cut.pyramid", "io.weights", "utils.validation",
                 "features.resnet", "io.files", "evaluation.metrics", "cut.service", "prompts.clickcut", "models.proposals"):
        assert f"napari_deepseg.core.{name}" in out["modules"]
    # the 12x12 square (144 px) is found, the background scribble is background
    for backbone, (centre, corner, inside, total) in out["results"].items():
        assert centre == 1 and corner == 0, backbone
        assert inside == 144 and total == 144, (backbone, inside, total)
