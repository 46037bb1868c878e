"""labkit.interrupts: Ctrl-C and SIGTERM set the run's stop event only while labkit runs, and the
caller's own handlers are back afterwards (a notebook, a test runner)."""

import os
import signal
import threading

import pytest

import labkit
from labkit import training
from labkit.interrupts import Terminated, deferred_interrupts, stop_on_signals


def test_signals_set_the_event_inside_and_the_previous_handlers_return_after():
    seen = []

    def mine(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with pytest.raises(KeyboardInterrupt), stop_on_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.5)  # let the handler run, if the kill has not yet
        assert stop.is_set()
        assert signal.getsignal(signal.SIGTERM) is mine
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]  # the caller's handler, not labkit's
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_deferred_interrupt_is_raised_once_the_block_is_done_and_a_second_at_once():
    """TensorFlow's import runs inside: a Ctrl-C meanwhile must neither land inside it nor be
    lost."""
    previous = signal.getsignal(signal.SIGTERM)
    done = []
    with pytest.raises(Terminated):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.5)  # let the handler run, if the kill has not yet
            done.append("the rest of the block")
    assert done == ["the rest of the block"]
    assert signal.getsignal(signal.SIGTERM) is previous
    with pytest.raises(Terminated):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.5)
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0.5)
            done.append("not reached")
    assert done == ["the rest of the block"]
    with deferred_interrupts():  # nothing received: nothing raised
        pass


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # as under nohup
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_is_installed_and_the_event_still_works():
    found = {}

    def work():
        with stop_on_signals() as stop:
            found["handler"] = signal.getsignal(signal.SIGINT)
            stop.set()
            found["set"] = stop.is_set()

    before = signal.getsignal(signal.SIGINT)
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert found == {"handler": before, "set": True}


def test_the_python_front_door_stops_on_a_set_event_and_restores_ctrl_c(tmp_path):
    stop = threading.Event()
    stop.set()  # set before the first epoch: nothing trains, the run is resumable
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(training.Interrupted) as stopped:
        labkit.train("mlp", dataset="digits", units=[4], epochs=3, runs_dir=str(tmp_path),
                     name="stopped", echo=lambda _: None, stop=stop)
    assert signal.getsignal(signal.SIGINT) is before
    run = stopped.value.run
    assert run.metrics["status"] == "interrupted" and run.metrics["epochs_completed"] == 0
    resumed = training.resume(run.path, echo=lambda _: None)
    assert resumed.metrics["status"] == "completed" and resumed.metrics["epochs_completed"] == 3
