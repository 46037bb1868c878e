"""A numpy transcription of the TensorFlow Playground's update rule (its src/nn.ts and the
oneStep loop of src/playground.ts), example by example, to check labkit's exact mode against.

Deliberately written as the TypeScript is — per example forward and back, derivatives
accumulated per node and link, an update after every ``batch_size`` examples with the
accumulators carried across epochs — and not as labkit computes it (batched, compiled).
"""

from __future__ import annotations

import numpy as np

FEATURES = {"x1": lambda p: p[0], "x2": lambda p: p[1], "x1^2": lambda p: p[0] ** 2,
            "x2^2": lambda p: p[1] ** 2, "x1*x2": lambda p: p[0] * p[1],
            "sin(x1)": lambda p: np.sin(p[0]), "sin(x2)": lambda p: np.sin(p[1])}
ACTIVATIONS = {
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(0, z), lambda z: (z > 0).astype(float)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
}


class Network:
    """Weights ``w[l]`` (inputs × nodes) and biases ``b[l]`` of each layer after the input."""

    def __init__(self, weights, biases, activation="tanh", output="tanh",
                 regularization=None, rate=0.0):
        self.w = [np.array(w, dtype=float) for w in weights]
        self.b = [np.array(b, dtype=float) for b in biases]
        self.dead = [np.zeros_like(w, dtype=bool) for w in self.w]
        self.acts = [ACTIVATIONS[activation]] * (len(self.w) - 1) + [ACTIVATIONS[output]]
        self.regularization, self.rate = regularization, rate
        self.acc_w = [np.zeros_like(w) for w in self.w]
        self.acc_b = [np.zeros_like(b) for b in self.b]
        self.count = 0  # numAccumulatedDers (the same for every live node and link)

    def forward(self, inputs):
        outputs, totals = [np.asarray(inputs, dtype=float)], []
        for w, b, (act, _) in zip(self.w, self.b, self.acts, strict=True):
            totals.append(outputs[-1] @ w + b)
            outputs.append(act(totals[-1]))
        return outputs, totals

    def backprop(self, inputs, target):
        outputs, totals = self.forward(inputs)
        output_der = outputs[-1] - target  # Errors.SQUARE.der
        for layer in range(len(self.w) - 1, -1, -1):
            input_der = output_der * self.acts[layer][1](totals[layer])
            self.acc_b[layer] += input_der
            self.acc_w[layer] += np.where(self.dead[layer], 0,
                                          np.outer(outputs[layer], input_der))
            output_der = self.w[layer] @ input_der
        self.count += 1

    def update(self, learning_rate):
        for layer, w in enumerate(self.w):
            self.b[layer] -= learning_rate * self.acc_b[layer] / self.count
            reg_der = {None: np.zeros_like(w), "l1": np.sign(w), "l2": w}[self.regularization]
            stepped = w - learning_rate / self.count * self.acc_w[layer]
            new = stepped - learning_rate * self.rate * reg_der
            crossed = (self.regularization == "l1") & (stepped * new < 0)
            live = ~self.dead[layer]
            w[live] = np.where(crossed, 0.0, new)[live]
            self.dead[layer] |= crossed & live
            self.acc_w[layer][:] = 0
            self.acc_b[layer][:] = 0
        self.count = 0

    def one_step(self, points, targets, features, batch_size, learning_rate):
        """The Playground's oneStep: one pass over the training points in order."""
        for i, (point, target) in enumerate(zip(points, targets, strict=True)):
            self.backprop([FEATURES[f](point) for f in features], target)
            if (i + 1) % batch_size == 0:
                self.update(learning_rate)

    def loss(self, points, targets, features):
        """The Playground's getLoss: mean ½(output − target)²."""
        errors = [0.5 * (self.forward([FEATURES[f](p) for f in features])[0][-1][0] - t) ** 2
                  for p, t in zip(points, targets, strict=True)]
        return float(np.mean(errors))
