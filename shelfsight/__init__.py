"""shelfsight: point a camera at a shelf, ask aloud, hear where the item is."""

__version__ = "0.1.0"
