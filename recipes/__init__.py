"""The course's models as recipes: each module registers build functions with ``@recipe``.

    from recipes import cnn
    model = cnn.build(input_shape=(28, 28, 1), num_classes=10, filters=[32, 64, 64])

Every build function returns an uncompiled ``keras.Model`` and builds it with ``keras`` alone
(never TensorFlow, so any Keras backend runs it). The modules import labkit's registry, option
helpers and its custom layers (:mod:`labkit.layers`); labkit never imports them back: it finds
this package through the ``labkit.recipes`` entry point (pyproject.toml).
"""
