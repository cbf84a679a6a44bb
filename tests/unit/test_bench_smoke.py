"""The benchmark code runs, on a 64x64 image made here (no timings are asserted)."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> dict[str, ModuleType]:
    # bench/ holds scripts, not a package: they import each other as top-level modules.
    sys.path.append(str(BENCH))
    names = ("workloads", "quality", "run", "memory", "ceiling")
    return {name: importlib.import_module(name) for name in names}


def jpeg_64() -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((64, 64)).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def formats_and_sizes(outputs: list[bytes]) -> list[tuple[str | None, tuple[int, int]]]:
    described = []
    for data in outputs:
        with Image.open(io.BytesIO(data)) as image:
            described.append((image.format, image.size))
    return described


def test_every_workload_renders_the_default_variants(bench: dict[str, ModuleType]) -> None:
    workloads, data = bench["workloads"], jpeg_64()
    # thumbnail JPEG, web WEBP, large JPEG; none of them enlarges a 64x64 image.
    expected = [("JPEG", (64, 64)), ("WEBP", (64, 64)), ("JPEG", (64, 64))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [
            workloads.textbook(data),
            workloads.prism_sequential(data),
            workloads.prism_sequential(data, workloads.with_effort(2)),
            workloads.prism_threaded(data, pool),
            *workloads.run_batch([data, data], pool),
        ]
    if workloads.pyvips() is not None:
        results.append(workloads.pyvips_decode_once(data))
    for outputs in results:
        assert formats_and_sizes(outputs) == expected


def test_a_timed_batch_never_formats_its_outputs(
    bench: dict[str, ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.11's asyncio.run takes the repr of its coroutine's task, result included,
    # when it restores the SIGINT handler: for a batch's outputs, tens of milliseconds
    # inside the timing. run_batch's coroutine returns nothing.
    import asyncio.base_tasks

    workloads, data = bench["workloads"], jpeg_64()
    results_formatted: list[object] = []
    task_repr_info = asyncio.base_tasks._task_repr_info

    def spy(task: asyncio.Task[object]) -> list[str]:
        if task.done() and not task.cancelled() and task.result() is not None:
            results_formatted.append(task.result())
        return task_repr_info(task)

    monkeypatch.setattr(asyncio.base_tasks, "_task_repr_info", spy)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outputs = workloads.run_batch([data, data], pool)
        # The spy sees what asyncio.run would format (on 3.11; 3.12 formats nothing).
        asyncio.run(workloads.prism_batch([data], pool))
    assert [formats_and_sizes(out) for out in outputs] == [
        [("JPEG", (64, 64)), ("WEBP", (64, 64)), ("JPEG", (64, 64))]
    ] * 2
    expected_direct = 2 if sys.version_info < (3, 12) else 0
    assert len(results_formatted) == expected_direct


def test_the_bench_uses_the_default_pipelines_variants(bench: dict[str, ModuleType]) -> None:
    from prism.config import default_config

    workloads = bench["workloads"]
    assert list(workloads.VARIANTS) == default_config().variants
    tuned = workloads.with_effort(2)
    assert [v.effort for v in tuned] == [None if v.format != "WEBP" else 2 for v in tuned]


def test_run_writes_tables_and_json(
    bench: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tiny.jpg").write_bytes(jpeg_64())
    (corpus / "notes.txt").write_text("not a photo")
    out = tmp_path / "bench.json"

    assert bench["run"].main(["--corpus", str(corpus), "--repeat", "1", "--json", str(out)]) == 0

    result = json.loads(out.read_text())
    assert [row["photo"] for row in result["photos"]] == ["tiny.jpg"]
    row = result["photos"][0]
    assert row["ms"]["textbook"] > 0 and row["ms"]["prism_1t"] > 0
    assert row["ratios"]["textbook/prism_1t"] > 0
    assert row["dimensions_match"]
    assert result["summary"]["geomean_ratios"]["textbook/prism_2t"] > 0
    assert result["corpus_at_once"]["ratio"] > 0
    assert [r["variant"].split()[0] for r in result["quality"]] == ["thumbnail", "web", "large"]
    printed = capsys.readouterr().out
    assert "| tiny.jpg |" in printed and "**geomean**" in printed
    assert "Machine load: other processes used" in printed


def test_run_says_so_and_still_runs_without_pyvips(
    bench: dict[str, ModuleType],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = bench["run"]
    monkeypatch.setattr(run, "pyvips", lambda: None)
    monkeypatch.setattr(bench["quality"], "pyvips", lambda: None)
    (tmp_path / "tiny.jpg").write_bytes(jpeg_64())
    out = tmp_path / "bench.json"

    assert run.main(["--corpus", str(tmp_path), "--repeat", "1", "--json", str(out)]) == 0

    assert "pyvips is not installed" in capsys.readouterr().out
    assert "pyvips" not in json.loads(out.read_text())["photos"][0]["ms"]


def test_ceiling_times_the_floor_against_the_anchors(
    bench: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tiny.jpg").write_bytes(jpeg_64())
    out = tmp_path / "ceiling.json"

    assert (
        bench["ceiling"].main(["--corpus", str(tmp_path), "--repeat", "1", "--json", str(out)]) == 0
    )

    (row,) = json.loads(out.read_text())["photos"]
    assert row["photo"] == "tiny.jpg"
    assert {"textbook", "prism", "floor", "floor_textbook_encoders"} <= set(row["ms"])
    assert all(ms > 0 for ms in row["ms"].values())
    printed = capsys.readouterr().out
    assert "| tiny.jpg |" in printed and "| **geomean** |" in printed
    assert "textbook / floor" in printed


def test_the_floor_encodes_what_prism_renders(bench: dict[str, ModuleType]) -> None:
    workloads, data = bench["workloads"], jpeg_64()
    floor = bench["ceiling"].floor_job(data, workloads.VARIANTS)()
    assert floor == workloads.prism_sequential(data)  # the same bytes: only the resize is free
    plain = bench["ceiling"].floor_job(data, workloads.VARIANTS, optimize=False)()
    assert formats_and_sizes(plain) == formats_and_sizes(floor)


def test_run_skips_without_a_corpus(
    bench: dict[str, ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench["run"].main(["--corpus", str(tmp_path / "absent")]) == 0
    assert "skipping" in capsys.readouterr().out


def test_memory_child_reports_rss_and_reads_the_template(
    bench: dict[str, ModuleType], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = bench["memory"]
    for name, value in memory.warm_worker_environment().items():  # as run_child sets
        monkeypatch.setenv(name, value)
    photo = tmp_path / "tiny.jpg"
    photo.write_bytes(jpeg_64())
    modes = [m for m in memory.MODES if m != "pyvips" or bench["workloads"].pyvips()]
    for mode in modes:
        result = memory.child(mode, photo, batch=2)
        assert 0 < result["start_mb"] <= result["peak_mb"]
        assert result["image"] == "JPEG 64x64 RGB"
        assert result["decoded_mb"] == 64 * 64 * 4 / 2**20  # RGB takes 4 bytes a pixel
    assert 128 <= memory.lambda_memory_mb() <= 10_240  # Lambda's range
    assert memory.limit_size(100_000_000) == (10_000, 10_000)


def test_a_bare_measuring_process_starts_without_the_worker(tmp_path: Path) -> None:
    photo = tmp_path / "tiny.jpg"
    photo.write_bytes(jpeg_64())
    # A fresh interpreter: this one has imported the worker already.
    script = (
        "import json, os, sys; from pathlib import Path; import memory\n"
        "os.environ.update(memory.warm_worker_environment())  # as run_child sets\n"
        "for bare in (True, False):\n"
        f"    result = memory.child('prism-1t', Path({str(photo)!r}), 1, bare=bare)\n"
        "    loaded = [m for m in ('prism.worker', 'aiobotocore') if m in sys.modules]\n"
        "    print(json.dumps([result['image'], loaded]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH,
        env={**os.environ, "PYTHONPATH": str(BENCH)},
    )
    bare, warm = (json.loads(line) for line in completed.stdout.splitlines())
    assert bare == ["JPEG 64x64 RGB", []]
    assert warm == ["JPEG 64x64 RGB", ["prism.worker", "aiobotocore"]]
