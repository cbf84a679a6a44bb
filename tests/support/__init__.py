"""Helpers shared by the test suites.

The tests directory is on ``sys.path`` (pytest's rootdir-relative imports), so this package
is ``support``. Its modules that start moto or the local stack (``stack``, ``pipeline``) are
for the integration and fault suites only; the unit suite never imports them.
"""
