"""The parsers of ``prism run`` and ``prism demo``, and the commands (which import the
local stack, moto and cfn-lint, only when they run: seconds)."""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from prism_cli.arguments import Parser, Subparsers, examples, positive_int
from prism_cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK

if TYPE_CHECKING:
    from prism_cli.run.runner import RunOptions

DEFAULT_DEMO_OUT = Path("demo-output")


EXAMPLES = {
    "run": """prism run ~/Pictures/holiday --out thumbnails/
prism run photos/ scans/ --out out/ --config my-pipeline.yaml --workers 4
prism run photos/ --out out/ -q          # no live display, just the summary
prism run photos/ --out out/ --events    # and print each "Source Processed" event""",
    "demo": """prism demo                               # generated images into demo-output/
prism demo --out /tmp/prism-demo""",
}


def add_commands(commands: Subparsers) -> None:
    common = Parser(add_help=False)
    common.add_argument(
        "--workers",
        type=positive_int,
        default=4,
        metavar="N",
        help="concurrent worker instances (default: 4)",
    )
    common.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="the SAM template (default: the checkout's, found from here upwards, else "
        "the one this installed package carries)",
    )
    common.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress display: print only the summary at the end",
    )

    def command(
        name: str, summary: str, description: str, *, dirs: bool = False, **out: Any
    ) -> argparse.ArgumentParser:
        """The parser of ``name``, with the options both commands share, its input folders
        if it takes some (``dirs``), and ``--out`` as ``out`` says."""
        parser = commands.add_parser(
            name,
            parents=[common],
            help=summary,
            description=description,
            epilog=examples(EXAMPLES[name]),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if dirs:
            parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="input folder")
        parser.add_argument("--out", "-o", type=Path, **out)
        parser.set_defaults(handler=_local_run)
        return parser

    run = command(
        "run",
        "process image folders into an output folder",
        "Upload every image below DIR... to a local stack of its own, let the pipeline render "
        "its variants, and download them into OUT mirroring the inputs, with "
        "OUT/processing_log.json. The stack lives as long as the command.",
        dirs=True,
        required=True,
        metavar="OUT",
        help="output folder",
    )
    run.add_argument(
        "--events",
        action="store_true",
        help='print the events the stack published ("Source Processed", "Job Completed"), '
        "one per line, before the summary (they are always saved in OUT/events.jsonl)",
    )
    run.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="FILE",
        help="pipeline config (YAML or JSON; default: the built-in pipeline)",
    )
    command(
        "demo",
        "run the pipeline on a generated sample set",
        "Generate a few sample images (and a broken one, and a text file) and process them "
        "like `prism run`, with the built-in pipeline plus a watermark.",
        default=DEFAULT_DEMO_OUT,
        metavar="DIR",
        help=f"output folder (default: ./{DEFAULT_DEMO_OUT})",
    )


def _local_run(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.report import REPORT_NAME
    from prism_cli.run.runner import RunOptions, run  # moto, cfn-lint
    from prism_cli.run.summary import print_summary

    started = time.monotonic()
    options = RunOptions(
        inputs=getattr(args, "dirs", []),
        out=args.out,
        config_path=getattr(args, "config", None),
        workers=args.workers,
        template=args.template,
    )
    demo = args.command == "demo"
    # --quiet: the run prints nothing (a question on Ctrl+C still goes to the terminal).
    shown = Console(file=console.file, quiet=True) if getattr(args, "quiet", False) else console
    result = run(_demo(options, shown) if demo else options, shown)
    # The sample set includes a broken file on purpose: failures are part of the demo.
    if demo and result.exit_code != EXIT_INTERRUPTED:
        result = dataclasses.replace(result, exit_code=EXIT_OK)
    if getattr(args, "events", False):
        from prism_cli.run.ready_events import event_line

        for event in result.events:
            console.print(event_line(event), highlight=False, markup=False, soft_wrap=True)
    print_summary(console, result, started)
    report = result.log_path.parent / REPORT_NAME
    console.print(f"Report: {report}", highlight=False, markup=False, soft_wrap=True)
    return result.exit_code


def _demo(options: RunOptions, console: Console) -> RunOptions:
    """The run of ``prism demo``: generated samples, the demo pipeline."""
    from prism_cli.run.samples import write_samples

    # The samples are kept next to OUT (not in it: inputs may not live inside --out) so that
    # the log's paths still open after the run; they are made afresh each time.
    samples = Path(options.out).parent / ".prism-demo-inputs" / "samples"
    shutil.rmtree(samples, ignore_errors=True)
    written = write_samples(samples)
    console.print(f"Generated {len(written)} sample files in {samples}", highlight=False)
    config = resources.files("prism_cli.run").joinpath("demo_pipeline.yaml")
    return dataclasses.replace(
        options,
        inputs=[samples],
        config_text=config.read_text("utf-8"),
        config_label="demo pipeline (built-in default + watermark on 'large')",
    )
