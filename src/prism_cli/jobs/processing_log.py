"""``processing_log.json``: what a run or a job did with every input file.

In ``prism run``'s log, paths of inputs are shown as given on the command line
(``DIR/relative/path``) and output files are relative to the output folder, so the folder
can be moved with its log. In a job's log (``prism log JOB``) both are ``s3://`` URLs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, computed_field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class FailedFile(_Model):
    path: str
    error: str


class SkippedFile(_Model):
    path: str
    reason: str


class PartialFile(_Model):
    """A file with some variants written and some not (failed, skipped or never finished)."""

    path: str
    detail: str  # the reasons of the variants not written, in one line
    done: list[str] = Field(default_factory=list)  # the variants written
    # Each variant not written, with why: "reason" or "reason: error".
    not_done: dict[str, str] = Field(default_factory=dict)


class VariantEntry(_Model):
    path: str  # the input file
    variant: str
    status: str  # done | failed | skipped (prism.records.VariantStatus)
    output: str | None = None  # relative to the output folder
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    duration_ms: int | None = None
    reason: str | None = None
    error: str | None = None
    # Dedupe: the source whose identical render was copied instead of rendering this one.
    reused_from: str | None = None


class Summary(_Model):
    # Files (sources): each is in exactly one of successful, partial, failed and skipped.
    files: int
    successful: int
    partial: int
    failed: int
    skipped: int
    # Variants: one entry per variant of a file.
    variants_done: int
    variants_failed: int
    variants_skipped: int


def _now() -> datetime:
    return datetime.now(UTC)


class ProcessingLog(BaseModel):
    model_config = ConfigDict(extra="ignore")  # ``summary`` is derived, not loaded

    started_at: datetime = Field(default_factory=_now)
    finished_at: datetime | None = None
    interrupted: bool = False
    # The job the log is about (``prism log JOB``; ``prism run`` records its own job too).
    job: str | None = None
    inputs: list[str] = Field(default_factory=list)
    output: str = ""
    config: str = "built-in default"
    # Handler logs (Powertools JSON, EMF metrics) of the run, relative to the output folder.
    function_log: str | None = None
    # Every variant written.
    successful: list[str] = Field(default_factory=list)
    # Some variants written, some not.
    partial: list[PartialFile] = Field(default_factory=list)
    # No variant written, at least one failed (or the file itself failed).
    failed: list[FailedFile] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    variants: list[VariantEntry] = Field(default_factory=list)
    # Sources of a job that is still running, not finished yet (``prism log`` of a live job).
    pending: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> Summary:
        statuses = [entry.status for entry in self.variants]
        return Summary(
            files=len(self.successful) + len(self.partial) + len(self.failed) + len(self.skipped),
            successful=len(self.successful),
            partial=len(self.partial),
            failed=len(self.failed),
            skipped=len(self.skipped),
            variants_done=statuses.count("done"),
            variants_failed=statuses.count("failed"),
            variants_skipped=statuses.count("skipped"),
        )

    def save(self, path: Path | str) -> None:
        Path(path).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> ProcessingLog:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
