"""Progress on every long wait: one facility, tqdm, for labs, sweeps, filter patterns, exports
and predict, and the heartbeat of a long training epoch.

On a terminal a bar redraws in place (tqdm's own). Anywhere else — a log file, CI, a notebook's
saved output — carriage returns would pile up, so the same bar is written as whole lines, at most
one per :data:`INTERVAL` seconds, and a ticker thread writes one when nothing moved for that long
(a lab's fit that takes a minute still shows it is alive). Code deep inside a wait (a lab's
``fit``) reports to the innermost open bar through :func:`current`, without a bar being passed
down.

    with progress.bar("dropout", unit="fit") as bar:
        ...
        bar.update(1)
        bar.set_postfix_str("epoch 7/15")
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Iterator

INTERVAL = 10.0  # seconds between progress lines outside a terminal
DELAY = 2.0  # a wait shorter than this shows no bar at all

_open: contextvars.ContextVar[tuple] = contextvars.ContextVar("labkit_progress", default=())


class _Lines:
    """A file for tqdm that turns its in-place redraws into whole lines."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


class _Quiet:
    """The bar when nobody is watching (``enabled=False``), and :func:`current`'s when none is
    open: every call does nothing."""

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass

    def set_description_str(self, text: str = "", refresh: bool = True) -> None:
        pass


def interactive(stream=None) -> bool:
    """Whether ``stream`` (stderr) is a terminal, where a bar may redraw in place."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


@contextlib.contextmanager
def bar(desc: str, total: float | None = None, unit: str = "it", *, stream=None,
        enabled: bool = True, interval: float = INTERVAL, delay: float = DELAY) -> Iterator:
    """A progress bar for ``desc``, open while inside; ``total`` None: a count and elapsed
    time. Nothing is shown for the first ``delay`` seconds (a short wait needs no bar); then on
    a terminal it redraws, elsewhere it writes a line at most every ``interval`` seconds, also
    when nothing moved, and a last one when it closes."""
    if not enabled:
        yield _Quiet()
        return
    from tqdm import tqdm

    stream = stream or sys.stderr
    live = interactive(stream)
    shown = tqdm(total=total, desc=desc, unit=unit, file=stream if live else _Lines(stream),
                 mininterval=0.2 if live else interval, dynamic_ncols=live, leave=True,
                 delay=delay,
                 ascii=not live, bar_format=None if live or total else
                 "{desc}: {n_fmt} {unit} [{elapsed}{postfix}]")
    stop = threading.Event()

    def tick():  # a line when nothing moved for an interval (or a redraw of the clock)
        while not stop.wait(0.5 if live else min(interval, max(delay, 0.1))):
            now = time.time()
            if now - shown.start_t >= delay and \
                    now - shown.last_print_t >= (1.0 if live else interval):
                shown.refresh()

    ticker = threading.Thread(target=tick, name="labkit-progress", daemon=True)
    token = _open.set((*_open.get(), shown))
    ticker.start()
    try:
        yield shown
    finally:
        stop.set()
        ticker.join()
        _open.reset(token)
        shown.close()


def current():
    """The innermost open bar of this context (a lab's, a sweep's), or one that does
    nothing."""
    opened = _open.get()
    return opened[-1] if opened else _Quiet()
