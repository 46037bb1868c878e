"""TensorFlow's start-up, without its C++ chatter.

TensorFlow writes CUDA probing and CPU-feature notices to file descriptor 2 while it is imported
and when it first looks for devices, before its logging can be configured, so
``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. The CLI imports TensorFlow through
:func:`import_tensorflow`, which sends descriptor 2 to a temporary file meanwhile and puts it
back right after; what was written is replayed when the import fails or ``LABKIT_VERBOSE=1``
(a Ctrl-C meanwhile is held until the import is done, then ends quietly: an import interrupted
half-way could lose it or abort the process). On another Keras backend
TensorFlow is imported quietly too when it is installed, since ``keras.utils.set_random_seed``
imports it on every backend.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import tempfile


def import_tensorflow():
    """Import TensorFlow and initialise its devices quietly; returns the module. On another
    Keras backend (``KERAS_BACKEND=jax``) None is returned, TensorFlow imported (quietly) only
    if it is installed: training on in-memory data needs none there."""
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
    else:
        from labkit.interrupts import deferred_interrupts

        with deferred_interrupts():  # a Ctrl-C meanwhile stops once the import is done
            tf = _import_quietly()
    quiet_python_logging()
    return tf


class _Expected(logging.Filter):
    """Drops what TensorFlow's Python logger says that is not news to a labkit user: INFO
    records (TensorFlow turns them on in interactive sessions, so a notebook showed "Assets
    written to …" on every export) and the "triggered tf.function retracing" warning about the
    functions Keras's trainer makes for each model, or the playground's per-model steps: labkit
    builds a new model per run, evaluation or export, and each traces once, as it must. Other
    warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and
                    ("TensorFlowTrainer.make_" in message or "<function _compiled_" in message))


def quiet_python_logging() -> None:
    """Install :class:`_Expected` on TensorFlow's Python logger, once (its C++ start-up lines
    are :func:`import_tensorflow`'s)."""
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _Expected) for f in logger.filters):
        logger.addFilter(_Expected())


def _import_quietly():
    verbose = os.environ.get("LABKIT_VERBOSE", "") not in ("", "0")
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            import keras

            if keras.backend.backend() != "tensorflow":
                # keras.utils.set_random_seed imports TensorFlow on every backend when it is
                # installed (to seed it too): let that happen here, quietly
                if importlib.util.find_spec("tensorflow") is not None:
                    import tensorflow  # noqa: F401
                failed = False
                return None
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device probe writes its notices now
            failed = False
        except KeyboardInterrupt:
            failed = False  # stopped, not broken: nothing to show
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed or verbose:
                captured.seek(0)
                with contextlib.suppress(OSError):
                    os.write(2, captured.read())
    return tf
