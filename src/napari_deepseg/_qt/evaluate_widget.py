"""The *Evaluate* dock widget: scores of a predicted Labels layer (or folder) against a reference.

A thin face of :mod:`napari_deepseg.core.evaluation.folders`. **Evaluate layers**
scores the whole predicted layer against the reference layer (every plane of
nD data), fills the table with a row per class and a mean row, and draws an
``"<prediction> errors"`` Labels layer: 1 false positive (red), 2 false
negative (blue), 3 wrong class (yellow). **Evaluate folders** pairs the files
of two folders by stem and lists a row per file (with the reason when a file
could not be scored) and the mean. **Export CSV** writes the table shown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    PushButton,
    SpinBox,
    Table,
)
from napari.layers import Labels
from qtpy.QtWidgets import QStyledItemDelegate

from ..core.evaluation.folders import (
    CLASS_COLUMNS,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    FILE_COLUMNS,
    WRONG_CLASS,
    error_overlay,
    evaluate_folders,
    evaluate_labels,
    write_csv,
)
from . import _layers
from ._tasks import TaskRunner
from ._common import notify, row, status_line
from ._messages import error_text

ROLE_ERRORS = "errors"
#: colours of the error overlay
ERROR_COLOURS = {FALSE_POSITIVE: "red", FALSE_NEGATIVE: "blue", WRONG_CLASS: "yellow"}


def _layer_names(layer) -> dict:
    """``{label: name}`` from a layer's ``features`` table (``index`` and ``class`` columns), if any."""
    table = getattr(layer, "features", None)
    if table is None or "class" not in getattr(table, "columns", ()):
        return {}
    index = table["index"] if "index" in table.columns else range(len(table))
    return {int(i): str(c) for i, c in zip(index, table["class"])}


class EvaluateWidget(Container):
    """Dock widget: IoU, Dice, pixel accuracy, precision, recall, F1 and MSE per class and averaged.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.pred_combo = ComboBox(label="prediction", choices=self._labels_choices)
        self.ref_combo = ComboBox(label="reference", choices=self._labels_choices)
        self.use_ignore = CheckBox(text="ignore", value=False)
        self.ignore = SpinBox(value=128, min=0, max=65535, enabled=False)
        self.background = CheckBox(text="score background (0) as a class", value=True)
        self.binary = CheckBox(text="binary (non-zero = object)", value=False,
                               tooltip="any non-zero label is the object (e.g. 0/255 masks)")
        self.layers_button = PushButton(text="Evaluate layers")
        self.pred_dir = FileEdit(label="prediction folder", mode="d", nullable=True)
        self.ref_dir = FileEdit(label="reference folder", mode="d", nullable=True)
        self.folders_button = PushButton(text="Evaluate folders")
        self.table = Table(value={"data": [], "index": [], "columns": list(CLASS_COLUMNS)})
        # magicgui's delegate shows numbers >= 1e5 or < 0.1 in scientific notation (pixel counts as
        # 2.160e+05, an MSE of 0.018 as 1.800e-02): show the cells' own text, rounded in _set_table
        self.table.native.setItemDelegate(QStyledItemDelegate(self.table.native))
        self.csv_path = FileEdit(label="CSV file", mode="w", filter="*.csv", nullable=True)
        self.export_button = PushButton(text="Export CSV")
        self.status = status_line()
        self.extend([
            self.pred_combo, self.ref_combo, row(self.use_ignore, self.ignore, label="reference"),
            self.background, self.binary, self.layers_button, self.pred_dir, self.ref_dir, self.folders_button,
            self.table, self.csv_path, self.export_button, self.status,
        ])
        self.runner = TaskRunner(self.native)
        self.rows: list = []
        self.columns: tuple = CLASS_COLUMNS
        self.use_ignore.changed.connect(lambda on: setattr(self.ignore, "enabled", on))
        self.layers_button.clicked.connect(lambda *_: self.evaluate_layers())
        self.folders_button.clicked.connect(lambda *_: self.evaluate_folders())
        self.export_button.clicked.connect(lambda *_: self.export_csv())
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered, events.renamed):
            emitter.connect(self.reset_choices)
        self.reset_choices()

    def reset_choices(self, *args) -> None:
        """Refresh both combos; when they show the same layer, the reference moves to another (see :func:`default_pair`)."""
        super().reset_choices(*args)
        layers = [layer for _, layer in self._labels_choices()]
        pred, ref = self.pred_combo.value, self.ref_combo.value
        if len(layers) >= 2 and (pred is ref or pred is None or ref is None):
            pred, ref = default_pair(layers, pred if pred is not ref else None)
            self.pred_combo.value, self.ref_combo.value = pred, ref

    def _labels_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Labels) and _layers.role(layer) != ROLE_ERRORS]

    @property
    def busy(self) -> bool:
        """Whether an evaluation is running."""
        return self.runner.busy

    def _ignore_value(self):
        return int(self.ignore.value) if self.use_ignore.value else None

    # -- layers ------------------------------------------------------------------
    def evaluate_layers(self) -> bool:
        """Score the prediction layer against the reference layer; returns whether it started."""
        pred, ref = self.pred_combo.value, self.ref_combo.value
        try:
            if not isinstance(pred, Labels) or not isinstance(ref, Labels):
                raise ValueError("choose a predicted and a reference Labels layer")  # noqa: TRY004 - shown to the user
            if pred is ref:
                raise ValueError(f"prediction and reference are the same layer '{pred.name}'")
            pshape, rshape = _layers.spatial_shape(pred), _layers.spatial_shape(ref)
            if pshape != rshape:
                raise ValueError(f"prediction '{pred.name}' has shape {pshape} but reference '{ref.name}' "
                                 f"has shape {rshape}")
        except ValueError as exc:
            notify(self.status, error_text(exc))
            return False
        p = np.array(_layers.layer_array(pred), copy=True)
        t = np.array(_layers.layer_array(ref), copy=True)
        ignore, background = self._ignore_value(), bool(self.background.value)
        names = {**_layer_names(ref), **_layer_names(pred)}
        if self.binary.value:
            p, t = binarize(p, t, ignore)
            names = {0: "background", 1: "object"}
        hint = _label_mismatch_hint(p, t, ignore) if not self.binary.value else ""

        def run(progress=None, cancel=None):
            table = evaluate_labels(p, t, ignore=ignore, names=names, include_background=background)
            return table, error_overlay(p, t, ignore=ignore)

        self.status.value = f"evaluating '{pred.name}' against '{ref.name}'…"
        self.runner.start(run, on_result=lambda res: self._show_layers(pred, res, hint), on_error=self._on_error,
                          desc="evaluate")
        return True

    def _show_layers(self, pred, result, hint: str = "") -> None:
        table, overlay = result
        self._set_table(table.as_rows(), CLASS_COLUMNS)
        if pred in self.viewer.layers:
            self._write_overlay(pred, overlay)
        m = table.mean
        self.status.value = (f"mean IoU {m['iou']:.3f}, Dice {m['dice']:.3f}, pixel accuracy "
                             f"{table.pixel_accuracy:.3f} over {len(table.rows)} classes{hint}")

    def _write_overlay(self, pred, overlay) -> Labels:
        from napari.utils.colormaps import DirectLabelColormap

        name = f"{pred.name} errors"
        layer = self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401 - LayerList has no get
        if (isinstance(layer, Labels) and _layers.role(layer) == ROLE_ERRORS
                and layer.data.shape == overlay.shape):
            layer.data = overlay  # the plugin's own overlay: replaced, not a user's labels
            return layer
        colours = {None: "transparent", 0: "transparent", **ERROR_COLOURS}
        return self.viewer.add_labels(
            overlay, name=name, opacity=0.7, colormap=DirectLabelColormap(color_dict=colours),
            features={"index": [0, 1, 2, 3], "error": ["", "false positive", "false negative", "wrong class"]},
            metadata={_layers.METADATA_KEY: {"role": ROLE_ERRORS, "prediction": pred.name}},
            **_layers.layer_geometry(pred),
        )

    # -- folders -----------------------------------------------------------------
    def evaluate_folders(self) -> bool:
        """Score every file of the prediction folder against the reference folder."""
        pdir, rdir = self.pred_dir.value, self.ref_dir.value
        if pdir is None or rdir is None or str(pdir) in ("", ".") or str(rdir) in ("", "."):
            notify(self.status, "choose a prediction folder and a reference folder")
            return False
        ignore = self._ignore_value()

        def run(progress=None, cancel=None):
            return evaluate_folders(pdir, rdir, ignore=ignore, progress=progress, cancel=cancel)

        self.status.value = f"evaluating {Path(pdir).name} against {Path(rdir).name}…"
        self.runner.start(run, on_result=self._show_folders, on_error=self._on_error, desc="evaluate folders")
        return True

    def _show_folders(self, result) -> None:
        mean = {"file": "mean", "status": f"{result.evaluated} files", **result.mean}
        self._set_table(result.rows + [mean], FILE_COLUMNS)
        problems = len(result.problems)
        iou = f"mean IoU {result.mean['iou']:.3f}" if result.mean else "nothing could be scored"
        self.status.value = f"{iou} over {result.evaluated} files" + (f"; {problems} not scored" if problems else "")

    # -- table -------------------------------------------------------------------
    def _set_table(self, rows: list, columns) -> None:
        self.rows, self.columns = rows, tuple(columns)

        def cell(v):
            return round(v, 4) if isinstance(v, float) else v

        self.table.value = {"data": [[cell(r.get(c, "")) for c in columns] for r in rows],
                            "index": [str(i + 1) for i in range(len(rows))], "columns": list(columns)}
        self.table.native.resizeColumnsToContents()

    def export_csv(self):
        """Write the table shown to the CSV file chosen; returns the path or ``None``."""
        path = self.csv_path.value
        if not self.rows:
            notify(self.status, "nothing to export: evaluate first")
            return None
        if path is None or str(path) in ("", "."):
            notify(self.status, "choose a CSV file to export to")
            return None
        try:
            out = write_csv(path, self.rows, self.columns)
        except (ValueError, OSError) as exc:
            notify(self.status, f"cannot write the CSV file {path}: {error_text(exc)}")
            return None
        self.status.value = f"table written to {out}"
        return out

    def _on_error(self, exc) -> None:
        notify(self.status, error_text(exc))


#: words in a layer name that mark a reference (ground truth) layer
REFERENCE_WORDS = ("truth", "groundtruth", "gt", "reference", "ref", "mask")


def _is_reference_name(name: str) -> bool:
    """Whether a layer name reads like a reference: a word of :data:`REFERENCE_WORDS` in it.

    Examples
    --------
    >>> [_is_reference_name(n) for n in ("ground truth", "cat_gt", "cat masks", "cat segmentation", "Labels")]
    [True, True, True, False, False]
    """
    import re

    words = re.split(r"[^a-z]+", name.lower())
    return any(w == r or (len(r) > 3 and w.startswith(r)) for w in words for r in REFERENCE_WORDS if w)


def default_pair(layers: list, keep_pred=None) -> tuple:
    """``(prediction, reference)``: two different layers, the reference named like one if any is.

    The reference is the last layer whose name reads like a reference ("truth", "gt", "reference", "mask",
    …), else the first layer that is not the prediction; the prediction is ``keep_pred`` when given, else the
    newest layer that does not read like a reference.

    Examples
    --------
    >>> class L:
    ...     def __init__(self, name): self.name = name
    ...     def __repr__(self): return self.name
    >>> default_pair([L("truth"), L("cat segmentation")])
    (cat segmentation, truth)
    >>> default_pair([L("a"), L("b")])
    (b, a)
    """
    refs = [layer for layer in layers if _is_reference_name(layer.name) and layer is not keep_pred]
    pred = keep_pred
    if pred is None:
        others = [layer for layer in layers if layer not in refs] or layers
        pred = others[-1]
    ref = refs[-1] if refs else next(layer for layer in layers if layer is not pred)
    return pred, ref


def binarize(pred: np.ndarray, truth: np.ndarray, ignore=None):
    """``(pred != 0, truth != 0)`` as 0/1 labels, keeping the reference's ``ignore`` pixels."""
    p = (pred != 0).astype(np.uint8)
    t = (truth != 0).astype(np.int64 if ignore is not None and ignore > 255 else np.uint8)
    if ignore is not None:
        t[truth == ignore] = ignore
    return p, t


def _label_mismatch_hint(pred: np.ndarray, truth: np.ndarray, ignore=None) -> str:
    """A status suffix when the two layers share no object label (e.g. 1 against 255)."""
    pl = set(np.unique(pred).tolist()) - {0}
    tl = set(np.unique(truth).tolist()) - {0, ignore}
    if pl and tl and not pl & tl:
        return " — the layers share no object label: tick 'binary' to compare object against background"
    return ""

