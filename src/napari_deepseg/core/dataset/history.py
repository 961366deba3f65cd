"""Previous versions of a file kept before it is replaced: ``<output>/.history/<stem>/``.

Before a mask is replaced by different content, its current file is copied
(atomically) into ``.history/<stem>/`` as
``<counter>.<name>`` (``0001.cat.png``, ``0002.cat.png``, ...), so that the
rename of the new file over it never loses it. At most :data:`KEEP` versions are
kept per image: the oldest one (what the folder held before the plugin ever
wrote to it) and the newest ``KEEP - 1``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..io.atomic import atomic_write

#: versions kept per image (the first and the newest ones)
KEEP = 10
HISTORY = ".history"
_VERSION = re.compile(r"^(\d{4,})\.(.+)$")


def versions(folder, stem: str) -> list:
    """The kept versions of ``stem``, oldest first (``(counter, path)``).

    Examples
    --------
    >>> versions("/nonexistent", "cat")
    []
    """
    where = Path(folder) / HISTORY / stem
    if not where.is_dir():
        return []
    found = []
    for p in where.iterdir():
        m = _VERSION.match(p.name)
        if m and p.is_file() and not p.name.startswith("."):
            found.append((int(m.group(1)), p))
    return sorted(found)


def keep_version(folder, stem: str, path, keep: int = KEEP) -> Path:
    """Keep the current file ``path`` as the next version of ``stem``; prune to ``keep`` versions.

    Returns
    -------
    pathlib.Path
        The kept version's path.
    """
    path = Path(path)
    kept = versions(folder, stem)
    counter = kept[-1][0] + 1 if kept else 1
    target = Path(folder) / HISTORY / stem / f"{counter:04d}.{path.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    # a copy, not a hard link: a program that rewrites the mask in place must not change its history
    atomic_write(target, lambda tmp: shutil.copyfile(path, tmp))
    kept.append((counter, target))
    for _, old in kept[1:max(1, len(kept) - max(1, keep - 1))]:  # the first version stays
        old.unlink(missing_ok=True)
    return target
