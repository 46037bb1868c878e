"""The lecture's topics, numbered as the course outline numbers them; recipes and labs name theirs
by number, so there is one numbering everywhere (``labkit recipes``, ``labkit lab list``, docs)."""

from __future__ import annotations

from collections.abc import Iterable

# The labs (the lecture's claims as experiments) start from this seed by default: the numbers
# docs/labs.md quotes were measured with it. `labkit train` defaults to TrainConfig.seed.
LAB_SEED = 0

TOPICS = {
    0: "Intro",
    1: "Gradient descent",
    2: "SGD",
    3: "Learning-rate schedule",
    4: "Vanishing/exploding gradients",
    5: "SGD algorithm",
    6: "Momentum",
    7: "Start values",
    8: "Adaptive learning rate",
    9: "Norm penalties",
    10: "Dropout",
    11: "More regularisation",
    12: "Special models",
    13: "CNNs",
    14: "Convolution",
    15: "Why convolution",
    16: "Image classification",
    17: "What is an image",
    18: "2-D convolution of an image",
    19: "Convolutional layer",
    20: "Pooling",
    21: "Padding and stride",
    22: "CNN architecture",
}


def topics(numbers: int | Iterable[int]) -> tuple[int, ...]:
    """``numbers`` as a checked tuple; an unknown topic number is a ValueError."""
    numbers = (numbers,) if isinstance(numbers, int) else tuple(numbers)
    unknown = [n for n in numbers if n not in TOPICS]
    if not numbers or unknown:
        raise ValueError(f"Lecture topics are numbered 0..{max(TOPICS)} as in the outline. "
                         f"Received: {numbers!r}")
    return numbers


def describe(numbers: tuple[int, ...], detail: str = "") -> str:
    """``"19 Convolutional layer / 20 Pooling"``, with ``" (detail)"`` when given."""
    text = " / ".join(f"{n} {TOPICS[n]}" for n in numbers)
    return f"{text} ({detail})" if detail else text
