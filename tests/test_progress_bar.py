"""napari's progress bar for background requests, made late and changed at most once per interval (Xvfb)."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_deepseg._qt._progress_bar import ThrottledProgress  # noqa: E402


class Bar:
    """Records what napari's progress bar would be told."""

    def __init__(self, total=0, desc=""):
        self.total, self.n, self.desc, self.calls, self.closed = total, 0, desc, [("made", total, desc)], False

    def update(self, n=1):
        self.n += n
        self.calls.append(("update", self.n))

    def set_description(self, desc):
        self.desc = desc
        self.calls.append(("desc", desc))

    def close(self):
        self.closed = True


def throttled(interval):
    made = []

    def factory(**kwargs):
        made.append(Bar(**kwargs))
        return made[-1]

    return ThrottledProgress("napari-deepseg: photo", interval=interval, bar_factory=factory), made


def test_bar_is_made_after_the_interval_with_the_newest_report(qtbot):
    bar, made = throttled(0.2)
    bar.report(0, 3, "features")
    bar.report(1, 3, "palette")
    assert made == []  # a quick request never shows a bar
    qtbot.waitUntil(lambda: bool(made), timeout=2000)
    (shown,) = made
    assert shown.calls == [("made", 3, "palette"), ("update", 1)]


def test_reports_within_an_interval_change_the_bar_once(qtbot):
    bar, made = throttled(0.2)
    bar.report(1, 4, "level 1 of 4")
    qtbot.waitUntil(lambda: bool(made), timeout=2000)
    for k in (2, 3):
        bar.report(k, 4, f"level {k} of 4")
    assert len(made[0].calls) == 2  # held back
    qtbot.waitUntil(lambda: made[0].n == 3, timeout=2000)
    assert made[0].calls[2:] == [("update", 3), ("desc", "level 3 of 4")]  # level 2 skipped


def test_no_interval_shows_every_report_and_close_stops_it(qtbot):
    bar, made = throttled(0.0)
    bar.report(1, 2, "graph cut")
    bar.report(2, 2, "graph cut")
    assert made[0].calls == [("made", 2, "graph cut"), ("update", 1), ("update", 2)]
    bar.close()
    bar.report(2, 2, "after close")
    assert made[0].closed and made[0].desc == "graph cut"


def test_closed_before_the_interval_makes_no_bar(qtbot):
    bar, made = throttled(0.1)
    bar.report(1, 2, "graph cut")
    bar.close()
    qtbot.wait(300)
    assert made == []


def test_defer_holds_the_bar_for_one_interval(qtbot):
    bar, made = throttled(0.2)
    bar.report(1, 4, "level 1 of 4")
    qtbot.waitUntil(lambda: bool(made), timeout=2000)
    qtbot.wait(250)  # the interval has passed: a report would change the bar at once
    bar.defer()  # ... but the GUI thread just added a layer
    bar.report(2, 4, "level 2 of 4")
    assert made[0].n == 1
    qtbot.waitUntil(lambda: made[0].n == 2, timeout=2000)


def test_a_report_or_close_inside_the_bars_own_event_loop_is_safe(qtbot):
    """napari's bar runs processEvents() inside update(): the request may report again or end there."""
    inner = []

    class Reentrant(Bar):
        def update(self, n=1):
            super().update(n)
            if not inner:
                inner.append(1)
                bar.report(3, 4, "level 3 of 4")  # arrives while the bar is being changed
                bar.close()  # ... and so does the request's end

    made = []
    bar = ThrottledProgress("photo", interval=0.0, bar_factory=lambda **kw: made.append(Reentrant(**kw)) or made[-1])
    bar.report(1, 4, "level 1 of 4")
    bar.report(2, 4, "level 2 of 4")
    assert made[0].closed and bar.bar is None
    assert made[0].desc == "level 1 of 4"  # nothing shown after the close
