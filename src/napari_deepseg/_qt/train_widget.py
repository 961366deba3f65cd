"""The *Train & predict* dock widget: train a segmentation model on corrected labels, let it label the rest.

A thin face of :mod:`napari_deepseg.core.models.training` and :mod:`napari_deepseg.core.models.predict`:

* **Training data**: image layers paired with their Labels layer (see :func:`pair_layers`), or a dataset
  folder (``images/`` + ``masks/``, or the Oxford-IIIT Pet layout).
* **Train** runs :func:`~napari_deepseg.core.models.training.fit` in a worker thread; each finished epoch adds a
  point to the live plot (train loss, validation Dice and IoU). **Cancel** stops it; the model in use (the
  *checkpoint* field) stays the previous one. A finished run becomes the model in use.
* **Predict** labels the current image, every image layer, or a folder of files: layers get a
  ``"<image> prediction"`` Labels layer (written with undo), files go to the output folder.
* **Add corrections to training set** writes every image layer and its (corrected) labels into the dataset
  folder, so the next training includes them.
"""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    LineEdit,
    PushButton,
    Select,
    SpinBox,
)
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning

from . import _layers
from ._tasks import TaskRunner
from ._torch_guard import guard_triton_import
from ._common import DEVICES, notify, status_line
from ._messages import error_text

ROLE_PREDICTION = "prediction"
SEG_MODELS = ("unet", "resnet34-unet", "clip-seg", "autoencoder")
SOURCES = ("image layers", "dataset folder")
TARGETS = ("current image", "all image layers", "folder")
#: name suffixes of Labels layers taken as an image's labels, in order of preference
LABEL_SUFFIXES = (" labels", " prediction", " segmentation", " objects", " proposal")


def safe_name(name: str) -> str:
    """A file-name-safe version of a layer name.

    Examples
    --------
    >>> safe_name("cells [1]/a b")
    'cells_1_a_b'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "image"


def labels_for(viewer, image_layer) -> Labels | None:
    """The Labels layer holding ``image_layer``'s (corrected) labels, if any.

    Preference: ``"<image> labels"``, ``"<image> prediction"``, ``"<image> segmentation"``, ... then any
    Labels layer this plugin made for the image; scribbles layers never count. Shapes must match.
    """
    shape = _layers.spatial_shape(image_layer)
    candidates = [layer for layer in viewer.layers if isinstance(layer, Labels)
                  and _layers.role(layer) != _layers.ROLE_SCRIBBLES and _layers.spatial_shape(layer) == shape]
    for suffix in LABEL_SUFFIXES:
        for layer in candidates:
            if layer.name == image_layer.name + suffix:
                return layer
    for layer in candidates:
        entry = layer.metadata.get(_layers.METADATA_KEY)
        if isinstance(entry, dict) and entry.get("image") == image_layer.name:
            return layer
    return None


def pair_layers(viewer, image_layers) -> list:
    """``(image layer, labels layer)`` for each image layer that has labels (see :func:`labels_for`)."""
    pairs = []
    for image_layer in image_layers:
        labels = labels_for(viewer, image_layer)
        if labels is not None:
            pairs.append((image_layer, labels))
    return pairs


def samples_from_layers(pairs) -> list:
    """Training samples (copies) from layer pairs: a 2-D layer is one sample, a stack one per labelled plane."""
    from ..core.models.training import ArraySample

    samples = []
    for image_layer, labels_layer in pairs:
        image = np.asarray(_layers.layer_array(image_layer))
        labels = np.asarray(_layers.layer_array(labels_layer))
        lead = labels.shape[:-2]
        for index in np.ndindex(*lead) if lead else [()]:
            plane = labels[index]
            if lead and not plane.any():
                continue
            name = image_layer.name + ("-" + "-".join(map(str, index)) if index else "")
            samples.append(ArraySample(name, np.array(image[index], copy=True), np.array(plane, copy=True)))
    return samples


def write_training_pairs(pairs, folder) -> int:
    """Write every pair as ``folder/images/NAME.png|tif`` + ``folder/masks/NAME.png``; returns the count.

    8-bit 2-D images are written as PNG, anything else as TIFF; stacks write their labelled planes.
    """
    from PIL import Image as PILImage

    from ..core.io.files import write_labels

    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    count = 0
    for sample in samples_from_layers(pairs):
        stem = safe_name(sample.name)
        for old in (root / "images").glob(f"{stem}.*"):
            old.unlink()  # a newer correction replaces the older one
        image = sample.image
        if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
            PILImage.fromarray(image).save(root / "images" / f"{stem}.png")
        else:
            import tifffile

            tifffile.imwrite(root / "images" / f"{stem}.tif", image)
        write_labels(root / "masks" / f"{stem}.png", sample.labels)
        count += 1
    return count


class _Plot:
    """A small matplotlib canvas: train loss, validation Dice and IoU per epoch."""

    def __init__(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(3.2, 2.0), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(160)
        self.axes = self.figure.add_subplot(111)
        self.history: list = []
        self.draw()

    def draw(self) -> None:
        ax = self.axes
        ax.clear()
        epochs = [h["epoch"] for h in self.history]
        for key, style in (("train_loss", "k-"), ("dice", "o-"), ("iou", "s--")):
            values = [h.get(key, np.nan) for h in self.history]
            ax.plot(epochs, values, style, label=key.replace("_", " "), markersize=3)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylim(0, max([1.0] + [h.get("train_loss", 0) for h in self.history]))
        ax.legend(fontsize=7, loc="upper right")
        ax.grid(alpha=0.3)
        self.canvas.draw_idle()


class TrainPredictWidget(Container):
    """Dock widget: train a segmentation model from corrected labels and predict with it.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self.source = ComboBox(label="training data", choices=list(SOURCES), value=SOURCES[0])
        self.images = Select(label="image layers", choices=self._image_choices)
        self.images.tooltip = "images to train on (none selected = every image layer with a Labels layer)"
        self.dataset = FileEdit(label="dataset folder", mode="d", nullable=True)
        self.model = ComboBox(label="model", choices=list(SEG_MODELS), value="unet")
        self.classes = SpinBox(label="classes", value=2, min=2, max=255)
        self.image_size = SpinBox(label="image size", value=256, min=32, max=2048, step=32)
        self.epochs = SpinBox(label="epochs", value=20, min=1, max=10000)
        self.batch_size = SpinBox(label="batch size", value=8, min=1, max=1024)
        self.lr = LineEdit(label="learning rate", value="0.001")
        self.net_width = SpinBox(label="width", tooltip="the network's width (0: its default)", value=0, min=0, max=512)
        self.extra = LineEdit(label="extra channels", value="")
        self.extra.tooltip = "extra input channels computed from the image: sobel, saliency (comma-separated)"
        self.device = ComboBox(label="device", choices=list(DEVICES), value="auto")
        self.runs = FileEdit(label="runs folder", mode="d", nullable=True)
        self.runs.tooltip = "each training run is saved in a new sub-folder here (empty: a temporary folder)"
        self.train_button = PushButton(text="Train")
        self.cancel_button = PushButton(text="Cancel training", enabled=False)
        self.checkpoint = FileEdit(label="model in use", mode="d", nullable=True)
        self.target = ComboBox(label="predict on", choices=list(TARGETS), value=TARGETS[0])
        self.predict_in = FileEdit(label="input folder", mode="d", nullable=True)
        self.predict_out = FileEdit(label="output folder", mode="d", nullable=True)
        self.predict_button = PushButton(text="Predict")
        self.add_button = PushButton(text="Add corrections to training set")
        self.status = status_line()
        self.plot = _Plot()
        self.extend([self.source, self.images, self.dataset, self.model, self.classes, self.image_size, self.epochs,
                     self.batch_size, self.lr, self.net_width, self.extra, self.device, self.runs, self.train_button,
                     self.cancel_button])
        self.native.layout().addWidget(self.plot.canvas)
        self.extend([self.checkpoint, self.target, self.predict_in, self.predict_out, self.predict_button,
                     self.add_button, self.status])
        self.train_runner = TaskRunner(self.native)
        self.predict_runner = TaskRunner(self.native)
        self.train_runner._relay.progressed.connect(lambda *_: self.plot.draw())
        self.train_runner._relay.progressed.connect(self._on_train_message)
        self.warnings: list = []  # what the current training run told the user
        self._training: tuple = ("", 0)  # (model, labelled pairs) of the current training run
        self._lock = threading.Lock()
        self._model_cache: tuple | None = None  # (folder, device, SegmentationModel)
        self._run = 0
        self.train_button.clicked.connect(lambda *_: self.train())
        self.cancel_button.clicked.connect(lambda *_: self.cancel())
        self.predict_button.clicked.connect(lambda *_: self.predict())
        self.add_button.clicked.connect(lambda *_: self.add_corrections())
        events = self.viewer.layers.events
        for emitter in (events.inserted, events.removed, events.reordered, events.renamed):
            emitter.connect(self.reset_choices)
        self.reset_choices()

    # ------------------------------------------------------------------ helpers
    def _image_choices(self, _widget=None) -> list:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    @property
    def busy(self) -> bool:
        """Whether a training or prediction runs."""
        return self.train_runner.busy or self.predict_runner.busy

    def _warn(self, message: str) -> None:
        """A warning in the status line and as a notification (training still goes on)."""
        self.warnings.append(message)
        self.status.value = message
        show_warning(message)

    def _on_train_message(self, _rid, _done, _total, message: str) -> None:
        """A trainer's ``warning: ...`` log line (main thread): say it, not only in the progress bar."""
        from ..core.models.training.segmentation import WARNING

        if message.startswith(WARNING):
            self._warn(message[len(WARNING):])

    def _chosen_images(self) -> list:
        chosen = list(self.images.value or [])
        return chosen or [layer for _, layer in self._image_choices()]

    def _training_samples(self) -> list:
        from ..core.models.training import find_samples

        if self.source.value == SOURCES[1]:
            folder = self.dataset.value
            if folder is None or str(folder) in ("", "."):
                raise ValueError("choose a dataset folder (images/ + masks/) or train on image layers")
            return find_samples(folder)
        pairs = pair_layers(self.viewer, self._chosen_images())
        if not pairs:
            raise ValueError("no image layer has a Labels layer of the same shape: add '<image> labels' "
                             "(or predict, correct, and train on the '<image> prediction' layers)")
        samples = samples_from_layers(pairs)
        if len(samples) < 2:
            raise ValueError(f"training needs at least 2 labelled images, found {len(samples)}")
        return samples

    def _run_folder(self) -> Path:
        base = self.runs.value
        if base is None or str(base) in ("", "."):
            base = Path(tempfile.mkdtemp(prefix="napari-deepseg-runs-"))
            self.runs.value = base
        base = Path(base)
        self._run += 1
        while (base / f"{self.model.value}-{self._run:03d}").exists():
            self._run += 1
        return base / f"{self.model.value}-{self._run:03d}"

    # ------------------------------------------------------------------ training
    def train(self) -> bool:
        """Start training on the chosen data; returns whether it started.

        Too few labelled pairs for the chosen model, and a near-zero validation
        Dice at the end, are said in the status line and as warnings
        (:mod:`~napari_deepseg.core.models.training.advice`).
        """
        from ..core.models.training import TrainOptions, get_trainable
        from ..core.models.training.advice import data_advice

        try:
            samples = self._training_samples()
            try:
                lr = float(self.lr.value)
            except ValueError:
                raise ValueError(f"learning rate must be a number, got {self.lr.value!r}") from None
            options = TrainOptions(epochs=self.epochs.value, batch_size=self.batch_size.value, lr=lr,
                                   patience=max(5, self.epochs.value // 4), schedule="cosine")
            from ..core.models.training.channels import check_channels
            from ..core.models.training.segmentation import segmentation_config

            segmentation_config(self.model.value, self.image_size.value, self.classes.value,
                                self.net_width.value or None, check_channels(self.extra.value))
            params = {"image_size": self.image_size.value, "classes": self.classes.value,
                      "device": self.device.value, "width": self.net_width.value or None,
                      "extra_channels": self.extra.value.strip() or ()}
            folder = self._run_folder()
        except (ValueError, TypeError, OSError) as exc:
            notify(self.status, error_text(exc, field=None))
            return False
        guard_triton_import()
        self.warnings = []
        self.plot.history = []
        self.plot.draw()
        name = self.model.value
        history = self.plot.history

        def run(progress=None, cancel=None):
            from ..core.models.training import fit

            trainable = get_trainable(name, log=lambda msg: progress(0, 0, msg), **params)

            def on_epoch(report):
                history.append({"epoch": report.epoch, "train_loss": report.train_loss, **report.val})
                progress(report.epoch, report.epochs, report.line())

            return fit(trainable, samples, folder, options, progress=on_epoch, cancel=cancel)

        self.status.value = f"training {name} on {len(samples)} images → {folder}"
        self.cancel_button.enabled = True
        self._training = (name, len(samples))
        self.train_runner.start(run, on_result=self._trained, on_error=self._train_failed, desc=f"training {name}")
        advice = data_advice(name, len(samples), val_fraction=options.val_fraction)
        if advice:  # a warning: training still runs
            self.warnings.append(advice)
            show_warning(advice)
            self.status.value = f"{advice} — training {name} on {len(samples)} images → {folder}"
        return True

    def _trained(self, result) -> None:
        from ..core.models.training.advice import score_advice

        self.cancel_button.enabled = False
        if not result.best_epoch:
            notify(self.status, "training produced no checkpoint; the previous model is kept")
            return
        self.checkpoint.value = result.folder
        self.status.value = (f"trained: best validation Dice {result.best_score:.3f} at epoch {result.best_epoch}; "
                             f"model in use: {result.folder}")
        show_info(self.status.value)
        advice = score_advice(*self._training[:1], result.best_score, self._training[1])
        if advice:
            show_warning(advice)
            self.warnings.append(advice)
        if self.warnings:  # said during training; the status line keeps them after it
            self.status.value += "; note: " + "; ".join(self.warnings)

    def _train_failed(self, exc) -> None:
        self.cancel_button.enabled = False
        notify(self.status, f"training failed: {error_text(exc, field=None)}; the previous model is kept")

    def cancel(self) -> None:
        """Stop the training; the model in use stays the previous one."""
        if self.train_runner.busy:
            self.train_runner.cancel()
            self.status.value = "training cancelled; the previous model is kept"
        self.cancel_button.enabled = False

    # ------------------------------------------------------------------ prediction
    def _segmentation_model(self):
        from ..core.models.predict import SegmentationModel

        folder = self.checkpoint.value
        if folder is None or str(folder) in ("", "."):
            raise ValueError("no model yet: train one, or choose a checkpoint folder as 'model in use'")
        key = (str(folder), self.device.value)
        with self._lock:
            if self._model_cache is None or self._model_cache[:2] != key:
                guard_triton_import()
                self._model_cache = key + (SegmentationModel(folder, device=self.device.value),)
            return self._model_cache[2]

    def predict(self) -> bool:
        """Start a prediction on the chosen target; returns whether it started."""
        try:
            target = self.target.value
            if target == TARGETS[2]:
                return self._predict_folder()
            layers = [self.viewer.layers.selection.active] if target == TARGETS[0] else \
                [layer for _, layer in self._image_choices()]
            if target == TARGETS[0] and not isinstance(layers[0], Image):
                layers = [layer for _, layer in self._image_choices()][-1:]
            if not layers:
                raise ValueError("no image layer to predict on: open an image first")
            jobs = []
            for layer in layers:
                shape = _layers.spatial_shape(layer)
                plane = _layers.current_plane(layer, self.viewer.dims.point)
                jobs.append((layer, plane, shape, np.array(_layers.layer_array(layer)[plane], copy=True)))
            model = self._segmentation_model()
        except (ValueError, TypeError, RuntimeError, OSError) as exc:
            notify(self.status, error_text(exc, field=None))
            return False

        def run(progress=None, cancel=None):
            out = []
            for i, (layer, plane, shape, image) in enumerate(jobs):
                progress(i, len(jobs), f"predicting {layer.name}")
                with self._lock:
                    out.append((layer, plane, shape, model.predict(image, cancel=cancel)))
            return out

        self.status.value = f"predicting {len(jobs)} image(s)…"
        self.predict_runner.start(run, on_result=self._write_predictions, on_error=self._on_error,
                                  desc="prediction")
        return True

    def _write_predictions(self, results) -> None:
        names = []
        for layer, plane, shape, labels in results:
            if layer not in self.viewer.layers:
                continue
            name = f"{layer.name} prediction"
            target = self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401 - LayerList
            if isinstance(target, Labels) and _layers.spatial_shape(target) == tuple(shape):
                _layers.write_plane(target, plane, labels)
            else:
                if target is not None:
                    name = f"{name} ({len(self.viewer.layers)})"  # never overwrite a user's other layer
                data = np.zeros(shape, np.uint8)
                data[plane] = labels
                self.viewer.add_labels(data, name=name, opacity=0.5, **_layers.layer_geometry(layer),
                                       metadata={_layers.METADATA_KEY: {"role": ROLE_PREDICTION,
                                                                        "image": layer.name}})
            names.append(name)
        self.status.value = (f"predicted: {', '.join(repr(n) for n in names)}; correct them with the brush, "
                             "then 'Add corrections to training set'" if names else "image layers were removed")

    def _predict_folder(self) -> bool:
        from ..commands.predict import input_files, output_name

        src, dst = self.predict_in.value, self.predict_out.value
        if src is None or str(src) in ("", ".") or dst is None or str(dst) in ("", "."):
            raise ValueError("choose an input folder of images and an output folder for the labels")
        try:
            files = input_files([src])
        except Exception as exc:  # noqa: BLE001 - CLIError is one line too
            raise ValueError(str(exc)) from None
        model = self._segmentation_model()

        def run(progress=None, cancel=None):
            from ..core.io.files import read_image, write_labels

            for i, path in enumerate(files):
                progress(i, len(files), path.name)
                with self._lock:
                    labels = model.predict_stack(read_image(path), cancel=cancel)
                write_labels(Path(dst) / output_name(path.stem, labels.ndim), labels)
            return len(files)

        self.status.value = f"predicting {len(files)} files…"
        self.predict_runner.start(run, on_result=lambda n: setattr(self.status, "value", f"{n} label images in {dst}"),
                                  on_error=self._on_error, desc="prediction")
        return True

    def _on_error(self, exc) -> None:
        notify(self.status, error_text(exc, field=None))

    # ------------------------------------------------------------------ corrections
    def add_corrections(self) -> int:
        """Write every chosen image layer and its labels into the dataset folder; returns the count."""
        folder = self.dataset.value
        try:
            if folder is None or str(folder) in ("", "."):
                raise ValueError("choose the dataset folder the corrections go to")
            pairs = pair_layers(self.viewer, self._chosen_images())
            if not pairs:
                raise ValueError("no image layer has a Labels layer ('<image> prediction' or '<image> labels')")
            count = write_training_pairs(pairs, folder)
        except (ValueError, TypeError, OSError) as exc:
            notify(self.status, error_text(exc, field=None))
            return 0
        total = len(list((Path(folder) / "masks").glob("*.png")))
        self.status.value = f"added {count} labelled image(s) to {folder} ({total} in all)"
        return count
