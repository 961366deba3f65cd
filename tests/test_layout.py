"""The core's rooms keep the import rules their docstrings state (see docs/architecture.md)."""

import ast
import textwrap
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


# =========================================================================== the per-image cache has one owner
#: methods that change a dict or list in place
MUTATORS = {"update", "clear", "pop", "popitem", "setdefault", "append", "extend", "insert", "remove"}


def _written(target):
    """The attribute nodes an assignment target writes (``a.x``, ``a.x[k]``, ``a.b.x``, tuples of them)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for t in target.elts:
            yield from _written(t)
    elif isinstance(target, (ast.Starred, ast.Subscript)):
        yield from _written(target.value)
    elif isinstance(target, ast.Attribute):
        yield target


def cache_writes(source: str, fields) -> list:
    """``line: code`` of every statement of ``source`` that assigns, deletes or changes in place an attribute
    named in ``fields`` (or an item of one) of anything but ``self``/``cls``, or sets one through ``setattr``."""
    hits = []

    def foreign(node) -> bool:
        return node.attr in fields and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))

    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets = [node.optional_vars]
        elif isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "setattr" and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in fields):
                hits.append(f"{node.lineno}: {ast.unparse(node)}")
            elif isinstance(f, ast.Attribute) and f.attr in MUTATORS:
                targets = [f.value]
        if any(foreign(a) for t in targets for a in _written(t)):
            hits.append(f"{node.lineno}: {ast.unparse(node)[:100]}")
    return sorted(hits, key=lambda h: int(h.split(":")[0]))


def _cache_fields() -> set:
    """ImageFeatures' slots, but ``shape`` (every array has one; an entry's is set by its constructor only)."""
    from dataclasses import fields

    from napari_deepseg.core.cut.image import ImageFeatures

    return {f.name for f in fields(ImageFeatures)} - {"shape"}


def test_the_scan_finds_writes_to_the_cache():
    fields = _cache_fields()
    code = textwrap.dedent("""
        entry.appearance = model
        level.nlinks[key] = nlinks
        a, entry.coarse.star = 1, steps
        entry.nlinks.update(more)
        setattr(top, "last", cut)
        entry.auto_sigma += 1
        self.last = cut          # another class's own attribute
        entry.palette.ids[0] = 3  # not a slot of the cache (a slot's content)
        x = entry.nlinks[key]     # a read
    """)
    assert [h.split(":")[0] for h in cache_writes(code, fields)] == ["2", "3", "4", "5", "6", "7"]


def test_only_image_py_fills_the_per_image_cache():
    """Every slot of ImageFeatures is filled or replaced by core/cut/image.py alone; other modules read them."""
    fields = _cache_fields()
    owner = CORE / "cut" / "image.py"
    bad = []
    for path in sorted(CORE.parent.rglob("*.py")):
        if path != owner:
            bad += [f"{path.relative_to(CORE.parent)}:{h}" for h in cache_writes(path.read_text(), fields)]
    assert bad == [], "\n".join(bad)
    assert cache_writes(owner.read_text(), fields)  # the owner does write them (the scan sees its writes)
