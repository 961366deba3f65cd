"""Keep torch from loading triton next to Mesa's LLVM (a segfault on Linux software/AMD GL).

torchvision imports ``torch._dynamo``, which imports ``triton`` when it is
installed (CUDA builds of torch ship it). ``libtriton`` bundles its own LLVM;
loading it into a process where napari's OpenGL canvas already loaded Mesa's
``libLLVM`` (llvmpipe under Xvfb, radeonsi on AMD GPUs) crashes the whole
process. Importing triton *before* the canvas exists is fine, and torch works
without triton (it is only needed by ``torch.compile``), so once Mesa's LLVM is
loaded we make ``import triton`` fail cleanly instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

_MAPS = Path("/proc/self/maps")


def system_llvm_loaded() -> bool:
    """Whether a shared ``libLLVM`` (as loaded by Mesa) is mapped into this process (Linux only)."""
    try:
        with _MAPS.open() as maps:
            return any("libLLVM" in line for line in maps)
    except OSError:
        return False


def guard_triton_import() -> bool:
    """Block ``import triton`` if Mesa's LLVM is loaded and triton is not imported yet.

    Returns
    -------
    bool
        Whether the import was blocked by this call.
    """
    if "triton" in sys.modules or not system_llvm_loaded():
        return False
    sys.modules["triton"] = None  # ``import triton`` now raises ImportError, which torch handles
    return True
