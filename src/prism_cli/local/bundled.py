"""The copy of the stack that an installed ``prism`` carries: ``template.yaml`` and the handlers.

A wheel (``pip install``, ``pipx install``) has no checkout next to it, so the build
(``setup.py``) copies the checkout's ``template.yaml`` and ``functions/`` into the package,
unchanged and with the same relative layout, so that each function's ``CodeUri`` still points
at its handler's folder::

    prism_cli/_stack/template.yaml
    prism_cli/_stack/functions/fanout/fanout_handler.py
    prism_cli/_stack/functions/worker/worker_handler.py

An editable install and a plain checkout have no such copy; they use the checkout.
"""

from __future__ import annotations

from pathlib import Path

# prism_cli/local/bundled.py -> prism_cli/_stack (keep in step with STACK_FOLDER in setup.py).
BUNDLED_STACK = Path(__file__).resolve().parent.parent / "_stack"


def bundled_template() -> Path | None:
    """The installed copy of ``template.yaml``, or None when this is not an installed build."""
    candidate = BUNDLED_STACK / "template.yaml"
    if candidate.is_file() and (BUNDLED_STACK / "functions").is_dir():
        return candidate
    return None
