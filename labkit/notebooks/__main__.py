"""``python -m labkit.notebooks`` (``make notebooks``): rebuild every ``.ipynb`` from its
percent script."""

from labkit.notebooks import build_all

for path in build_all():
    print(f"built {path}")
