"""The job commands (``submit``, ``status``, ``cancel``, ``log``, ``backfill``, ``redrive``,
``config``) and the job flow ``prism run`` reuses: feeding a job, following it, its log.

Never imports moto, cfn-lint, :mod:`prism_cli.local` or :mod:`prism_cli.run`.
"""
