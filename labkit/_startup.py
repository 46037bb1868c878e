"""TensorFlow's start-up, without its C++ chatter.

TensorFlow writes CUDA probing and CPU-feature notices to file descriptor 2 while it is imported
and when it first looks for devices, before its logging can be configured, so
``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. The CLI imports TensorFlow through
:func:`import_tensorflow`, which sends descriptor 2 to a temporary file meanwhile and puts it
back right after; what was written is replayed when the import fails or ``LABKIT_VERBOSE=1``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


def import_tensorflow():
    """Import TensorFlow and initialise its devices quietly; returns the module. On another
    Keras backend (``KERAS_BACKEND=jax``) only Keras is imported, and None returned: training
    on in-memory data needs no TensorFlow there."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    verbose = os.environ.get("LABKIT_VERBOSE", "") not in ("", "0")
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            import keras

            if keras.backend.backend() != "tensorflow":
                failed = False
                return None
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device probe writes its notices now
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed or verbose:
                captured.seek(0)
                with contextlib.suppress(OSError):
                    os.write(2, captured.read())
    return tf
