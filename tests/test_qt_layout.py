"""The widgets share their Qt helpers through ``_qt/_common.py`` (issue 30): one copy of each, none taken from
another widget's module."""

import ast
from pathlib import Path

import pytest

pytest.importorskip("napari")

import napari_deepseg._qt as qt  # noqa: E402

QT = Path(qt.__file__).parent
#: names defined once, in _common.py
SHARED = {"DEVICES", "one_line", "notify", "_notify", "elide_words", "StatusLine", "_StatusLine", "ProgressRelay",
          "_ProgressRelay", "row", "_row", "STATUS_WORD_CHARS", "single_shot"}
WIDGETS = ("scribble_widget", "point_widget", "proposal_widget", "evaluate_widget", "train_widget", "dataset_widget")


def definitions(path: Path) -> set:
    """Names a module defines (functions, classes, methods, assigned names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def imported_modules(path: Path) -> set:
    """``_qt`` modules a module imports from (``from .x import ...``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", sorted(QT.glob("*.py")), ids=lambda p: p.name)
def test_shared_helpers_are_defined_only_in_common(path):
    if path.name == "_common.py":
        assert SHARED & definitions(path) >= {"DEVICES", "one_line", "notify", "elide_words", "StatusLine",
                                              "ProgressRelay", "row", "single_shot"}
    else:
        assert not SHARED & definitions(path), f"{path.name} defines its own {SHARED & definitions(path)}"


@pytest.mark.parametrize("path", sorted(QT.glob("*.py")), ids=lambda p: p.name)
def test_no_module_borrows_from_a_widget(path):
    if path.name == "__init__.py":
        return
    assert not imported_modules(path) & set(WIDGETS), f"{path.name} imports from a widget's module"


@pytest.mark.parametrize("path", sorted(QT.glob("*.py")), ids=lambda p: p.name)
def test_only_the_request_runner_starts_workers(path):
    source = path.read_text()
    starts = "create_worker" in source or "FunctionWorker" in source or "thread_worker" in source
    assert starts == (path.name == "_tasks.py"), f"{path.name} starts workers itself: use _tasks.TaskRunner"
