"""The *Dataset* dock: a folder of images in, a folder of masks out, nothing lost, no waiting between images.

It drives the Scribble segmentation and Point prompts widgets rather than
duplicating them: it opens one image at a time (the previous image's layers
are removed first, so nothing of one image shows on another), restores the
image's saved mask and prompts as editable layers, saves them while the user
works, and prepares the neighbouring images in the background.

* the list shows every image with its status; a click opens it, **N** / **Shift+N**
  (or the buttons) move to the next / previous image, *Done* marks the image done
  and moves on;
* what is saved and how is :class:`~napari_deepseg.core.dataset.folder.DatasetFolder`'s
  business (atomic writes, ``.history/``, the lock that makes a second session read-only);
* saving: every :data:`AUTOSAVE_MS` when anything of the image changed, and on every
  move, in a worker (a 25 MP PNG takes seconds to encode);
* committed objects: every commit of the Scribble or Point prompts widget into the
  image's objects layer (:data:`~napari_deepseg._qt._objects.committed`) is recorded
  as a step that re-creates it (``target`` = its id, ``refine`` when it refined one),
  in commit order before the prompts being edited; the record says ``edited`` only
  when the objects layer changed some other way (painted by hand, or a mask no
  step makes), so that a replay re-creates the mask otherwise;
* preparing: after an image opens, its next and previous neighbours are read and
  their features, colour model and edge weights computed in a worker
  (:func:`~napari_deepseg.core.cut.service.prepare_neighbour`: beside the Scribble
  widget's session, handed to it when done, so that no request on the current image
  waits for it; the session keeps :data:`PREPARED_IMAGES` images), so that the first
  stroke after *Next* costs what an update costs.
"""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np
from magicgui.widgets import Container, FileEdit, LineEdit, PushButton
from napari.layers import Image, Labels, Points, Shapes
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QListWidget, QListWidgetItem

from ..core.cut import service
from ..core.dataset.folder import (DONE, IN_PROGRESS, NEEDS_REVIEW, SKIPPED, UNREADABLE, DatasetFolder,
                                   ReadOnlyError)
from ..core.dataset.record import ImageState, Step, array_digest, click_engine, scribble_engine
from ..core.io.files import read_image
from ..core.prompts.objects import protect_committed
from ..core.utils.progress import Cancelled
from . import _layers, _objects, _tasks
from ._common import StatusLine, notify, one_line
from ._tasks import TaskRunner

#: autosave period: the image's layers are saved when they changed since the last save
AUTOSAVE_MS = 2000
#: images whose features the Scribble widget's session keeps: the current one and its two neighbours
PREPARED_IMAGES = 3
#: status marks in the list
MARKS = {"not-started": "·", IN_PROGRESS: "…", DONE: "✓", SKIPPED: "–", NEEDS_REVIEW: "?", UNREADABLE: "✗"}
KEY_NEXT, KEY_PREVIOUS = "n", "Shift-n"
#: what the recorded steps make of an image whose objects layer is missing or empty
NO_OBJECTS = "no objects"


class DatasetWidget(Container):
    """Dock widget: annotate the images of a folder one after the other.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    scribble_widget : ScribbleSegmentationWidget, optional
        The Scribble widget whose session prepares the neighbours and whose
        options are recorded (default: the docked one, docked on first use).
    """

    def __init__(self, napari_viewer, scribble_widget=None):
        super().__init__(labels=True)
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self._scribble = scribble_widget
        self.folder: Optional[DatasetFolder] = None
        self.index: Optional[int] = None
        self.image_layer: Optional[Image] = None
        self._images: dict = {}  # index -> pixels, the current image and its prepared neighbours only
        self._dirty = False
        self._saving = threading.Lock()  # one save at a time; the folder is not shared otherwise
        # saves in a worker (a newer save supersedes a running one's message)
        self._saver = TaskRunner(self.native, announce=False)
        self._preparer = TaskRunner(self.native, announce=False)  # the neighbours' preparation (a move cancels it)
        self._watched: list = []
        self._prepare_pending = False  # the neighbours' preparation yielded to a cut: start it again when idle
        self._committed: list = []  # the current image's committed objects as record steps, in commit order
        # digest of the objects layer as the committed steps make it (NO_OBJECTS: none yet; None: unknown,
        # the layer holds what no step makes: hand edits, a mask from elsewhere)
        self._objects_made: Optional[str] = NO_OBJECTS
        self._made_before: list = []  # per committed step, _objects_made before it (an undo of it goes back there)
        self._build()
        self._timer = QTimer(self.native)
        self._timer.setInterval(AUTOSAVE_MS)
        self._timer.timeout.connect(self._autosave)
        self._timer.start()
        _tasks.starting.connect(self._before_request)
        _objects.committed.connect(self._on_committed)
        self.viewer.bind_key(KEY_NEXT, lambda _v: self.next(), overwrite=True)
        self.viewer.bind_key(KEY_PREVIOUS, lambda _v: self.previous(), overwrite=True)
        self.native.destroyed.connect(self._on_destroyed)

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.images_dir = FileEdit(label="images", mode="d")
        self.pattern = LineEdit(label="pattern", value="", tooltip="glob pattern(s) of the image names, e.g. *.jpg "
                                                                    "or *.png;*.tif (empty: every image file)")
        self.output_dir = FileEdit(label="output", mode="d")
        self.existing_dir = FileEdit(label="existing masks", mode="d", nullable=True,
                                     tooltip="optional: masks to refine, matched by file stem")
        self.open_button = PushButton(text="Open folder")
        self.list = QListWidget()
        self.list.setMinimumHeight(120)
        self.previous_button = PushButton(text="Previous", tooltip="the previous image (Shift+N)")
        self.next_button = PushButton(text="Next", tooltip="the next image (N)")
        self.done_button = PushButton(text="Done → next", tooltip="mark this image done and open the next one "
                                                                  "that is not done")
        self.skip_button = PushButton(text="Skip")
        self.review_button = PushButton(text="Needs review")
        self.count = QLabel("")
        self.status = StatusLine(value="choose an image folder and an output folder")
        self.status.native.setWordWrap(True)
        self.status.native.setMinimumWidth(10)  # a long message wraps instead of widening the dock
        nav = Container(layout="horizontal", labels=False,
                        widgets=[self.previous_button, self.next_button, self.done_button])
        marks = Container(layout="horizontal", labels=False, widgets=[self.skip_button, self.review_button])
        nav.margins = marks.margins = (0, 0, 0, 0)
        self.extend([self.images_dir, self.pattern, self.output_dir, self.existing_dir, self.open_button, nav, marks])
        for widget in (self.count, self.status.native, self.list):  # the whole width; the list last, taking the height left
            self.native.layout().addWidget(widget)
        self.open_button.clicked.connect(lambda *_: self.open_folder())
        self.previous_button.clicked.connect(lambda *_: self.previous())
        self.next_button.clicked.connect(lambda *_: self.next())
        self.done_button.clicked.connect(lambda *_: self.mark(DONE))
        self.skip_button.clicked.connect(lambda *_: self.mark(SKIPPED))
        self.review_button.clicked.connect(lambda *_: self.mark(NEEDS_REVIEW))
        self.list.itemClicked.connect(lambda item: self.go(self.list.row(item)))
        self._update_controls()

    # -- the folder -----------------------------------------------------------------------------
    def open_folder(self, images=None, output=None, pattern=None, existing=None) -> bool:
        """Open an image folder and its output folder and resume at the first image that is not done.

        Arguments default to the dock's fields. A second session on the same
        output folder opens it read-only and says so; a bad folder is one line.

        Returns
        -------
        bool
            Whether a folder is open.
        """
        images = images if images is not None else self.images_dir.value
        output = output if output is not None else self.output_dir.value
        pattern = pattern if pattern is not None else (self.pattern.value.strip() or None)
        if existing is None:
            existing = self.existing_dir.value
            existing = None if existing is None or str(existing) in ("", ".") else existing
        if not images or str(images) in ("", ".") or not output or str(output) in ("", "."):
            notify(self.status, "choose an image folder and an output folder")
            return False
        self.close_folder()
        try:
            self.folder = DatasetFolder.open(images, output, pattern, existing)
        except (ValueError, OSError) as exc:
            notify(self.status, one_line(exc, None))
            return False
        if self.folder.message:
            notify(self.status, self.folder.message)
        self.images_dir.value, self.output_dir.value = self.folder.images, self.folder.output
        if self.folder.existing is not None:
            self.existing_dir.value = self.folder.existing
        self._fill_list()
        start = self.folder.first_not_done()
        self.go(len(self.folder) - 1 if start is None else start)
        return True

    def close_folder(self) -> None:
        """Save the current image, remove its layers and release the folder."""
        if self.folder is None:
            return
        self.save(wait=True)
        self._cancel_prepare()
        self._remove_image_layers()
        self.folder.close()
        self.folder, self.index, self._images = None, None, {}
        self.list.clear()
        self._update_controls()

    def _fill_list(self) -> None:
        self.list.clear()
        for i, item in enumerate(self.folder.items):
            self.list.addItem(QListWidgetItem(""))
            self._show_status(i)
        self._update_count()

    def _show_status(self, i: int) -> None:
        status = self.folder.status(i)
        entry = self.list.item(i)
        entry.setText(f"{MARKS.get(status, ' ')} {self.folder.items[i].name}")
        reason = self.folder.reason(i)
        entry.setToolTip(f"{status}: {reason}" if reason else status)

    def _update_count(self) -> None:
        counts = self.folder.counts() if self.folder is not None else {}
        total = len(self.folder) if self.folder is not None else 0
        self.count.setText(f"{counts.get(DONE, 0)} of {total} done" if total else "")

    def _update_controls(self) -> None:
        opened = self.folder is not None and self.index is not None
        writable = opened and not self.folder.read_only
        for button in (self.previous_button, self.next_button):
            button.enabled = opened
        for button in (self.done_button, self.skip_button, self.review_button):
            button.enabled = writable

    # -- moving -------------------------------------------------------------------------------
    def next(self) -> bool:
        """Open the next image (unreadable ones passed over)."""
        return self._step(1)

    def previous(self) -> bool:
        """Open the previous image (unreadable ones passed over)."""
        return self._step(-1)

    def _step(self, step: int) -> bool:
        if self.folder is None or self.index is None:
            return False
        j = self.folder.neighbour(self.index, step)
        if j is None:
            self.status.value = "this is the last image" if step > 0 else "this is the first image"
            return False
        return self.go(j)

    def mark(self, status: str) -> bool:
        """Give the current image ``status``, save it and open the next image that is not done."""
        if self.folder is None or self.index is None:
            return False
        if not self.save(wait=True):
            return False
        try:
            with self._saving:
                self.folder.set_status(self.index, status)
        except (ReadOnlyError, ValueError, OSError) as exc:
            notify(self.status, one_line(exc, None))
            return False
        self._show_status(self.index)
        self._update_count()
        following = self._next_not_done(self.index)
        if following is None:
            self.status.value = f"all {len(self.folder)} images are done or skipped"
            return True
        return self.go(following)

    def _next_not_done(self, i: int) -> Optional[int]:
        n = len(self.folder)
        for k in list(range(i + 1, n)) + list(range(0, i)):
            if self.folder.status(k) not in (DONE, SKIPPED, UNREADABLE):
                return k
        return None

    def go(self, i: int) -> bool:
        """Save the current image, remove its layers, open image ``i`` with its saved state.

        An unreadable image is marked with its one-line reason and the next
        readable one opens instead.

        Returns
        -------
        bool
            Whether an image is open.
        """
        if self.folder is None or not 0 <= i < len(self.folder):
            return False
        if i == self.index and self.image_layer is not None:
            return True
        if self.index is not None and not self.save(wait=True):
            return False  # saving failed: the user is told and stays on the image
        tried = set()
        while i is not None and i not in tried:
            tried.add(i)
            try:
                image = self._pixels(i)
            except (ValueError, OSError, MemoryError) as exc:
                self._mark_unreadable(i, one_line(exc, None))
                i = self.folder.neighbour(i, 1)
                continue
            try:
                state = self.folder.load(i)
            except (ValueError, OSError) as exc:  # a broken record: the image opens, the user is told
                notify(self.status, f"could not restore {self.folder.items[i].name}'s saved work: "
                                    f"{one_line(exc, None)}")
                state = ImageState()
            self._remove_image_layers()
            self._show(i, image, state)
            return True
        self.status.value = "no readable image left"
        return False

    def _pixels(self, i: int) -> np.ndarray:
        image = self._images.get(i)
        return read_image(self.folder.items[i].path) if image is None else image

    def _mark_unreadable(self, i: int, reason: str) -> None:
        if not self.folder.read_only:
            with self._saving:
                self.folder.set_status(i, UNREADABLE, reason)
        else:
            self.folder.items[i].status, self.folder.items[i].reason = UNREADABLE, reason
        self._show_status(i)
        self.status.value = f"{self.folder.items[i].name} is unreadable: {reason}"

    # -- layers of one image ----------------------------------------------------------------------
    def _show(self, i: int, image: np.ndarray, state: ImageState) -> None:
        """Add image ``i``'s layers: the image, its strokes, its mask and prompts, ready to edit."""
        self.index = i
        self._images[i] = image
        self._keep_images(i)
        name = self.folder.items[i].stem
        self.image_layer = self.viewer.add_image(image, name=name, rgb=image.ndim == 3 and image.shape[-1] in (3, 4))
        objects = any(step.target > 0 or step.pending for step in state.steps) or state.start == "existing" or (
            state.mask is not None and int(np.max(state.mask, initial=0)) > 2)
        if state.mask is not None and objects:
            layer = _layers.role_layer(self.viewer, self.image_layer, _layers.ROLE_OBJECTS,
                                       _layers.objects_name(self.image_layer), state.mask.dtype)
            layer.data = np.array(state.mask)  # a writeable copy: files are read as read-only arrays
        elif state.mask is not None:
            _layers.add_result_layer(self.viewer, _layers.result_name(self.image_layer), self.image_layer,
                                     _layers.spatial_shape(self.image_layer), (), np.array(state.mask))
        self._committed = [step for step in state.steps if _is_commit(step)]
        self._made_before = [None] * len(self._committed)  # napari's undo history starts with the image
        self._objects_made = self._made_at_start(state)
        current = [step for step in state.steps if not _is_commit(step)]  # the prompts being edited
        scribbles = _layers.new_scribbles_layer(self.viewer, self.image_layer)
        strokes = next((s.strokes for s in reversed(current) if s.kind == "scribbles"), None)
        if strokes is not None and strokes.shape == scribbles.data.shape:
            scribbles.data = np.array(strokes, scribbles.data.dtype)
        clicks = next((s for s in reversed(current) if s.kind in ("clicks", "box")), None)
        if clicks is not None:
            self._restore_prompts(clicks)
        self._point_scribble_widget(scribbles, state)
        self.viewer.layers.selection.active = scribbles
        self._watch()
        self._dirty = False
        self.list.setCurrentRow(i)
        self._update_controls()
        item = self.folder.items[i]
        self.status.value = (f"{item.name}: image {i + 1} of {len(self.folder)}"
                             + (" (read-only)" if self.folder.read_only else ""))
        self._prepare_neighbours(i)

    def _made_at_start(self, state: ImageState) -> Optional[str]:
        """What the record's committed steps make of the objects layer as restored (see ``_objects_made``)."""
        layer = self._layer_of(_layers.ROLE_OBJECTS)
        if layer is None or not np.any(layer.data):
            return None if state.edited else NO_OBJECTS
        if state.edited or not (self._committed or state.start == "existing"):
            return None  # painted by hand, or a mask from elsewhere (no record, or a result of classes)
        return array_digest(layer.data)

    def _on_committed(self, commit) -> None:
        """A widget committed an object: remember the prompts that made it as a step of the record.

        Only commits into this image's objects layer count. The step's strokes
        are the ones its cut saw (the objects committed before as background
        where nothing is painted), its clicks and box those on the commit's plane.
        A commit that no step re-creates (prompts not found, or not what made
        the object: ``commit.exact``) leaves the mask edited.
        """
        objects = self._layer_of(_layers.ROLE_OBJECTS)
        if self.folder is None or self.image_layer is None or commit.image_layer is not self.image_layer \
                or objects is None or commit.layer is not objects:
            return
        before = commit.before
        if commit.plane:
            before = np.array(objects.data)
            before[commit.plane] = commit.before
        made = self._objects_made
        if made is None or made != (NO_OBJECTS if not np.any(before) else array_digest(before)):
            made = None  # the layer was changed by hand before this commit: no step makes it any more
        step = self._commit_step(commit)
        if step is not None:
            self._committed.append(step)
            self._made_before.append(made)
        if step is None or not commit.exact:
            made = None  # the object is not what the recorded prompts give: the mask stays as it is in a replay
        self._objects_made = None if made is None else array_digest(objects.data)
        self._dirty = True

    def _commit_step(self, commit) -> Optional[Step]:
        """The step that made ``commit``'s object (``None`` when its prompts are not found)."""
        refine = commit.bound if commit.bound is not None and commit.bound > 0 else None
        if commit.source == "scribbles":
            scribbles, widget = self._layer_of(_layers.ROLE_SCRIBBLES), self.scribble_widget(create=False)
            if scribbles is None or (widget is not None and widget.scribbles_combo.value is not scribbles):
                return None
            strokes = np.array(scribbles.data[commit.plane] if commit.plane else scribbles.data)
            taken = commit.before != 0
            if refine is not None:
                taken &= commit.before != commit.label_id
            return Step("scribbles", engine=self._scribble_engine(widget),
                        strokes=np.array(protect_committed(strokes, taken)), target=commit.label_id, refine=refine,
                        plane=commit.plane)
        if commit.source == "clicks":
            step = self._clicks_step(commit.plane)
            if step is None:
                return None
            return Step(step.kind, engine=commit.engine or step.engine, clicks=step.clicks, box=step.box,
                        target=commit.label_id, refine=refine, plane=commit.plane)
        return None

    def _restore_prompts(self, step: Step) -> None:
        """The clicks (and box) of a step as the Point prompts widget's layers (as File > Open gives them)."""
        from .._io import prompt_layers

        for data, kwargs, kind in prompt_layers(step, self.image_layer.name):
            getattr(self.viewer, f"add_{kind}")(data, **kwargs, **_layers.layer_geometry(self.image_layer))

    def _point_scribble_widget(self, scribbles: Labels, state: ImageState) -> None:
        """Select the image and strokes in the Scribble widget; an existing mask is the layer strokes refine."""
        widget = self.scribble_widget(create=False)
        if widget is None:
            return
        widget.reset_choices()
        widget.image_combo.value = self.image_layer
        widget.scribbles_combo.value = scribbles
        objects = self._layer_of(_layers.ROLE_OBJECTS)
        if state.start == "existing" and objects is not None:
            widget.refine_layer.value = objects
            ids = np.unique(objects.data)
            ids = ids[ids > 0]
            widget.refine_label.value = int(ids[0]) if ids.size else 1
            if ids.size == 1:  # one object: refining starts at once (R over another label picks that one)
                widget.refine(objects, int(ids[0]))

    def _image_layers(self) -> list:
        """The image layer and every layer this plugin made for it."""
        if self.image_layer is None:
            return []
        name = self.image_layer.name
        mine = [layer for layer in self.viewer.layers
                if isinstance(layer.metadata.get(_layers.METADATA_KEY), dict)
                and layer.metadata[_layers.METADATA_KEY].get("image") == name]
        return [self.image_layer] + [layer for layer in mine if layer is not self.image_layer]

    def _layer_of(self, role: str):
        for layer in self._image_layers()[1:]:
            if _layers.role(layer) == role:
                return layer
        return None

    def _remove_image_layers(self) -> None:
        self._unwatch()
        self._committed, self._made_before, self._objects_made = [], [], NO_OBJECTS
        for layer in self._image_layers():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.image_layer = None

    # -- saving ---------------------------------------------------------------------------------
    def _watch(self) -> None:
        """Mark the image changed on any edit of its layers (and on layers added for it)."""
        self._unwatch()
        emitters = [self.viewer.layers.events.inserted, self.viewer.layers.events.removed]
        for layer in self._image_layers()[1:]:
            for name in ("paint", "data", "features"):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitters.append(emitter)
        for emitter in emitters:
            emitter.connect(self._on_changed)
        self._watched = emitters

    def _unwatch(self) -> None:
        for emitter in self._watched:
            try:
                emitter.disconnect(self._on_changed)
            except (RuntimeError, TypeError, ValueError):
                pass
        self._watched = []

    def _on_changed(self, event=None) -> None:
        self._dirty = True
        if event is not None and getattr(event, "type", "") == "inserted":
            self._watch()  # a result or objects layer made since: its edits count too

    def current_state(self, mask: bool = True) -> ImageState:
        """The current image's mask and prompts as an :class:`ImageState` (copies, read on the main thread).

        The mask is the objects layer when it holds any object (committed
        objects, or the existing mask being refined), else the result layer;
        ``mask=False`` leaves it out (the prompts alone are saved). The steps
        are the committed objects' steps in commit order, then the prompts being
        edited (``pending`` when the mask is the objects layer: their result is
        not in it). ``edited``: the mask is the objects layer and the committed
        steps do not make it. A commit undone (Ctrl+Z on the objects layer) drops its step.
        """
        objects, result = self._layer_of(_layers.ROLE_OBJECTS), self._layer_of(_layers.ROLE_SEGMENTATION)
        use_objects = objects is not None and np.any(objects.data)
        current = []
        scribbles = self._layer_of(_layers.ROLE_SCRIBBLES)
        widget = self.scribble_widget(create=False)
        if scribbles is not None and np.any(scribbles.data):
            engine = self._scribble_engine(widget)
            current.append(Step("scribbles", engine=engine, strokes=np.array(scribbles.data), pending=use_objects))
        clicks = self._clicks_step()
        if clicks is not None:
            clicks.pending = use_objects
            current.append(clicks)
        made = self._undo_commits(array_digest(objects.data) if use_objects else NO_OBJECTS)
        if use_objects:
            edited = made is None
        else:  # the mask is the result: the last current step makes it (after the commits, it replaces them)
            # ... unless it is a correction that kept far pixels of an earlier result (replay cuts the strokes alone)
            edited = (bool(self._committed) and not current) or bool(
                current and widget is not None and widget.result_kept_far(self.image_layer))
        source = objects if use_objects else result
        mask = None if source is None or not mask else np.array(source.data)
        start = "existing" if self.folder.items[self.index].existing is not None else None
        return ImageState(mask=mask, steps=list(self._committed) + current, start=start, edited=edited)

    def _undo_commits(self, now: str) -> Optional[str]:
        """Drop the committed steps that Ctrl+Z undid (the objects layer is back to before them).

        ``now``: the objects layer's digest (:data:`NO_OBJECTS` when it holds none).
        Returns what the remaining steps make of the layer if that is ``now``, else ``None``.
        """
        while (self._committed and self._objects_made is not None and now != self._objects_made
               and self._made_before[-1] is not None and now == self._made_before[-1]):
            self._committed.pop()
            self._objects_made = self._made_before.pop()
        return self._objects_made if now == self._objects_made else None

    @staticmethod
    def _scribble_engine(widget) -> dict:
        if widget is None:
            return scribble_engine()
        try:
            options = widget.options()
        except ValueError:
            return scribble_engine(backbone=widget.backbone.value, preset=widget.preset.value)
        return scribble_engine(backbone=options.backbone, backbone_params=dict(options.params),
                               preset=options.preset, lam=options.lam, sigma=options.sigma)

    def _clicks_step(self, plane: tuple = ()) -> Optional[Step]:
        """The Point prompts widget's clicks and box (on ``plane`` of a stack) as a step, or ``None``."""
        from ._layers import ROLE_BOX, ROLE_PROMPTS, box_from_shapes, plane_clicks

        points, shapes = self._layer_of(ROLE_PROMPTS), self._layer_of(ROLE_BOX)
        clicks = ()
        if isinstance(points, Points) and len(points.data):
            positive = (np.asarray(points.features["positive"], bool) if "positive" in points.features
                        else np.ones(len(points.data), bool))
            clicks = tuple(plane_clicks(np.asarray(points.data), positive, plane))
        box = None
        if isinstance(shapes, Shapes) and len(shapes.data):
            try:
                box = box_from_shapes(shapes, _layers.spatial_shape(self.image_layer), plane)
            except ValueError:
                box = None
        if not clicks and box is None:
            return None
        return Step("box" if box is not None else "clicks", engine=click_engine("graphcut"), clicks=clicks, box=box)

    def save(self, wait: bool = False, mask: bool = True) -> bool:
        """Save the current image's state now (in a worker unless ``wait``).

        ``mask=False`` saves the prompts alone (the image stays marked changed, so
        the next autosave writes the mask).

        Returns
        -------
        bool
            ``False`` when the save failed (the user is told in one line).
        """
        if self.folder is None or self.index is None or self.folder.read_only or self.image_layer is None:
            return True
        state, i = self.current_state(mask=mask), self.index
        if mask:
            self._dirty = False
        if wait:
            message = self._save(i, state)
            if message:
                notify(self.status, message)
            self._show_status_if_open(i)
            return message is None
        self._saver.start(self._save, i, state, on_result=lambda message: self._on_saved(i, message), bar=False)
        return True

    def _on_saved(self, i: int, message: Optional[str]) -> None:
        if message:
            notify(self.status, message)
        self._show_status_if_open(i)

    def _save(self, i: int, state: ImageState, progress=None, cancel=None) -> Optional[str]:
        """Worker body: save under the lock; the one-line error or ``None``."""
        with self._saving:
            try:
                self.folder.save(i, state)
            except (ReadOnlyError, ValueError, TypeError, OSError) as exc:
                return f"could not save {self.folder.items[i].name}: {one_line(exc, None)}"
        return None

    def _show_status_if_open(self, i: int) -> None:
        if self.folder is not None and i < self.list.count():
            self._show_status(i)
            self._update_count()

    def _before_request(self, runner=None) -> None:
        """A widget starts a request (a cut): save the prompts now, before the cut holds Python's lock.

        (The dock's own runners do not announce their requests: ``announce=False``.)

        A worker's autosave can wait seconds for a cut's C extensions to let it
        run (a first cut after a restart); a kill then lost the strokes painted
        before it. The prompts alone are written here, on the main thread
        (strokes and record: milliseconds on a photo); the mask follows with the
        next autosave. A large plane is cut in the child process, which leaves
        Python's lock to a worker: its prompts are written in one (the strokes
        PNG of a 25 MP plane paused the press 0.4-0.5 s), as they are where an
        autosave is writing already (a 25 MP mask: about a second the press waited for).
        """
        self._yield_preparation()
        if not self._dirty:
            return
        if not self._cut_in_child() and self._saving.acquire(blocking=False):  # the prompts now, on this thread
            self._saving.release()
            self.save(wait=True, mask=False)
        else:
            self.save(mask=False)

    def _cut_in_child(self) -> bool:
        """Whether the current image is cut in the Scribble widget's child process (a plane of at least
        :data:`~napari_deepseg.core.cut.service.PROCESS_MIN_PIXELS`)."""
        limit = service.PROCESS_MIN_PIXELS
        return (self.image_layer is not None and limit is not None
                and int(np.prod(_layers.spatial_shape(self.image_layer)[-2:])) >= limit)

    def _yield_preparation(self) -> None:
        """A cut of a large plane is about to start: stop the neighbours' preparation, which holds the child process.

        Planes of at least :data:`~napari_deepseg.core.cut.service.PROCESS_MIN_PIXELS` are
        prepared and cut by one session in a child process, one call at a time: the
        first cut of a tile otherwise waited for the next tile's preparation (seconds).
        The autosave tick starts the preparation again once the widget is idle.
        """
        if not self._preparer.running or not self._cut_in_child():
            return  # photos are prepared beside the session (prepare_aside): nothing waits for them
        self._preparer.cancel()
        self._prepare_pending = True

    def _autosave(self) -> None:
        if self._dirty:
            self.save()
        widget = self.scribble_widget(create=False)
        idle = widget is None or not (widget.busy or widget.refitting)
        if self._prepare_pending and idle and self.folder is not None and self.index is not None:
            self._prepare_pending = False
            self._prepare_neighbours(self.index)

    # -- preparing the neighbours -------------------------------------------------------------------
    def scribble_widget(self, create: bool = True):
        """The Scribble segmentation widget this dock works with (docked on first use when ``create``)."""
        if self._scribble is None and create:
            try:
                _, self._scribble = self.viewer.window.add_plugin_dock_widget("napari-deepseg",
                                                                              "Scribble segmentation")
            except (KeyError, ValueError, RuntimeError, AttributeError):
                return None
        return self._scribble

    def _cancel_prepare(self) -> None:
        self._preparer.cancel()

    def _prepare_neighbours(self, i: int) -> None:
        """Read the next and previous image and prepare the Scribble widget's session for them, in a worker."""
        self._cancel_prepare()
        self._prepare_pending = False
        widget = self.scribble_widget(create=False)
        wanted = [j for j in self._neighbours(i) if j is not None]
        if not wanted:
            return
        # images already read are prepared from memory (the session finds their features in its cache)
        paths = {j: self._images.get(j, self.folder.items[j].path) for j in wanted}
        slot = options = None
        if widget is not None:
            try:
                options = widget.options()
                if options.volume is None and options.channel_axis is None:
                    slot = widget._slot(options)
                    slot.keep_images(PREPARED_IMAGES)
            except (ValueError, TypeError, RuntimeError):
                slot = None
        self._preparer.start(_prepare, paths, slot, options, on_result=lambda result: self._on_prepared(i, result),
                             bar=False)

    def _on_prepared(self, i: int, result: dict) -> None:
        if self.folder is None or self.index != i:
            return
        for j, (image, error) in result.items():
            if error:
                self._mark_unreadable(j, error)
            elif image is not None:
                self._images[j] = image
        self._keep_images(i)

    def _neighbours(self, i: int) -> tuple:
        """The next and the previous readable image of ``i`` (``None`` where there is none)."""
        return self.folder.neighbour(i, 1), self.folder.neighbour(i, -1)

    def _keep_images(self, i: int) -> None:
        """Keep the pixels of image ``i`` and its two neighbours only (the memory bound)."""
        keep = {i, *self._neighbours(i)}
        self._images = {j: a for j, a in self._images.items() if j in keep}

    # -- the end ------------------------------------------------------------------------------
    def _on_destroyed(self, *_args) -> None:
        _tasks.starting.disconnect(self._before_request)
        _objects.committed.disconnect(self._on_committed)
        self._timer.stop()
        self._cancel_prepare()
        if self.folder is not None:
            self.folder.close()



def _is_commit(step: Step) -> bool:
    """Whether a record's step committed an object (else it holds the prompts being edited)."""
    return step.target > 0 and not step.pending


def _prepare(sources: dict, slot, options, progress=None, cancel=None) -> dict:
    """Worker body: read each image (a path, or pixels already read) and prepare the session for it.

    Returns ``{index: (image, error)}``.
    """
    from ..core.cut.service import prepare_neighbour

    result = {}
    for j, source in sources.items():
        if cancel is not None and cancel.cancelled:
            break
        try:
            image = source if isinstance(source, np.ndarray) else read_image(source)
        except (ValueError, OSError, MemoryError) as exc:
            result[j] = (None, one_line(exc, None))
            continue
        result[j] = (image, "")
        if slot is not None:
            try:
                prepare_neighbour(slot, image, options, cancel=cancel)
            except Cancelled:
                break
            except (ValueError, TypeError, RuntimeError, MemoryError):
                pass  # the Scribble widget reports it when the image is opened
    return result
