"""osr-reconciler: declarative data connections for a reporting portal."""

__version__ = "0.1.0"
