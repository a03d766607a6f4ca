"""A run directory on disk: append-only results files that survive a kill, and run metadata.

Layout of ``RUN_DIR`` (see the README's evaluation section)::

    config.yaml                      the resolved config (config.dump_config)
    run.json                         seed, start time, git commit, package versions, command line
    samples/<dataset>.ids            the sample ids evaluated, one per line (fixed by the seed)
    results/<dataset>__<workflow>.jsonl   one EvalRecord per line, appended as samples finish
    summary.json                     metrics per dataset x workflow, written when the run ends
    artifacts/<workflow>/...         crops and boxed images of cropped image searches

A results line is written with one ``write`` followed by ``flush`` and ``os.fsync``. A kill can
only leave a torn *last* line; :meth:`ResultsFile.open` cuts it off, so a resumed run redoes that
sample and nothing is lost or duplicated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from deepmmsearch import appendlog, jsontext
from deepmmsearch.appendlog import AppendLog
from deepmmsearch.eval.records import EvalRecord

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
VERSIONED_PACKAGES = (
    "deepmmsearch", "torch", "transformers", "trl", "peft", "accelerate", "openai", "tantivy",
    "bm25s", "faiss-cpu", "pillow", "numpy", "matplotlib",
)


def safe_name(label: str) -> str:
    """A file-name-safe form of a dataset or workflow label."""
    return _SAFE.sub("-", label).strip("-") or "x"


def results_path(run_dir: str | Path, dataset: str, workflow: str) -> Path:
    return Path(run_dir) / "results" / f"{safe_name(dataset)}__{safe_name(workflow)}.jsonl"


class ResultsFile:
    """One append-only JSONL file of :class:`EvalRecord` rows (an :class:`AppendLog`)::

        f = ResultsFile.open(path)      # reads what is there, cuts a torn last line
        f.done                          # sample ids already evaluated
        f.append(record)                # one line, flushed and fsync'd
        f.close()
    """

    def __init__(self, log: AppendLog[EvalRecord]) -> None:
        self.path = log.path
        self.records = log.rows
        self._log = log

    @property
    def done(self) -> set[str]:
        return set(self.records)

    @classmethod
    def open(cls, path: str | Path) -> ResultsFile:
        return cls(AppendLog(path, key=_sample_id, decode=EvalRecord.from_dict, strict=True,
                             what="results row"))

    def write(self, record: EvalRecord) -> None:
        """Write one row (buffered: durable after :meth:`sync`)."""
        if record.sample_id in self.records:
            raise ValueError(f"{self.path.name}: sample {record.sample_id!r} is already recorded")
        self._log.add(record.sample_id, record, record.to_dict())

    def sync(self) -> None:
        """Flush and fsync: every row written so far survives a kill or a power cut."""
        self._log.sync()

    def append(self, record: EvalRecord) -> None:
        """Write one row and make it durable."""
        self.write(record)
        self.sync()

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> ResultsFile:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sample_id(record: EvalRecord) -> str:
    return record.sample_id


class Committer:
    """Commits finished records from many concurrent episodes without blocking the event loop.

    Workers :meth:`put` records; one task takes everything that has arrived, writes it and
    fsyncs each touched file once, in a worker thread (group commit), then calls ``on_commit``
    with the number committed. ``await close()`` commits what is left. A record is durable
    within one fsync of finishing; a kill loses at most the records not yet committed, which a
    resumed run redoes.

        committer = Committer(files, on_commit=bar.update)
        task = asyncio.create_task(committer.run())
        committer.put(key, record)  # from any worker
        await committer.close()
    """

    def __init__(self, files: dict[Any, ResultsFile], on_commit: Any = None) -> None:
        import asyncio

        self.files = files
        self.on_commit = on_commit
        self.queue: asyncio.Queue = asyncio.Queue()
        self.committed = 0
        self._task: asyncio.Task | None = None

    def _commit(self, batch: list[tuple[Any, EvalRecord]]) -> None:
        touched = []
        for key, rec in batch:
            self.files[key].write(rec)
            if key not in touched:
                touched.append(key)
        for key in touched:
            self.files[key].sync()

    async def run(self) -> None:
        import asyncio

        self._task = asyncio.current_task()
        done = False
        while not done:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            done = any(item is None for item in batch)
            items = [item for item in batch if item is not None]
            if items:
                await asyncio.to_thread(self._commit, items)
                self.committed += len(items)
                if self.on_commit is not None:
                    self.on_commit(len(items))

    def put(self, key: Any, record: EvalRecord) -> None:
        if self._task is not None and self._task.done() and self._task.exception() is not None:
            raise self._task.exception()  # the disk failed: stop evaluating
        self.queue.put_nowait((key, record))

    async def close(self) -> None:
        self.queue.put_nowait(None)
        if self._task is not None:
            await self._task


def read_results(path: str | Path, *, repair: bool = False) -> list[EvalRecord]:
    """Read a results file. A torn last line (a kill mid-write) is skipped — and cut off the
    file when ``repair`` is set. A bad line elsewhere is an error (the file was edited by hand).
    Duplicate sample ids keep the first row."""
    path = Path(path)
    rows, good_end, _ = appendlog.scan(path, key=_sample_id, decode=EvalRecord.from_dict,
                                       strict=True, what="results row")
    if repair:
        appendlog.repair(path, good_end)
    return list(rows.values())


def load_run_records(run_dir: str | Path) -> list[EvalRecord]:
    """Every record of a run directory (all results files)."""
    out: list[EvalRecord] = []
    for p in sorted((Path(run_dir) / "results").glob("*.jsonl")):
        out.extend(read_results(p))
    return out


# -- run metadata ------------------------------------------------------------------------------


def package_versions(names: tuple[str, ...] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = importlib_metadata.version(n)
        except importlib_metadata.PackageNotFoundError:
            out[n] = None
    return out


def git_commit(where: str | Path | None = None) -> str | None:
    """The commit of the source tree (``-dirty`` appended when it has changes), or None."""
    src = Path(where) if where else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True,
                              text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=10, check=False)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run_info(seed: int, argv: list[str] | None = None) -> dict[str, Any]:
    return {
        "seed": seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "argv": list(argv if argv is not None else sys.argv),
    }


class RunDirBusy(RuntimeError):
    """Another process holds the run directory's lock."""


@contextlib.contextmanager
def locked_run_dir(run_dir: str | Path) -> Iterator[Path]:
    """Hold ``RUN_DIR/.lock`` (an exclusive ``flock``) while a run writes there.

    A second eval on the same directory fails at once with :class:`RunDirBusy` instead of
    appending a second copy of every row. The kernel drops the lock when the process dies, so a
    killed run never leaves a stale lock behind.
    """
    import fcntl

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".lock"
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise RunDirBusy(f"{run_dir} is in use by {holder}: wait for that run to finish or "
                             "use another 'out'") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        yield run_dir
    finally:
        fh.close()


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (a temporary file renamed over the target)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(jsontext.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
