"""``labkit playground``: the TensorFlow Playground as a local web page with Keras behind it.

:mod:`~labkit.playground.session` holds one page's settings, data, model and training;
:mod:`~labkit.playground.server` serves the page and its JSON API on 127.0.0.1 and trains in a
background thread.
"""
