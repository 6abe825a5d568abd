"""Run every cell of an experiment: locally on a process pool, or on a Ray cluster.

Results land in one folder::

    OUT/
      spec.json                 the experiment (what `dmd experiment report` reads back)
      index.csv, index.json     one row per network: cell, status, training and analysis numbers
      cells/<cell_id>/run/      the trainer's run folder (final_model.zip, checkpoints/, tb/, metadata.json)
      cells/<cell_id>/result.json   written last, atomically: a cell with it is finished and never redone
      cells/<cell_id>/error.json    the error of a failed cell (it is retried on the next run)

Safe to interrupt: a finished cell is never redone; an interrupted cell resumes from its newest checkpoint on the
next run (the trainers' ``resume``); a failed cell is recorded with its error and does not stop the others.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from tqdm.auto import tqdm

from agents.files import set_aside, warn, write_json, write_rows
from .spec import Cell, ExperimentSpec

CellFn = Callable[[dict, dict, str], dict]
"""``cell_fn(spec_dict, cell_dict, cell_dir) -> result dict`` (module-level, so it pickles to workers)."""

BACKENDS = ("local", "serial", "ray")


def cell_dir(out_dir: Path, cell: Cell) -> Path:
    """The folder of one cell."""
    return Path(out_dir) / "cells" / cell.cell_id


def _worker_init() -> None:
    """One torch thread per worker process: small networks run fastest that way on few cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def execute_cell(cell_fn: CellFn, spec: dict, cell: dict, out_dir: str, in_worker: bool = True) -> dict:
    """Run one cell and record its outcome (a failure is returned and written to ``error.json``).

    An interrupt returns an ``interrupted`` record in a worker process (so the pool survives to shut down cleanly)
    and propagates when the cell runs in the calling process (so the whole run stops).
    """
    _worker_init()
    c = Cell(**cell)
    folder = cell_dir(Path(out_dir), c)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        result = cell_fn(spec, cell, str(folder))
    except KeyboardInterrupt:
        if not in_worker:
            raise
        return {"cell": cell, "status": "interrupted"}
    except Exception as err:  # a failed cell must not stop the others
        record = {
            "cell": cell,
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
            "wall_time_s": time.time() - t0,
        }
        write_json(folder / "error.json", record)
        return record
    record = {"cell": cell, "status": "done", "wall_time_s": time.time() - t0, **result}
    (folder / "error.json").unlink(missing_ok=True)
    write_json(folder / "result.json", record)
    return record


def _pending(spec: ExperimentSpec, out_dir: Path) -> list[Cell]:
    """The cells without a readable ``result.json`` (a corrupt one is moved aside, so the cell is redone)."""
    return [c for c in spec.cells() if read_record(cell_dir(out_dir, c) / "result.json") is None]


def read_record(path: Path) -> Optional[dict]:
    """The cell record in ``path``; None when there is none, or when it is corrupt: a corrupt file is moved aside
    to ``<name>.corrupt-<time>`` (kept for inspection) and reported on stderr, and its cell counts as pending."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        problem = None if isinstance(record, dict) and "cell" in record and "status" in record else "not a cell record"
    except (ValueError, OSError) as err:  # JSONDecodeError, UnicodeDecodeError, unreadable
        problem = f"{type(err).__name__}: {err}"
    if problem is None:
        return record
    aside = set_aside(path)
    warn(f"{path} was corrupt ({problem}); moved to {aside.name}, the cell is pending again")
    return None


def _check_spec(spec: ExperimentSpec, out_dir: Path) -> None:
    path = out_dir / "spec.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(spec.to_dict())):
            changed = sorted(k for k in set(old) | set(spec.to_dict()) if old.get(k) != spec.to_dict().get(k))
            tqdm.write(f"note: the spec in {out_dir} changed ({', '.join(changed)}); finished cells are kept")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, spec.to_dict())


def run_experiment(
    spec: ExperimentSpec,
    out_dir: str | Path,
    *,
    backend: str = "local",
    workers: Optional[int] = None,
    address: Optional[str] = None,
    cell_fn: Optional[CellFn] = None,
    progress: bool = True,
) -> list[dict]:
    """Train and analyse every unfinished cell of ``spec`` into ``out_dir``; return the index rows.

    Args:
        spec: The experiment.
        out_dir: Its folder (created; reused to resume).
        backend: ``"local"`` (a process pool sized to the machine), ``"serial"`` (in this process) or ``"ray"``.
        workers: Local pool size (default: one per CPU core, at most the number of pending cells).
        address: Ray cluster address (``"auto"`` for a running cluster; ``None`` starts a local instance).
        cell_fn: What to run per cell (default :func:`analysis.experiments.cell.run_cell`).
        progress: Show a progress bar over cells.

    Returns:
        One row per cell (see :func:`build_index`).
    """
    return run_experiments([(spec, Path(out_dir))], backend=backend, workers=workers, address=address,
                           cell_fn=cell_fn, progress=progress)[0]


def run_experiments(
    experiments: Sequence[tuple[ExperimentSpec, Path]],
    *,
    backend: str = "local",
    workers: Optional[int] = None,
    address: Optional[str] = None,
    cell_fn: Optional[CellFn] = None,
    progress: bool = True,
    order: str = "rl_first",
) -> list[list[dict]]:
    """Run several experiments' unfinished cells in one pool; one index each.

    Arguments as :func:`run_experiment`, with ``(spec, out_dir)`` pairs, and ``order``: ``"rl_first"`` (default: RL
    cells of every experiment first, since they take longest) or ``"given"`` (experiment by experiment in the order
    given, RL first within each: the first experiments finish first, e.g. when time is short).
    """
    if order not in ("rl_first", "given"):
        raise ValueError(f"order must be 'rl_first' or 'given', got {order!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if cell_fn is None:
        from .cell import run_cell

        cell_fn = run_cell
    jobs: list[tuple] = []
    total = 0
    for spec, out in experiments:
        out = Path(out)
        _check_spec(spec, out)
        spec_d = spec.to_dict()
        pending = sorted(_pending(spec, out), key=lambda c: c.rule != "rl")
        jobs += [(spec_d, asdict(c), str(out)) for c in pending]
        total += len(spec.cells())
    if order == "rl_first":
        jobs.sort(key=lambda job: job[1]["rule"] != "rl")  # stable: the longest cells start first
    name = experiments[0][0].name if len(experiments) == 1 else f"{len(experiments)} experiments"
    bar = tqdm(total=total, initial=total - len(jobs), desc=f"{name}: cells", unit="cell", disable=not progress)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
        for record in _dispatch(backend, cell_fn, jobs, workers, address):
            bar.update(1)
            if record["status"] == "failed":
                tqdm.write(f"cell {Cell(**record['cell']).cell_id} failed: {record['error']}", file=sys.stderr)
    except KeyboardInterrupt:
        where = ", ".join(str(out) for _, out in experiments)
        tqdm.write(f"interrupted: finished cells are kept; run the same command again to resume ({where})",
                   file=sys.stderr)
        raise
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for spec, out in experiments:
            build_index(spec, out)
    return [build_index(spec, out) for spec, out in experiments]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _dispatch(
    backend: str, cell_fn: CellFn, jobs: list[tuple], workers: Optional[int], address: Optional[str]
) -> Iterable[dict]:
    if not jobs:
        return
    if backend == "serial":
        for job in jobs:
            yield execute_cell(cell_fn, *job, in_worker=False)
    elif backend == "local":
        n = workers or min(os.cpu_count() or 1, len(jobs))
        ctx = mp.get_context("spawn")  # fresh interpreters: no torch/OpenMP state inherited through fork
        with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(execute_cell, cell_fn, *job) for job in jobs]
            try:
                for fut in cf.as_completed(futures):
                    yield fut.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # running cells checkpoint and stop on the signal
                raise
    else:
        yield from _dispatch_ray(cell_fn, jobs, address)


def _dispatch_ray(cell_fn: CellFn, jobs: list[tuple], address: Optional[str]) -> Iterable[dict]:
    try:
        import ray
    except ImportError as err:
        raise RuntimeError("the Ray backend needs ray: pip install 'decision-dynamics[ray]'") from err
    started = not ray.is_initialized()
    if started:
        env_vars = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if address is None:  # a local instance: workers see the modules this process sees
            env_vars["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env_vars})
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(execute_cell)
        pending = [remote.remote(cell_fn, *job) for job in jobs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------- index
def _flatten(prefix: str, value: Any, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    elif isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float, str, bool)) or v is None for v in value) and len(value) <= 16:
            out[prefix] = json.dumps(value)
    else:
        out[prefix] = value


def load_records(spec: ExperimentSpec, out_dir: str | Path) -> list[dict]:
    """The record of every cell: its ``result.json``, its ``error.json``, or a ``pending`` stub (also for a cell
    whose record was corrupt: see :func:`read_record`)."""
    out = Path(out_dir)
    rows = []
    for c in spec.cells():
        folder = cell_dir(out, c)
        record = read_record(folder / "result.json") or read_record(folder / "error.json")
        rows.append(record or {"cell": asdict(c), "status": "pending"})
    return rows


# ---------------------------------------------------------------------- reading a record
def record_value(record: dict, path: str, default: Any = float("nan")) -> Any:
    """The value at a dotted ``path`` of a cell record (``"training.reached_target"``, ``"dynamics.qp_fraction"``),
    or ``default`` where a key is missing or the value is ``None``.

    The one reader of record fields for the reports (:mod:`analysis.experiments.report`,
    :mod:`analysis.experiments.study_report`).

    Example:
        >>> record_value({"dynamics": {"qp_fraction": 0.25}}, "dynamics.qp_fraction")
        0.25
        >>> record_value({"dynamics": None}, "dynamics.qp_fraction", default=0)
        0
    """
    cur: Any = record
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur if cur is not None else default


def record_number(record: dict, path: str) -> float:
    """:func:`record_value` as a float, NaN where it is missing or not a number.

    Example:
        >>> record_number({"training": {"accuracy": "0.97"}}, "training.accuracy"), record_number({}, "x.y")
        (0.97, nan)
    """
    v = record_value(record, path)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def reached_criterion(record: dict) -> bool:
    """Whether the record's network reached the accuracy criterion (``training.reached_target``); only those enter
    the reports' comparisons."""
    return bool(record_value(record, "training.reached_target", False))


def build_index(spec: ExperimentSpec, out_dir: str | Path) -> list[dict]:
    """Write ``index.json`` (full records) and ``index.csv`` (flat scalar columns, one row per network)."""
    out = Path(out_dir)
    records = load_records(spec, out)
    write_json(out / "index.json", records)
    flat = []
    for r in records:
        row: dict[str, Any] = {"cell_id": Cell(**r["cell"]).cell_id}
        _flatten("", {k: v for k, v in r.items() if k != "traceback"}, row)
        flat.append(row)
    write_rows(out / "index.csv", flat)
    return records
