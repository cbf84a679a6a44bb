"""Prism CLI: run the pipeline locally against an embedded moto server (``prism run``/``demo``)."""
