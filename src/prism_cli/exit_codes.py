"""Exit statuses of the ``prism`` command (documented in docs/cli.md)."""

EXIT_OK = 0  # done; a job that ended ``complete``
EXIT_FAILURES = 1  # some files or variants failed (``complete_with_failures``)
EXIT_USAGE = 2  # a usage or input error: one line on stderr, no traceback
EXIT_CANCELLED = 3  # the job ended ``cancelled``
EXIT_INTERRUPTED = 130  # Ctrl+C: detached from a running job, or a run stopped early
