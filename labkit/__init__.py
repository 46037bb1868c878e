"""labkit: the labs of a neural-network course in Keras 3 / TensorFlow.

Importing labkit is cheap: TensorFlow loads only when a model is built or trained.
"""

import os

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter (CUDA probing, CPU features) is noise for students.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from labkit.registry import build, get_recipe, list_recipes  # noqa: E402

__all__ = ["__version__", "build", "get_recipe", "list_recipes"]
