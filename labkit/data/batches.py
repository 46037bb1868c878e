"""Training batches from arrays as a ``keras.utils.PyDataset``: the in-memory pipeline on Keras
backends other than TensorFlow (see :func:`labkit.data.pipeline.training_batches`)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """In-memory training batches without ``tf.data``, for Keras's JAX and PyTorch backends:
    a new seeded order every epoch, each batch augmented with the same Keras layers as the
    ``tf.data`` path, class weights yielded as sample weights.

    ``shard=(process_id, processes, devices)``, data-parallel: every process draws the same
    order (the same seed) and yields its contiguous share of each global batch of
    ``batch_size``, so together they feed what one process would. A last, short batch is cut to
    a multiple of ``devices`` (at most ``devices - 1`` examples an epoch are left out)."""

    def __init__(self, x, y, batch_size: int, *, seed: int | None = None,
                 augment: dict[str, Any] | None = None,
                 class_weight: dict[int, float] | None = None, workers: int = 1,
                 shuffle: bool = True, shard: tuple[int, int, int] = (0, 1, 1)) -> None:
        # workers > 1: threads prepare the next batches while the device computes (in order)
        super().__init__(workers=workers)
        self.x, self.y, self.batch_size = x, np.asarray(y), batch_size
        self.shard = shard
        self.rng = np.random.default_rng(seed)
        self.shuffle = shuffle  # False: every epoch in the data's order
        self.order = self.rng.permutation(len(self.y)) if shuffle else np.arange(len(self.y))
        self.weights = None
        if class_weight:
            table = np.ones(max(class_weight) + 1, dtype="float32")
            for label, weight in class_weight.items():
                table[label] = weight
            self.weights = table
        self.stack = []
        if augment:
            from labkit import augment as augmentation

            self.stack = augmentation.layers(augment, seed)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, index: int):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        process_id, processes, devices = self.shard
        if devices > 1:
            share = (len(chosen) - len(chosen) % devices) // processes
            chosen = chosen[process_id * share:(process_id + 1) * share]
        x, y = self.x[chosen], self.y[chosen]
        for layer in self.stack:
            x = layer(x, training=True)
        if self.stack:
            x = keras.ops.convert_to_numpy(x)
        if self.weights is not None:
            return x, y, self.weights[y]
        return x, y

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self.rng.permutation(len(self.y))
