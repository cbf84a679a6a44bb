"""The local stack: ``template.yaml`` resolved into moto, with the functions emulated.

Imports neither :mod:`prism_cli.jobs` nor :mod:`prism_cli.run`. Its modules import moto
and cfn-lint (seconds), so the job commands never import this package; :mod:`.cli` alone
does not, and imports the rest when ``prism stack up`` runs.
"""
