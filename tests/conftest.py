"""Shared fixtures of the core test-suite."""

from __future__ import annotations

import pytest

# torchvision pulls in triton, whose bundled LLVM crashes the process if it is
# loaded after napari's OpenGL canvas has loaded Mesa's LLVM (llvmpipe under
# Xvfb); importing it here, before any viewer exists, keeps the order safe.
import torchvision.models  # noqa: F401,E402


@pytest.fixture(autouse=True, scope="session")
def _single_threaded_blas():
    """Run BLAS single-threaded during the tests.

    On small (2-core) machines multi-threaded OpenBLAS makes the many tiny
    linear-algebra calls of scikit-learn's GaussianMixture 10-30x slower (worse
    once torch's OpenMP pool is alive), which would turn a 0.2 s cut into 5 s.
    This only changes speed, never results; set NAPARI_DEEPSEG_TEST_BLAS_THREADS
    to another number to test with more threads.
    """
    import os

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    n = int(os.environ.get("NAPARI_DEEPSEG_TEST_BLAS_THREADS", "1"))
    with threadpool_limits(limits=n, user_api="blas"):
        yield


@pytest.fixture
def no_network(monkeypatch):
    """Make any weights download fail loudly; returns the list of attempted URLs."""
    import torch.hub

    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    # the host counts as reachable, so the download itself is what is refused (a machine without
    # network would otherwise fail at the probe, before the download)
    from napari_deepseg.core.io import weights

    monkeypatch.setattr(weights, "unreachable_cause", lambda url, timeout=None: None)
    return calls
