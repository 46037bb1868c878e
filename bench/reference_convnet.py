"""The plain-Keras reference of bench_mnist.py: the keras-io "simple MNIST convnet" example as a
student types it (float32 arrays divided by 255, one-hot labels, ``fit(validation_split=0.1)``),
reading the benchmark's .npz, with one callback that records each epoch's wall time.

    python bench/reference_convnet.py DATA.npz EPOCHS TIMES.json
"""

import json
import sys
import time

import keras
import numpy as np
from keras import layers


class EpochTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def main(path: str, epochs: int, out: str) -> None:
    with np.load(path) as data:
        x_train, y_train = data["x_train"], data["y_train"]
        x_test, y_test = data["x_test"], data["y_test"]
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    y_train = keras.utils.to_categorical(y_train, 10)
    y_test = keras.utils.to_categorical(y_test, 10)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    times = EpochTimes()
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_split=0.1,
              callbacks=[times], verbose=2)
    model.evaluate(x_test, y_test, verbose=0)
    with open(out, "w") as f:
        json.dump({"seconds": times.seconds, "train_examples": int(len(x_train) * 0.9)}, f)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
