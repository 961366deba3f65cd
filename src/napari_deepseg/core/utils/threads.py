"""Thread limits for the small numerical fits of the core."""

from __future__ import annotations

_CONTROLLER = None


def single_threaded_blas():
    """Context limiting BLAS to one thread: small fits on 2 cores run 10-30x faster so.

    The threadpool controller inspects the loaded libraries once and is reused.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
