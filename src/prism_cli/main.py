"""The ``prism`` command: ``prism run`` and ``prism demo``.

Exit status: 0 all processed, 1 some files failed, 2 usage or input error (one line on
stderr, no traceback), 130 interrupted with Ctrl+C (the partial log is written).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NoReturn

from rich.console import Console

from prism import __version__
from prism_cli.errors import UserError
from prism_cli.runner import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    RunOptions,
    RunResult,
    print_summary,
    run,
)
from prism_cli.samples import write_samples
from prism_cli.template import TemplateError

DEFAULT_DEMO_OUT = Path("demo-output")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other user error (argparse would add the usage first).
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="prism",
        description="Run the Prism image pipeline locally: the real Lambda handlers against "
        "an embedded moto stack built from template.yaml.",
    )
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = _Parser(add_help=False)
    common.add_argument(
        "--workers",
        type=_positive_int,
        default=4,
        metavar="N",
        help="concurrent worker instances (default: 4)",
    )
    common.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="the SAM template (default: the one of this Prism checkout)",
    )

    run_parser = commands.add_parser(
        "run",
        parents=[common],
        help="process image folders into an output folder",
        description="Upload every image below DIR... to a local stack, let the pipeline render "
        "its variants, and download them into OUT mirroring the inputs, with "
        "OUT/processing_log.json.",
    )
    run_parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="input folder")
    run_parser.add_argument(
        "--out", "-o", type=Path, required=True, metavar="OUT", help="output folder"
    )
    run_parser.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="FILE",
        help="pipeline config (YAML or JSON; default: the built-in pipeline)",
    )

    demo_parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run the pipeline on a generated sample set",
        description="Generate a few sample images (and a broken one, and a text file) and "
        "process them like `prism run`, with the built-in pipeline plus a watermark.",
    )
    demo_parser.add_argument(
        "--out",
        "-o",
        type=Path,
        default=DEFAULT_DEMO_OUT,
        metavar="DIR",
        help=f"output folder (default: ./{DEFAULT_DEMO_OUT})",
    )
    return parser


def _run_command(args: argparse.Namespace, console: Console) -> RunResult:
    options = RunOptions(
        inputs=args.dirs,
        out=args.out,
        config_path=args.config,
        workers=args.workers,
        template=args.template,
    )
    return run(options, console)


def _demo_command(args: argparse.Namespace, console: Console) -> RunResult:
    config = resources.files("prism_cli").joinpath("demo_pipeline.yaml").read_text("utf-8")
    # The samples are kept next to OUT (not in it: inputs may not live inside --out) so that
    # the log's paths still open after the run; they are made afresh each time.
    samples = Path(args.out).parent / ".prism-demo-inputs" / "samples"
    shutil.rmtree(samples, ignore_errors=True)
    written = write_samples(samples)
    console.print(f"Generated {len(written)} sample files in {samples}", highlight=False)
    options = RunOptions(
        inputs=[samples],
        out=args.out,
        config_text=config,
        config_label="demo pipeline (built-in default + watermark on 'large')",
        workers=args.workers,
        template=args.template,
    )
    result = run(options, console)
    # The sample set includes a broken file on purpose: failures are part of the demo.
    if result.exit_code != EXIT_INTERRUPTED:
        result = RunResult(log=result.log, log_path=result.log_path, exit_code=EXIT_OK)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(file=sys.stdout)
    started = time.monotonic()
    command = _run_command if args.command == "run" else _demo_command
    try:
        result = command(args, console)
    except (UserError, TemplateError) as exc:
        message = " ".join(str(exc).split())  # one line, whatever the cause
        print(f"prism: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("prism: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print_summary(console, result, started)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
