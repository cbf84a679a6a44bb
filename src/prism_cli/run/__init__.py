"""``prism run`` and ``prism demo``: one job on a local stack of their own, its outputs and
its log downloaded into a folder.

Built on :mod:`prism_cli.jobs` (the job flow) and :mod:`prism_cli.local` (the stack).
:mod:`.cli` imports neither moto nor cfn-lint; the rest does when a run starts.
"""
