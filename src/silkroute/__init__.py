"""silkroute: an open marketplace platform with a smart logistics brain."""

__version__ = "0.1.0"
