"""``report.html``: a run's processing log as a page a person reads (project issue 11).

:func:`write_report` writes it next to ``processing_log.json``: a job summary at the top,
then one card per source with its original's size, format and dimensions, a thumbnail of
each variant written (linked to the file), its dimensions, bytes and saving versus the
source, and every failure or skip with its reason in words.

The page stands alone: inline CSS, no script, no network; images and links are relative
to the output folder, so the folder can be moved or zipped with its report. Every string
from the log or the file system is escaped. The originals' facts are not in the log: they
are read from the input files (Pillow reads only the header) where those are on this
machine, and shown as unknown where not (an ``s3://`` source of a pulled job).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from PIL import Image

from prism_cli.jobs.processing_log import ProcessingLog, VariantEntry

REPORT_NAME = "report.html"

# An estimate of what AWS charges per variant rendered, in US dollars: docs/capacity.md's
# measured day of 1,000,000 uploads x 3 variants costs $39.31 (Lambda duration and
# requests, DynamoDB reads and writes, S3 and SQS requests; storage and transfer not
# included), so $39.31 / 3,000,000 = $13.10 per million variants. Of that, the worker's
# Lambda time is $1.54 per million variants; most of the bill is S3 PUTs and DynamoDB writes.
COST_PER_MILLION_VARIANTS_USD = 13.10

# The longest side of a thumbnail on the page, in CSS pixels.
THUMB_SIZE = 160

# Every reason code a log can hold (prism.errors.Reason and the CLI's own), in words.
REASON_WORDS: dict[str, str] = {
    "unsupported_format": "This file is not an image in a format Prism reads.",
    "empty_file": "The file is empty.",
    "truncated": "The image file is cut off: it ends before the picture does.",
    "corrupt": "The image file is damaged and cannot be decoded.",
    "corrupt_image": "The image file is damaged and cannot be decoded.",
    "decompression_bomb": "The image has too many pixels to open safely.",
    "too_large": "The image is larger than the pipeline accepts.",
    "too_many_frames": "The image has more frames than the pipeline accepts.",
    "source_missing": "The uploaded file was gone before it could be processed.",
    "superseded": "The file was replaced by a newer upload before this one was processed.",
    "cancelled": "The job was cancelled before this file was processed.",
    "encode_failed": "The variant could not be written in its output format.",
    "output_conflict": "Another file's variant already has this output name.",
    "output_key_too_long": "The output name would be longer than S3 allows (1,024 bytes).",
    "watermark_missing": "The watermark image is missing or is not a readable image.",
    "retries_exhausted": "Processing failed on every retry; the work was set aside.",
    "internal_error": "Prism hit an internal error while processing this file.",
    "download_failed": "The variant was rendered but could not be saved to the output folder.",
    "unreadable": "The file could not be read from disk.",
    "not_processed": "The file was uploaded but never processed.",
    "not_finished": "Processing had not finished when the run ended.",
    "interrupted": "The run was interrupted before this file was finished.",
    "failed": "Processing failed.",
    "skipped": "The file was skipped.",
}


def reason_words(code: str) -> str:
    """A reason code in plain English (an unknown code is shown as it is)."""
    return REASON_WORDS.get(code, f"Not processed ({code}).")


def describe(text: str) -> list[tuple[str, str]]:
    """A log's failure text (``reason``, ``reason: error``, several joined by ``; ``) as
    (sentence, detail) pairs; text that names no known reason is its own detail."""
    described: list[tuple[str, str]] = []
    for part in (piece.strip() for piece in text.split("; ")):
        if not part:
            continue
        code, _, detail = part.partition(": ")
        if code in REASON_WORDS:
            described.append((REASON_WORDS[code], detail))
        else:
            described.append(("Processing failed.", part))
    return described


def saving_percent(source_bytes: int | None, variant_bytes: int | None) -> float | None:
    """How much smaller the variant is than its source, in percent (negative: larger)."""
    if not source_bytes or variant_bytes is None:
        return None
    return (1 - variant_bytes / source_bytes) * 100


def saving_text(percent: float | None) -> str:
    if percent is None:
        return "saving unknown"
    rounded = round(percent)
    if rounded >= 100:  # not all of it: say how close
        return f"{min(math.floor(percent * 10) / 10, 99.9):.1f}% smaller"
    if rounded > 0:
        return f"{rounded}% smaller"
    if rounded < 0:
        return f"{-rounded}% larger"
    return "about the same size"


def estimated_cost(variants: int) -> float:
    return variants * COST_PER_MILLION_VARIANTS_USD / 1_000_000


def cost_text(dollars: float) -> str:
    if dollars == 0:
        return "$0.00"
    if dollars < 0.01:
        return f"${dollars:.2g}"
    return f"${dollars:,.2f}"


def bytes_text(count: int | None) -> str:
    """``1,234,567 bytes (1.2 MB)``."""
    if count is None:
        return "unknown"
    exact = f"{count:,} byte" + ("" if count == 1 else "s")
    if count < 1000:
        return exact
    size, units = float(count), ["kB", "MB", "GB", "TB"]
    unit = units.pop(0)
    while size >= 1000 * 1000 and units:
        size /= 1000
        unit = units.pop(0)
    return f"{exact} ({size / 1000:.1f} {unit})"


def thumb_size(width: int | None, height: int | None, box: int = THUMB_SIZE) -> tuple[int, int]:
    """The thumbnail's size on the page: the image fitted in ``box`` x ``box``, never
    enlarged (a square ``box`` when its size is unknown)."""
    if not width or not height:
        return box, box
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def duration_text(started: datetime, finished: datetime | None) -> str:
    if finished is None:
        return "unknown (not finished)"
    seconds = max(0.0, (finished - started).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(math.floor(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {rest} s" if hours else f"{minutes} min {rest} s"


@dataclass(frozen=True)
class Original:
    """What the report knows of a source file."""

    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None


def read_original(path: str) -> Original:
    """A source's size (``stat``), format and dimensions (Pillow, header only), where the
    file is on this machine; what cannot be read is None."""
    if "://" in path:
        return Original()
    local = Path(path)
    try:
        size = local.stat().st_size
    except OSError:
        return Original()
    try:
        with Image.open(local) as image:  # reads the header, not the pixels
            width, height = image.size
            return Original(size, image.format, width, height)
    except Exception:  # not an image, or a damaged one: still its size
        return Original(size)


@dataclass
class _Source:
    path: str
    status: str  # successful | partial | failed | skipped | pending
    problems: list[tuple[str, str]] = field(default_factory=list)  # (sentence, detail)
    variants: list[VariantEntry] = field(default_factory=list)
    original: Original = field(default_factory=Original)


def _sources(log: ProcessingLog) -> list[_Source]:
    """One per source, problems first: failed, partial, skipped, pending, successful."""
    sources: dict[str, _Source] = {}
    for failed in log.failed:
        sources[failed.path] = _Source(failed.path, "failed", describe(failed.error))
    for partial in log.partial:
        problems = [
            (sentence, f"{variant}: {detail}" if detail else variant)
            for variant, why in partial.not_done.items()
            for sentence, detail in describe(why)
        ]
        sources[partial.path] = _Source(
            partial.path, "partial", problems or describe(partial.detail)
        )
    for skipped in log.skipped:
        sources[skipped.path] = _Source(skipped.path, "skipped", describe(skipped.reason))
    for path in log.pending:
        sources.setdefault(path, _Source(path, "pending"))
    for path in log.successful:
        sources.setdefault(path, _Source(path, "successful"))
    for entry in log.variants:
        sources.setdefault(entry.path, _Source(entry.path, "successful")).variants.append(entry)
    for source in sources.values():
        source.original = read_original(source.path)
    return list(sources.values())


_STATUS_LABELS = {
    "successful": "Successful",
    "partial": "Partial",
    "failed": "Failed",
    "skipped": "Skipped",
    "pending": "Still processing",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _output_link(out_dir: Path, output: str | None) -> str | None:
    """The relative URL of a variant's output file, if it is in ``out_dir``."""
    if not output or "://" in output:
        return None
    relative = PurePosixPath(output)
    if relative.is_absolute() or ".." in relative.parts:
        return None
    if not out_dir.joinpath(*relative.parts).is_file():
        return None
    return quote(relative.as_posix(), safe="/")


def _dimensions(width: int | None, height: int | None, unknown: str = "dimensions unknown") -> str:
    return f"{width} \N{MULTIPLICATION SIGN} {height} px" if width and height else unknown


def _variant_item(out_dir: Path, source: _Source, entry: VariantEntry) -> str:
    name = _e(entry.variant)
    if entry.status != "done":
        why = describe(entry.reason or entry.status)
        if entry.error and why and not why[0][1]:
            why[0] = (why[0][0], entry.error)
        label = "Skipped" if entry.status == "skipped" else "Failed"
        if all(problem in source.problems for problem in why):  # said once, on the card
            label, why = f"{label}: the reason above.", []
        return (
            f'<li class="variant missing"><h4>{name}</h4>'
            f'<p class="status-{_e(entry.status)}">{label}</p>{_problems(why)}</li>'
        )
    link = _output_link(out_dir, entry.output)
    width, height = thumb_size(entry.width, entry.height)
    alt = f"{entry.variant} variant of {PurePosixPath(source.path).name}"
    if link is not None:
        picture = (
            f'<a class="thumb" href="{_e(link)}">'
            f'<img src="{_e(link)}" width="{width}" height="{height}" loading="lazy" '
            f'alt="{_e(alt)}"></a>'
        )
    else:
        where = f": {_e(entry.output)}" if entry.output else ""
        picture = f'<p class="nofile">Output file not in this folder{where}</p>'
    saving = saving_text(saving_percent(source.original.bytes, entry.bytes))
    file_name = _e(PurePosixPath(entry.output).name) if entry.output else "no file"
    return (
        f'<li class="variant"><h4>{name}</h4>{picture}<p class="name">{file_name}</p>'
        f"<dl><dt>Size</dt><dd>{_e(_dimensions(entry.width, entry.height))}</dd>"
        f"<dt>Bytes</dt><dd>{_e(bytes_text(entry.bytes))}</dd>"
        f'<dt>Saving</dt><dd class="saving">{_e(saving)}</dd></dl></li>'
    )


def _problems(problems: Iterable[tuple[str, str]]) -> str:
    items = [
        f"<li><strong>{_e(sentence)}</strong>"
        + (f' <span class="detail">{_e(detail)}</span>' if detail else "")
        + "</li>"
        for sentence, detail in problems
    ]
    return f'<ul class="reasons">{"".join(items)}</ul>' if items else ""


def _card(out_dir: Path, source: _Source) -> str:
    original = source.original
    name = PurePosixPath(source.path).name or source.path
    facts = (
        f"<dt>Size</dt><dd>{_e(bytes_text(original.bytes))}</dd>"
        f"<dt>Format</dt><dd>{_e(original.format or 'unknown')}</dd>"
        f"<dt>Dimensions</dt><dd>{_e(_dimensions(original.width, original.height, 'unknown'))}</dd>"
    )
    variants = "".join(_variant_item(out_dir, source, entry) for entry in source.variants)
    status = _STATUS_LABELS.get(source.status, source.status)
    return (
        f'<li class="card {_e(source.status)}"><article>'
        f"<h3>{_e(name)}</h3>"
        f'<p class="badge status-{_e(source.status)}">{_e(status)}</p>'
        f'<p class="path">{_e(source.path)}</p>'
        f'<dl class="original">{facts}</dl>'
        f"{_problems(source.problems)}"
        + (f'<ul class="variants">{variants}</ul>' if variants else "")
        + "</article></li>"
    )


def _summary(log: ProcessingLog, sources: list[_Source]) -> str:
    summary = log.summary
    sizes = [s.original.bytes for s in sources if s.status != "skipped"]
    known = [size for size in sizes if size is not None]
    bytes_in = sum(known) if known or not sizes else None  # None: no original was at hand
    written = [e for e in log.variants if e.status == "done"]
    bytes_out = sum(e.bytes or 0 for e in written)
    cost = estimated_cost(summary.variants_done)
    rows = [
        ("Files", f"{summary.files}"),
        ("Successful", f"{summary.successful}"),
        ("Partial", f"{summary.partial}"),
        ("Failed", f"{summary.failed}"),
        ("Skipped", f"{summary.skipped}"),
        (
            "Variants",
            f"{summary.variants_done} written, {summary.variants_failed} failed, "
            f"{summary.variants_skipped} skipped",
        ),
        ("Bytes in", bytes_text(bytes_in)),
        ("Bytes out", bytes_text(bytes_out)),
        ("Time taken", duration_text(log.started_at, log.finished_at)),
        ("Estimated AWS cost", cost_text(cost)),
    ]
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in rows)
    note = (
        f"Estimated AWS cost: {summary.variants_done} variants at "
        f"${COST_PER_MILLION_VARIANTS_USD:.2f} per million (Lambda, DynamoDB, S3 and SQS "
        "requests, as measured in docs/capacity.md; storage and data transfer not included). "
        "Bytes in counts the sources that were processed."
    )
    return f'<dl class="summary">{items}</dl><p class="note">{_e(note)}</p>'


_CSS = """
:root{color-scheme:light;--ink:#1b1f24;--muted:#4a5360;--line:#c9d1da;--bg:#f5f7fa;
--card:#fff;--ok:#1a6b34;--bad:#a4161a;--warn:#7a4d00;--skip:#44505e;--focus:#0a58ca}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header,main,footer{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
h3{font-size:1.05rem;margin:0;overflow-wrap:anywhere}h4{font-size:.95rem;margin:0}
p{margin:.25rem 0}.meta,.path,.note,.detail,.name{color:var(--muted);overflow-wrap:anywhere}
.path,.note{font-size:.85rem}
a{color:var(--focus)}
a:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.5rem;
margin:0;padding:0}
.summary div{background:var(--card);border:1px solid var(--line);border-radius:.5rem;
padding:.5rem .75rem}
.summary dt{font-size:.8rem;color:var(--muted)}.summary dd{margin:0;font-weight:600;
overflow-wrap:anywhere}
ul.cards{list-style:none;margin:0;padding:0;display:grid;gap:1rem;
grid-template-columns:repeat(auto-fill,minmax(min(100%,22rem),1fr))}
.card article{background:var(--card);border:1px solid var(--line);border-left-width:.4rem;
border-radius:.5rem;padding:.75rem;height:100%}
.card.successful article{border-left-color:var(--ok)}
.card.failed article{border-left-color:var(--bad)}
.card.partial article{border-left-color:var(--warn)}
.card.skipped article{border-left-color:var(--skip)}
.badge{display:inline-block;font-size:.8rem;font-weight:700;padding:0 .5rem;
border-radius:1rem;border:1px solid currentColor}
.status-successful,.status-done{color:var(--ok)}.status-failed{color:var(--bad)}
.status-partial{color:var(--warn)}.status-skipped,.status-pending{color:var(--skip)}
dl.original{display:grid;grid-template-columns:auto 1fr;gap:0 .75rem;margin:.5rem 0;
font-size:.9rem}
.variant dl{margin:.25rem 0;font-size:.85rem}.variant dt{float:left;margin-right:.4rem}
.variant p.name{font-size:.8rem}
dd{margin:0;overflow-wrap:anywhere}dt{font-weight:600}
ul.reasons{margin:.5rem 0;padding-left:1.2rem;color:var(--bad)}
ul.reasons .detail{display:block;font-size:.85rem}
ul.variants{list-style:none;margin:.5rem 0 0;padding:0;display:grid;gap:.75rem;
grid-template-columns:repeat(auto-fill,minmax(min(100%,9rem),1fr))}
.variant{border-top:1px solid var(--line);padding-top:.5rem;min-width:0}
.thumb{display:inline-block;margin:.25rem 0}
.thumb img{display:block;max-width:100%;height:auto;background:
repeating-conic-gradient(#e6e9ee 0 25%,#fff 0 50%) 0 0/16px 16px;border:1px solid var(--line)}
.nofile{font-size:.85rem;color:var(--muted)}
"""


def render_report(out_dir: Path, log: ProcessingLog, *, generated: datetime | None = None) -> str:
    """The page of ``log``, whose outputs are relative to ``out_dir``."""
    sources = _sources(log)
    generated = generated or datetime.now(UTC)
    job = f"Job {log.job}" if log.job else "Run"
    state = " (interrupted: some files were not finished)" if log.interrupted else ""
    cards = "".join(_card(out_dir, source) for source in sources)
    inputs = ", ".join(log.inputs) or "none"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Prism report: {_e(job)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>Prism report</h1>"
        f'<p class="meta">{_e(job)}{_e(state)}. Inputs: {_e(inputs)}. '
        f"Config: {_e(log.config)}. Generated {_e(generated.strftime('%Y-%m-%d %H:%M UTC'))}."
        f"</p></header>\n<main>\n"
        f'<section aria-labelledby="summary"><h2 id="summary">Summary</h2>'
        f"{_summary(log, sources)}</section>\n"
        f'<section aria-labelledby="files"><h2 id="files">Files ({len(sources)})</h2>'
        + (f'<ul class="cards">{cards}</ul>' if cards else "<p>No files.</p>")
        + "</section>\n</main>\n"
        '<footer><p class="note">The full record is in '
        '<a href="processing_log.json">processing_log.json</a>.</p></footer>\n'
        "</body>\n</html>\n"
    )


def write_report(out_dir: Path, log: ProcessingLog) -> Path:
    """Write ``out_dir/report.html`` for ``log`` (its outputs relative to ``out_dir``)."""
    path = Path(out_dir) / REPORT_NAME
    path.write_text(render_report(Path(out_dir), log), encoding="utf-8")
    return path
