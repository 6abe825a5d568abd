"""The run folder both trainers write, the model they build, and the facts they record.

Layout (``docs/DESIGN.md``)::

    RUN/
      final_model.zip     the trained model (a RecurrentPPO zip carrying ``dmd_metadata``)
      metadata.json       learning rule, task config, seed, delta, steps/trials to criterion, accuracy curve, ...
      checkpoints/        step_<env steps>.zip at regular intervals (and on interruption), plus acc_050.zip,
                          acc_070.zip, acc_090.zip, acc_target.zip the first time accuracy reaches each level
      tb/                 TensorBoard logs

Every zip carries the metadata as of its own step in ``model.dmd_metadata``; ``metadata.json`` is the latest. Every
zip the trainers save also carries the state a resumed run needs to continue exactly (:mod:`agents.resume`).

Resuming (:func:`prepare_run`) takes the newest checkpoint that is whole: a corrupt one is moved aside to
``<name>.corrupt-<time>`` with a warning, and so is a ``metadata.json`` that cannot be read (the resumed run rebuilds
it from the checkpoint).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from dm_envs import TaskConfig, make_config

from .config import RunConfig
from .files import json_safe, read_json, set_aside, warn, write_json

PathLike = Union[str, os.PathLike]

FINAL_MODEL = "final_model.zip"
METADATA = "metadata.json"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tb"
CROSSING_LEVELS: tuple[float, ...] = (0.5, 0.7, 0.9)
"""Accuracy levels (besides the target) whose first crossing is checkpointed."""
STATUSES = ("running", "reached_target", "budget_exhausted", "interrupted", "collapsed", "diverged")
METADATA_FORMAT = 1
TRAIN_STREAM = 0x7EA1
"""Key that separates the training trials of a resumed segment from the first segment's (see :func:`stream_seed`)."""
ROLLBACK_STREAM = 0x0B0C
"""Key of the training trials after a collapse rollback (see :class:`~agents.callbacks.rollback.CollapseGuard`)."""


class TrainingDiverged(RuntimeError):
    """Training produced non-finite parameters, hidden states or losses; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What :func:`~agents.train_rl` and :func:`~agents.train_sl` return.

    Attributes:
        run_dir: The run folder.
        model: The trained ``RecurrentPPO`` model (in memory; also saved as ``final_model.zip`` unless interrupted).
        metadata: The run's metadata (as written to ``metadata.json``).
    """

    run_dir: Path
    model: Any
    metadata: dict[str, Any] = field(repr=False)

    @property
    def status(self) -> str:
        """``"reached_target"``, ``"budget_exhausted"``, ``"interrupted"`` or ``"collapsed"``."""
        return str(self.metadata["status"])

    @property
    def reached_target(self) -> bool:
        """Whether the stopping rule fired."""
        return bool(self.metadata["reached_target"])

    @property
    def accuracy(self) -> float:
        """Accuracy of the last evaluation."""
        curve = self.metadata["accuracy_curve"]
        return float(curve[-1]["accuracy"]) if curve else float("nan")


@dataclass(frozen=True)
class Checkpoint:
    """A saved network of a run folder.

    Attributes:
        path: The zip.
        name: Its file stem (``step_500000``, ``acc_090``, ``final_model``, ...).
        env_steps: Env steps at which it was saved (from the model's metadata).
        aliases: Stems of other zips saved at the same env steps (the same network).
    """

    path: Path
    name: str
    env_steps: int
    aliases: tuple[str, ...] = ()


class RunDir:
    """Paths of a run folder and the operations on them.

    Args:
        root: The run folder (created on demand).
    """

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)

    @property
    def final_model(self) -> Path:
        return self.root / FINAL_MODEL

    @property
    def metadata(self) -> Path:
        return self.root / METADATA

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def tb(self) -> Path:
        return self.root / TENSORBOARD

    def step_checkpoint(self, env_steps: int) -> Path:
        """``checkpoints/step_<env_steps>.zip``."""
        return self.checkpoints / f"step_{int(env_steps)}.zip"

    def crossing_checkpoint(self, level: float, target: bool = False) -> Path:
        """``checkpoints/acc_050.zip`` for level 0.5, ``checkpoints/acc_target.zip`` for the target."""
        name = "acc_target" if target else f"acc_{int(round(level * 100)):03d}"
        return self.checkpoints / f"{name}.zip"

    def make(self) -> None:
        """Create the folder and its ``checkpoints/`` and ``tb/`` subfolders."""
        for d in (self.root, self.checkpoints, self.tb):
            d.mkdir(parents=True, exist_ok=True)

    def has_run(self) -> bool:
        """Whether the folder already holds a run (metadata, a final model or checkpoints)."""
        return self.metadata.exists() or self.final_model.exists() or any(self.checkpoints.glob("*.zip"))

    def clear(self) -> None:
        """Delete this layout's files (final model, metadata, checkpoints, TensorBoard logs); nothing else."""
        for f in (self.final_model, self.metadata):
            f.unlink(missing_ok=True)
        for d in (self.checkpoints, self.tb):
            if d.exists():
                shutil.rmtree(d)

    def saved(self) -> list[tuple[int, Path]]:
        """``(env steps, path)`` of every readable saved model (``checkpoints/*.zip`` and ``final_model.zip``).

        Only each zip's metadata is read (no weights). Files that cannot be read (e.g. a zip cut short by a crash)
        are skipped.
        """
        return self._scan()[0]

    def _scan(self) -> tuple[list[tuple[int, Path]], list[tuple[Path, str]]]:
        """The readable saved models as ``(env steps, path)``, and the unreadable ones as ``(path, error)``."""
        from .io import ModelLoadError, load_metadata

        good, bad = [], []
        candidates = sorted(self.checkpoints.glob("*.zip")) + ([self.final_model] if self.final_model.exists() else [])
        for path in candidates:
            if path.name.endswith(".tmp.zip"):  # a save cut short (saves write here, then rename)
                continue
            try:
                good.append((int(load_metadata(path)["env_steps"]), path))
            except (ModelLoadError, KeyError, ValueError, TypeError, OSError) as err:
                bad.append((path, str(err)))
        return good, bad

    def resume_checkpoint(self) -> Optional[Path]:
        """The checkpoint a resumed run continues from: the newest whole one (as :meth:`newest_checkpoint`).

        Corrupt models on the way (an unreadable zip, a damaged entry, entries missing) are moved aside to
        ``<name>.corrupt-<time>`` with a warning on stderr, so they are not tried again; the older checkpoints stay.
        """
        good, bad = self._scan()
        for path, _ in bad:
            self._set_aside(path, model_file_problem(path) or "it carries no readable run metadata")
        for _, path in sorted(good, key=lambda sp: (sp[0], sp[1].stat().st_mtime), reverse=True):
            problem = model_file_problem(path)
            if problem is None:
                return path
            self._set_aside(path, problem)
        return None

    def _set_aside(self, path: Path, problem: str) -> None:
        aside = set_aside(path)
        warn(f"{self.relative(path)} is corrupt ({problem}); moved to {self.relative(aside)}")

    def checkpoint_at(self, env_steps: int) -> Optional[Path]:
        """The saved model at exactly ``env_steps`` (e.g. 0: the initial weights), or None."""
        hits = sorted(p for n, p in self.saved() if n == int(env_steps))
        return hits[0] if hits else None

    def newest_checkpoint(self) -> Optional[Path]:
        """The saved model with the most env steps (the latest written among equals), or None if there is none."""
        saved = self.saved()
        if not saved:
            return None
        return max(saved, key=lambda sp: (sp[0], sp[1].stat().st_mtime))[1]

    def models(self) -> list["Checkpoint"]:
        """The distinct networks of the run, ordered by env steps.

        Zips saved at the same env steps are one network (e.g. ``acc_target`` and ``final_model``): the first of
        ``final_model``, ``acc_target``, ``step_*``, ``acc_*`` names it, the others are its ``aliases``.

        Raises:
            FileNotFoundError: the folder holds no readable model.

        Example:
            >>> [c.name for c in RunDir("runs/sl").models()]     # doctest: +SKIP
            ['step_0', 'acc_050', 'step_501556', 'acc_070', 'acc_090', 'final_model']
        """
        by_steps: dict[int, list[Path]] = {}
        for steps, path in self.saved():
            by_steps.setdefault(steps, []).append(path)
        if not by_steps:
            raise FileNotFoundError(f"no readable model in {self.root} (expected checkpoints/*.zip or final_model.zip)")
        rank = lambda f: (0 if f.stem == "final_model" else 1 if f.stem == "acc_target" else  # noqa: E731
                          2 if f.stem.startswith("step_") else 3, f.stem)
        out = []
        for steps in sorted(by_steps):
            fs = sorted(by_steps[steps], key=rank)
            out.append(Checkpoint(fs[0], fs[0].stem, steps, tuple(f.stem for f in fs[1:])))
        return out

    def trained_model(self) -> Path:
        """The run's final model; a run that ended without one (a collapsed policy) gives its last checkpoint."""
        return self.final_model if self.final_model.exists() else self.models()[-1].path

    def accuracy_curve(self) -> dict[int, float]:
        """``{env steps: accuracy}`` of the run's evaluations (``metadata.json``; empty when it is missing)."""
        if not self.metadata.exists():
            return {}
        curve = self.read_metadata().get("accuracy_curve") or []
        return {int(c["env_steps"]): float(c["accuracy"]) for c in curve if c.get("accuracy") is not None}

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Write ``metadata.json`` atomically (a crash never leaves half a file)."""
        write_json(self.metadata, metadata)

    def metadata_problem(self) -> Optional[str]:
        """What is wrong with ``metadata.json`` (unreadable, not JSON, not a run's metadata), or None (also when there
        is none)."""
        if not self.metadata.exists():
            return None
        try:
            meta = self.read_metadata()
        except (ValueError, OSError) as err:  # JSONDecodeError, UnicodeDecodeError, unreadable
            return f"{type(err).__name__}: {err}"
        return None if isinstance(meta, dict) and "learning_rule" in meta else "not a run's metadata"

    def read_metadata(self) -> dict[str, Any]:
        """Read ``metadata.json``."""
        return read_json(self.metadata)

    def relative(self, path: Path) -> str:
        """``path`` relative to the run folder (as recorded in the metadata)."""
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)


def save_model(
    model: Any, path: Path, metadata: dict[str, Any], resume_state: Optional[dict[str, Any]] = None
) -> Path:
    """Attach ``metadata`` to the model as ``dmd_metadata`` and save it atomically to ``path`` (a ``.zip``), with the
    ``resume_state`` of :mod:`agents.resume` when given.

    The zip is written whole to ``<stem>.tmp.zip`` beside ``path`` and renamed into place, so ``path`` always holds a
    complete model (the previous one until the new one is ready).
    """
    from .resume import add_resume_state

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.dmd_metadata = json_safe(metadata)
    tmp = path.with_name(path.stem + ".tmp.zip")
    try:
        model.save(tmp)
        if resume_state is not None:
            add_resume_state(tmp, resume_state)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def model_file_problem(path: Path) -> Optional[str]:
    """What makes a saved model zip unusable (not a zip, a damaged entry, no weights), or None if it is whole.

    Every entry is read and checked against its CRC; nothing is unpickled.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            damaged = zf.testzip()
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        return f"not a readable zip: {err}"
    if damaged is not None:
        return f"entry {damaged!r} is damaged (CRC mismatch)"
    missing = {"data", "policy.pth", "policy.optimizer.pth"} - names
    return f"entries missing: {', '.join(sorted(missing))}" if missing else None


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    out = {"python": platform.python_version()}
    for dist in ("decision-dynamics", "numpy", "torch", "stable-baselines3", "sb3-contrib", "gymnasium"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def now() -> str:
    """The current time, ISO 8601 with the UTC offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def task_config(
    level: Optional[int] = None,
    preset: Optional[str] = None,
    config: TaskConfig | dict | None = None,
    task_overrides: Optional[dict[str, Any]] = None,
) -> TaskConfig:
    """The task of a run: a level, a preset or a config, with field overrides (``make_config``)."""
    return make_config(level, preset=preset, config=config, **dict(task_overrides or {}))


def policy_kwargs(
    hidden_size: int, delta: float, seed: int, critic: str = "shared", **extra: Any
) -> dict[str, Any]:
    """The ``RNNPolicy`` keyword arguments both trainers pass (``init_seed`` is the run's seed)."""
    return dict(hidden_size=int(hidden_size), delta=float(delta), critic=critic, init_seed=int(seed), **extra)


def build_model(
    config: TaskConfig,
    seed: int,
    policy_kwargs: dict[str, Any],
    n_envs: int,
    ppo_kwargs: Optional[dict[str, Any]] = None,
    device: str = "cpu",
) -> Any:
    """Build the ``RecurrentPPO(RNNPolicy, venv, seed=seed, policy_kwargs=...)`` model both trainers start from.

    The initial weights depend only on ``seed`` and ``policy_kwargs`` (``RNNPolicy`` draws them from a generator
    seeded with ``init_seed``), so RL and SL runs with the same seed start from bit-identical networks.

    Args:
        config: The task (the vector env of ``n_envs`` trials is seeded ``seed``: env ``i`` gets ``seed + i``).
        seed: The run's seed (SB3's global seeding and the env).
        policy_kwargs: ``RNNPolicy`` keyword arguments (see :func:`policy_kwargs`).
        n_envs: Number of parallel trials of the vector env.
        ppo_kwargs: ``RecurrentPPO`` hyperparameters.
        device: Torch device.
    """
    from dm_envs.sb3 import make_sb3_vec_env

    from .policy import RNNPPO, RNNPolicy

    venv = make_sb3_vec_env(n_envs, config=config, seed=seed)
    return RNNPPO(
        RNNPolicy, venv, seed=seed, policy_kwargs=dict(policy_kwargs), device=device, **dict(ppo_kwargs or {})
    )


def stream_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from ``seed`` and ``keys`` (distinct from ``seed + i`` for practical purposes).

    Used for the trials of a resumed training segment, so they differ from the segment before.
    """
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


IDENTITY_KEYS = ("learning_rule", "task_config", "seed", "delta", "hidden_size", "policy_kwargs")


def check_identity(stored: dict[str, Any], requested: dict[str, Any], source: Path) -> None:
    """Raise ``ValueError`` if a resumed run's identity (task, seed, network) differs from the requested one."""
    diffs = []
    for key in IDENTITY_KEYS:
        a, b = json_safe(stored.get(key)), json_safe(requested.get(key))
        if key == "task_config":  # compare as configs (the name is not part of a config's identity)
            same = TaskConfig.from_dict(a) == TaskConfig.from_dict(b)
        else:
            same = a == b
        if not same:
            diffs.append(f"{key}: stored {a!r}, requested {b!r}")
    if diffs:
        raise ValueError(
            f"cannot resume from {source}: it is a different run ({'; '.join(diffs)}). "
            "Pass the same task, seed and network as the original run, or use a new output folder."
        )


def prepare_run(run: RunDir, resume: bool, overwrite: bool) -> Optional[Path]:
    """Create the run folder; return the checkpoint to resume from (or None for a fresh run).

    Raises:
        FileExistsError: the folder holds a run and neither ``resume`` nor ``overwrite`` was asked.
    """
    if overwrite and not resume:
        run.clear()
    elif run.has_run() and not resume:
        raise FileExistsError(
            f"{run.root} already holds a run; pass resume=True (--resume) to continue it, overwrite=True "
            "(--overwrite) to start again, or choose another output folder"
        )
    problem = run.metadata_problem() if resume else None
    run.make()
    checkpoint = run.resume_checkpoint() if resume else None
    if problem is not None:
        aside = set_aside(run.metadata)
        source = f"checkpoint {run.relative(checkpoint)}" if checkpoint else "scratch (no checkpoint to resume)"
        warn(f"{run.metadata} was unreadable ({problem}); moved to {aside.name}, rebuilt from {source}")
    return checkpoint


def default_out_dir(rule: str, config: TaskConfig, delta: float, seed: int) -> Path:
    """``runs/<rule>_<task>_d<delta>_s<seed>``."""
    name = config.name.replace("+", "_")
    return Path("runs") / f"{rule}_{name}_d{delta:g}_s{seed}"


@dataclass
class RunStart:
    """A run folder ready for training: its fixed metadata and, for a resumed run, where it continues from.

    Attributes:
        run: The run folder.
        metadata: The run's fixed facts (the trainer's monitor adds counters, curve and status).
        settings: The run's settings (budget and schedule filled in for its learning rule).
        task: The run's task.
        checkpoint: The checkpoint to resume from, or None for a fresh run.
        resumed: That checkpoint's metadata (with this resume appended to ``resumes``), or None.
        state: That checkpoint's resume state (:mod:`agents.resume`), or None (a fresh run, or a checkpoint saved
            without one).
    """

    run: RunDir
    metadata: dict[str, Any]
    settings: RunConfig
    task: TaskConfig
    checkpoint: Optional[Path] = None
    resumed: Optional[dict[str, Any]] = None
    state: Optional[dict[str, Any]] = None

    @property
    def policy_kwargs(self) -> dict[str, Any]:
        """The run's ``RNNPolicy`` keyword arguments (as recorded)."""
        return dict(self.metadata["policy_kwargs"])

    @property
    def segment(self) -> int:
        """0 for a fresh run, ``k`` for its ``k``-th resumption (keys the fresh training trial streams of a resume
        without a saved state)."""
        return len(self.resumed["resumes"]) if self.resumed else 0

    def announce(self, exact: bool, detail: str) -> None:
        """Record in ``resumes`` whether this resume is exact, and name the checkpoint on stderr (once per resume).

        Args:
            exact: Whether the checkpoint's resume state was restored (the run continues as if never stopped).
            detail: What was restored, or why it could not be.
        """
        record = self.resumed["resumes"][-1]
        record["exact"] = bool(exact)
        if not exact:
            record["note"] = detail
            warn(f"resuming {self.run.root} from {record['from']} ({record['env_steps']:,} env steps) not exactly: "
                 f"{detail}")
        else:
            from tqdm.auto import tqdm

            tqdm.write(f"resuming {self.run.root} from {record['from']} ({record['env_steps']:,} env steps): "
                       f"{detail}", file=sys.stderr)


def open_run(learning_rule: str, settings: RunConfig, hyperparameters: dict[str, Any]) -> RunStart:
    """Prepare the run folder of a training run and its fixed metadata; find the checkpoint to resume from.

    Args:
        learning_rule: ``"rl"`` or ``"sl"``.
        settings: The run's settings: task, network, stopping rule, budget and schedule (recorded), and the folder
            (``out_dir``, default :func:`default_out_dir`), ``resume`` (continue from the newest checkpoint in the
            folder; a fresh run if there is none), ``overwrite`` (delete a previous run in the folder first; ignored
            with ``resume``) and ``device`` (recorded).
        hyperparameters: The learning rule's hyperparameters (recorded).

    Raises:
        FileExistsError: the folder holds a run and neither ``resume`` nor ``overwrite`` was given.
        ValueError: resuming a run with a different task, seed or network.
    """
    settings = settings.for_rule(learning_rule)
    config, seed, delta = settings.task_config(), settings.seed, settings.delta
    pk = policy_kwargs(settings.hidden_size, delta, seed, settings.critic)
    schedule = settings.schedule()
    stopping_rule = settings.stopping_rule().to_dict()
    out_dir = settings.out_dir
    run = RunDir(out_dir if out_dir is not None else default_out_dir(learning_rule, config, delta, seed))
    checkpoint = prepare_run(run, settings.resume, settings.overwrite)
    metadata = {
        "format": METADATA_FORMAT,
        "learning_rule": learning_rule,
        "task": config.name,
        "task_config": config.to_dict(),
        "seed": int(seed),
        "delta": delta,
        "hidden_size": int(pk["hidden_size"]),
        "policy_kwargs": dict(pk),
        "hyperparameters": dict(hyperparameters),
        "target_accuracy": float(stopping_rule["target"]),
        "stopping_rule": dict(stopping_rule),
        "evaluation": {
            "n_trials": int(schedule["eval_trials"]),
            "every_env_steps": int(schedule["eval_every"]),
            "actions": "greedy (argmax of the action logits)",
            "trials": "fresh at every evaluation: numpy default_rng([seed, EVAL_STREAM, k]) for evaluation k",
        },
        "max_steps": int(schedule["max_steps"]),
        "max_time": schedule.get("max_time"),
        "checkpoint_every": int(schedule["checkpoint_every"]),
        "device": settings.device,
        "torch_threads": 1,
        "versions": package_versions(),
    }
    resumed = state = None
    if checkpoint is not None:
        from .io import load_metadata
        from .resume import ResumeStateError, read_resume_state

        resumed = dict(load_metadata(checkpoint))
        check_identity(resumed, metadata, checkpoint)
        try:
            state = read_resume_state(checkpoint)
        except ResumeStateError as err:
            warn(f"{run.relative(checkpoint)}: {err}; resuming without it")
        env_steps = state["counters"]["env_steps"] if state else resumed["env_steps"]
        resumed["resumes"] = list(resumed.get("resumes", [])) + [
            {"from": run.relative(checkpoint), "env_steps": int(env_steps), "time": now()}
        ]
    return RunStart(run=run, metadata=metadata, settings=settings, task=config, checkpoint=checkpoint,
                    resumed=resumed, state=state)


def finish_message(run: RunDir, model: Any, meta: dict[str, Any], progress: bool) -> TrainResult:
    """Wrap up a finished run: print its summary line (with ``progress``) and return the :class:`TrainResult`."""
    if progress:
        print(summary_line(meta, run.root), file=sys.stderr)
    return TrainResult(run_dir=run.root, model=model, metadata=meta)


def summary_line(meta: dict[str, Any], root: PathLike) -> str:
    """One line summing up a finished run (used by both trainers)."""
    rule = meta["learning_rule"].upper()
    acc = meta.get("final_accuracy")
    acc_s = "n/a" if acc is None else f"{acc:.3f}"
    if meta["reached_target"]:
        c = meta["criterion"]
        what = (f"reached {c['accuracy']:.3f} (lower bound {c['lower']:.3f} >= {meta['target_accuracy']:g}) at "
                f"{c['env_steps']:,} env steps / {c['trials']:,} trials in {c['wall_time']:.0f} s")
    else:
        what = f"{meta['status']}: accuracy {acc_s} after {meta['env_steps']:,} env steps in {meta['wall_time']:.0f} s"
    return f"{rule} {meta['task']} seed {meta['seed']} delta {meta['delta']:g}: {what}; run folder {root}"


__all__ = [
    "CROSSING_LEVELS",
    "Checkpoint",
    "RunDir",
    "RunStart",
    "TrainResult",
    "TrainingDiverged",
    "build_model",
    "check_identity",
    "default_out_dir",
    "model_file_problem",
    "finish_message",
    "open_run",
    "package_versions",
    "policy_kwargs",
    "prepare_run",
    "save_model",
    "stream_seed",
    "summary_line",
    "task_config",
]
