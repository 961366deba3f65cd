"""The core's rooms keep the import rules their docstrings state (see docs/architecture.md)."""

import ast
from pathlib import Path

import pytest

import napari_deepseg.core as core

CORE = Path(core.__file__).parent
ROOMS = ("cut", "prompts", "features", "models", "evaluation", "io", "utils", "dataset")
#: what each room may import of the core (besides itself); ``None`` = anything
ALLOWED = {
    "utils": set(),
    "io": {"utils", "features.base"},
    "features": {"io", "utils", "models.saliency"},  # the saliency backbone wraps the saliency model
    "cut": {"features", "io", "utils"},
    "evaluation": {"io", "utils", "prompts.base", "prompts.box"},
    "models": {"features", "io", "utils", "evaluation", "prompts", "cut"},
    "prompts": {"cut", "features", "io", "utils", "models", "evaluation"},
    "dataset": {"cut", "prompts", "io", "utils"},
}


def core_imports(path: Path):
    """Core modules imported by the file at ``path`` (relative imports resolved), as dotted names below core."""
    here = path.relative_to(CORE).with_suffix("").parts
    package = here[:-1]  # a module's package; for an __init__.py, the package itself
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)] if node.level > 1 else package)
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("napari_deepseg.core."):
                target = node.module.split(".")[2:]
            else:
                continue
            names = [a.name for a in node.names]
            for n in names:  # ``from . import graphcut`` imports a module
                full = target + [n]
                if (CORE.joinpath(*full).with_suffix(".py")).exists() or (CORE.joinpath(*full) / "__init__.py").exists():
                    yield ".".join(full)
                else:
                    yield ".".join(target)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("napari_deepseg.core."):
                    yield ".".join(a.name.split(".")[2:])


@pytest.mark.parametrize("room", ROOMS)
def test_room_imports_only_what_its_docstring_allows(room):
    allowed = ALLOWED[room]
    bad = []
    for path in sorted((CORE / room).rglob("*.py")):
        for target in core_imports(path):
            top = target.split(".")[0]
            if top == room or not target:
                continue
            if top not in allowed and target not in allowed and not any(target.startswith(a + ".") for a in allowed):
                bad.append(f"{path.relative_to(CORE)} imports core.{target}")
    assert bad == [], "\n".join(bad)


def test_every_core_module_is_in_a_room():
    loose = [p.name for p in CORE.glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((CORE / room / "__init__.py").read_text()))
        assert doc and "What it may import" in doc, room


def test_click_registry_does_not_import_its_members():
    base = CORE / "prompts" / "base.py"
    assert [t for t in core_imports(base) if t.startswith("prompts.")] == []
    from napari_deepseg.core.prompts import available_click_methods

    assert {"graphcut", "points-graphcut", "pointclip"} <= set(available_click_methods())


def test_import_checker_sees_the_session_imports():
    # the checker itself (else the room test could pass on an empty list)
    got = set(core_imports(CORE / "cut" / "session.py"))
    assert {"cut.energy", "cut.pyramid", "cut.seed", "utils.memory", "features"} <= got
