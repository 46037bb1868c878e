"""Ensembles: K members of any recipe from different start values, probabilities averaged."""

from __future__ import annotations

from labkit._lazy import lazy_import
from labkit.phases import Phase
from labkit.registry import build as build_recipe
from labkit.registry import recipe
from recipes._common import check_positive_ints

keras = lazy_import("keras")


def _member_phases(hparams: dict, epochs: int) -> list[Phase]:
    """Each member trains alone, ``epochs`` epochs, with its own shuffling seed."""
    return [Phase(f"member_{i}", epochs, prepare=lambda model, i=i: model.get_layer(f"member_{i}"),
                  seed=1000 + i)
            for i in range(1, hparams["k"] + 1)]


@recipe("ensemble", summary="K members of a recipe from different start values; mean probability",
        topic=11,
        detail="ensembles of several start values", phases=_member_phases)
def build(input_shape, num_classes, task="classification", *,
          member="cnn", k=3, member_hparams=None):
    """An ensemble: ``k`` copies of recipe ``member``, each built from its own random start
    values and trained separately; the prediction is the mean of their probabilities.

    Reference: lecture topic 11 (like a random forest: several start values, averaged).

    Args:
        input_shape, num_classes: as for the member recipe.
        member: the recipe of every member. Default ``"cnn"``.
        k: number of members. Default ``3``.
        member_hparams: hyperparameters for the members, e.g. ``{"filters": [16, 32]}``.

    Returns:
        An uncompiled ``keras.Model``: members ``member_1..member_k`` (nested models) and an
        ``Average`` layer named ``predictions``. ``labkit train`` trains the members one after
        the other (history's ``phase`` column); ``labkit evaluate`` reports each and the mean.

    R keras:
        members <- lapply(1:3, function(i) { set.seed(i); build_model() %>% fit(x, y) })
        p <- Reduce(`+`, lapply(members, predict, x_test)) / 3

    Example:
        >>> model = build((8, 8, 1), 10, member="cnn", k=5, member_hparams={"filters": [8, 16]})
    """
    check_positive_ints("k", [k])
    if member == "ensemble":
        raise ValueError("`member` cannot be 'ensemble'. Received: member='ensemble'")
    member_hparams = dict(member_hparams or {})
    inputs = keras.Input(shape=tuple(input_shape), name="inputs")
    outputs = []
    for i in range(1, k + 1):
        net = build_recipe(member, input_shape=input_shape, num_classes=num_classes, task=task,
                           **member_hparams)  # each draws fresh start values from the RNG
        outputs.append(keras.Model(net.input, net.output, name=f"member_{i}")(inputs))
    average = keras.layers.Average(name="predictions") if k > 1 else \
        keras.layers.Identity(name="predictions")
    return keras.Model(inputs, average(outputs) if k > 1 else average(outputs[0]), name="ensemble")
