"""labkit's version, in a module of its own: what records versions (training's config.json, an
export's labkit.json) imports it without loading the package's front door."""

__version__ = "0.1.0"
