"""Stopping a run on request: a :class:`threading.Event` passed down to the training loop, and
:func:`stop_on_signals`, which lets Ctrl-C and ``kill`` (SIGTERM) set it while a command runs.

The event is the one channel: training checks it at every epoch's start and end and stops with
the finished epochs saved (:class:`labkit.training.Interrupted`). Another thread may set it::

    stop = threading.Event()
    threading.Timer(60, stop.set).start()   # stop after a minute
    labkit.train("cnn", dataset="digits", epochs=50, stop=stop)

The signal handlers also raise ``KeyboardInterrupt`` at once (:class:`Terminated`, a kind of
it, for SIGTERM), so a long epoch does not have to
finish first; the event covers the moments when Keras swallows that exception (a bare
``except:`` inside ``model.save``). They are installed only for the ``with`` block and the
previous ones restored after, so a notebook or a test runner keeps its own Ctrl-C behaviour.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``), raised where Ctrl-C raises ``KeyboardInterrupt``, so everything that
    stops cleanly on one stops on the other; the exit code tells them apart."""

    signum = signal.SIGTERM


def interruption(signum: int) -> KeyboardInterrupt:
    """The exception a handler raises for ``signum``."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def exit_code(err: BaseException) -> int:
    """The shell's code for a process stopped by ``err``'s signal: 130 (SIGINT), 143 (SIGTERM)."""
    return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def _handled(handler, signals=SIGNALS) -> Iterator[None]:
    """``handler`` for ``signals`` while inside (a signal ignored on entry, as under ``nohup``,
    stays ignored), the previous handlers restored after. Main thread only."""
    previous = {}
    for signum in signals:
        current = signal.getsignal(signum)
        if current is not signal.SIG_IGN:
            previous[signum] = current
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, current in previous.items():
            # None: a handler not installed from Python; the default is the nearest we can restore
            signal.signal(signum, current if current is not None else signal.SIG_DFL)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside, in the main thread: SIGTERM raises :class:`Terminated` wherever the
    program is (importing TensorFlow, say) instead of ending it without a word; the previous
    handler is restored after. A command line wraps every command in it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    with _handled(handler, (signal.SIGTERM,)):
        yield


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event | None = None) -> Iterator[threading.Event]:
    """While inside: SIGINT and SIGTERM set ``stop`` (a fresh event when None) and raise
    ``KeyboardInterrupt``; yields the event. A signal ignored on entry (``nohup``) stays
    ignored. Outside the main thread, where Python cannot install handlers, nothing is
    installed and the event still works."""
    stop = stop if stop is not None else threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        stop.set()
        raise interruption(signum)

    with _handled(handler):
        yield stop


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """While inside, in the main thread: a first Ctrl-C or SIGTERM is held and raised on the way
    out; a second one raises at once (someone who means it). For code that is not safe to
    interrupt: an exception raised inside TensorFlow's or JAX's import was swallowed there (a
    Ctrl-C 2.5 s into ``labkit train`` was lost and the run went on), and once, in CI, a Ctrl-C
    3 s into it ended the process with SIGABRT instead of exit 130. The previous handlers are
    restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        if len(received) > 1:
            raise interruption(signum)

    with _handled(handler):
        yield
    if received:
        raise interruption(received[0])
