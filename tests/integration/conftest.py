"""The integration suite's fixtures: ``moto_server``, ``local_stack`` and ``template_path``
of :mod:`support.stack` (one moto server per session, a fresh stack per test)."""

from support.stack import local_stack, moto_server, template_path

__all__ = ["local_stack", "moto_server", "template_path"]
