"""TensorFlow's start-up, without its C++ chatter.

TensorFlow writes CUDA probing and CPU-feature notices to file descriptor 2 while it is imported
and when it first looks for devices, before its logging can be configured, so
``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. The CLI imports TensorFlow through
:func:`import_tensorflow`, which sends descriptor 2 to a temporary file meanwhile and puts it
back right after; what was written is replayed when the import fails or ``LABKIT_VERBOSE=1``
(not when it is interrupted: Ctrl-C in the first seconds ends quietly). On another Keras backend
TensorFlow is imported quietly too when it is installed, since ``keras.utils.set_random_seed``
imports it on every backend.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile


def import_tensorflow():
    """Import TensorFlow and initialise its devices quietly; returns the module. On another
    Keras backend (``KERAS_BACKEND=jax``) None is returned, TensorFlow imported (quietly) only
    if it is installed: training on in-memory data needs none there."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    from labkit.interrupts import kept_interrupts

    with kept_interrupts():  # a Ctrl-C can land in a gc callback of JAX's import and be lost
        return _import_quietly()


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
