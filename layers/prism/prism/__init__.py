"""Prism: the shared core of the image pipeline, shipped to Lambda as a layer."""

__version__ = "0.1.0"
