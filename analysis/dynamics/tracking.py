"""The attractor landscape over a run's training checkpoints: "progressive sculpting" (paper.md 5.1, R11).

:func:`track` maps every distinct saved network of a run folder (``agents.runs.RunDir.models``) with
:func:`~analysis.dynamics.maps.attractor_map` on the same trials, beside each checkpoint's accuracy, and says when
the map stops changing.

Example:
    >>> rows, summary = track("runs/rl_seed0")                              # doctest: +SKIP
    >>> summary["qp_fraction"]["initial"], summary["qp_fraction"]["final"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from agents.files import json_safe, read_json, write_json, write_rows
from agents.runs import Checkpoint, RunDir
from analysis.dynamics.maps import MAP_STAGES, AttractorMap, _as_dynamics, _get_rollout, attractor_map

__all__ = ["Tracking", "track"]

PathLike = Union[str, "os.PathLike[str]"]


class Tracking(tuple):
    """:func:`track`'s result: the pair ``(rows, summary)`` (so ``rows, summary = track(...)`` works), with the
    per-checkpoint maps and the settings as attributes.

    Attributes:
        rows: Per checkpoint, ordered by training progress: ``checkpoint``, ``aliases``, ``env_steps``,
            ``progress`` (env steps / the last checkpoint's), ``accuracy``, ``accuracy_source`` (``"curve"``: the
            run's accuracy curve at that step; ``"evaluated"``), the map's numbers (``qp_fraction``,
            ``qp_fraction_low_coherence``, ``qp_fraction_high_coherence``, ``qp_fraction_by_coherence``,
            ``qp_point_fraction``, ``n_attractors``, ``n_<kind>`` for every kind, ``mean_multistability``,
            ``lambda1_max``, ``basin_match`` and ``basin_match_own_choice`` for delay/decision maps, ...),
            ``map_change`` (fraction of grid points whose dominant kind differs from the previous checkpoint's;
            NaN for the first) and ``map_change_to_final``. A checkpoint with the same weights as an earlier one
            (``final_model`` saved one env step after ``acc_target``) reuses that one's maps: its row says
            ``same_weights_as`` and a ``map_wall_time_s`` of 0. Metrics of further stages carry the stage as prefix
            (``decision_basin_match``).
        summary: See :func:`track`.
        maps: The :class:`AttractorMap` of every checkpoint (first stage), in row order (empty after :meth:`load`).
        settings: The arguments of the run.

    Example:
        >>> rows, summary = track("runs/rl_seed0")                            # doctest: +SKIP
        >>> [(r["progress"], r["accuracy"], r["qp_fraction"]) for r in rows]  # doctest: +SKIP
        >>> tr = track("runs/rl_seed0"); tr.save("out"); tr.maps[-1].qp_present.shape   # doctest: +SKIP
        (2, 11, 11)
    """

    maps: list[AttractorMap]
    settings: dict[str, Any]

    def __new__(
        cls,
        rows: list[dict[str, Any]],
        summary: dict[str, Any],
        maps: Sequence[AttractorMap] = (),
        settings: Optional[dict[str, Any]] = None,
    ) -> "Tracking":
        self = super().__new__(cls, (list(rows), dict(summary)))
        self.maps = list(maps)
        self.settings = dict(settings or {})
        return self

    def __getnewargs__(self) -> tuple[Any, ...]:  # pickling (e.g. to worker processes)
        return (self.rows, self.summary, self.maps, self.settings)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The per-checkpoint rows."""
        return self[0]

    @property
    def summary(self) -> dict[str, Any]:
        """The summary."""
        return self[1]

    def __repr__(self) -> str:
        return f"Tracking({len(self.rows)} checkpoints, summary={self.summary!r})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``settings``, ``summary`` and ``checkpoints`` (the rows)."""
        return json_safe(dict(settings=self.settings, summary=self.summary, checkpoints=self.rows))

    def save(self, out_dir: PathLike, save_maps: bool = False) -> Path:
        """Write ``track.json`` (:meth:`to_dict`) and ``track.csv`` (the scalar columns of the rows); with
        ``save_maps``, every checkpoint's map as ``maps/<checkpoint>/attractor_map*.{json,npz}``.

        Returns:
            The JSON path.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "track.json"
        write_json(path, self.to_dict())
        write_rows(out / "track.csv", [{k: json_safe(v) for k, v in r.items() if not isinstance(v, (dict, list, tuple))}
                                       for r in self.rows])
        if save_maps:
            for r, m in zip(self.rows, self.maps):
                m.save(out / "maps" / str(r["checkpoint"]))
        return path

    @classmethod
    def load(cls, path: PathLike) -> "Tracking":
        """Read ``track.json`` (a folder or the file); ``maps`` is empty."""
        p = Path(path)
        d = read_json(p / "track.json" if p.is_dir() else p)
        return cls(d["checkpoints"], d["summary"], settings=d.get("settings", {}))


def _curve_accuracy(run: RunDir, ckpt: Checkpoint) -> Optional[float]:
    """The accuracy the run recorded at exactly the checkpoint's env steps (metadata.json, else the zip's own)."""
    from agents import ModelLoadError, load_metadata

    try:
        acc = run.accuracy_curve().get(ckpt.env_steps)
    except (OSError, ValueError):  # an unreadable metadata.json: fall back on the checkpoint's own copy
        acc = None
    if acc is not None:
        return acc
    try:
        curve = load_metadata(ckpt.path).get("accuracy_curve") or []
    except (ModelLoadError, OSError):  # a checkpoint without metadata simply has no curve
        return None
    for entry in curve:
        if int(entry.get("env_steps", -1)) == ckpt.env_steps and entry.get("accuracy") is not None:
            return float(entry["accuracy"])
    return None


def _run_models(run_dir: RunDir) -> list[Checkpoint]:
    """The run's distinct networks (:meth:`RunDir.models`); a folder of plain SB3 zips without the package's metadata
    (``checkpoints/*.zip`` of SB3's ``CheckpointCallback``, ``final_model.zip``: an LSTM or GRU policy trained in
    plain SB3 code) gives its zips at the ``num_timesteps`` each saved."""
    import json
    import zipfile

    try:
        return run_dir.models()
    except FileNotFoundError:
        pass
    by_steps: dict[int, list[Path]] = {}
    paths = sorted(run_dir.checkpoints.glob("*.zip")) + ([run_dir.final_model] if run_dir.final_model.exists() else [])
    for path in paths:
        try:
            with zipfile.ZipFile(path) as zf:
                steps = int(json.loads(zf.read("data"))["num_timesteps"])
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError):
            continue
        by_steps.setdefault(steps, []).append(path)
    if not by_steps:
        raise FileNotFoundError(f"no readable model in {run_dir.root} (expected checkpoints/*.zip or final_model.zip)")
    out = []
    for steps in sorted(by_steps):
        fs = sorted(by_steps[steps], key=lambda f: (f.stem != "final_model", f.stem))
        out.append(Checkpoint(fs[0], fs[0].stem, steps, tuple(f.stem for f in fs[1:])))
    return out


def _weights_key(model: Any) -> str:
    """A digest of a model's policy weights: checkpoints with equal digests are the same network."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _policy_accuracy(model: Any, dyn: Any, batch: Any) -> float:
    """Greedy accuracy on ``batch``: :func:`agents.evaluate_policy` for the package's RNN, the map's own forward
    pass (the states SB3 computes) for any other recurrent policy."""
    import agents

    if isinstance(getattr(model, "policy", model), agents.RNNPolicy):
        return float(agents.evaluate_policy(model, batch).accuracy)
    from dm_envs import score_actions

    return float(score_actions(batch, dyn.forward(batch, return_hidden=False).actions).accuracy)


def _map_row(amap: AttractorMap, prefix: str = "") -> dict[str, Any]:
    s = amap.summary()
    row: dict[str, Any] = dict(
        qp_fraction=s["qp_fraction"], qp_point_fraction=s["qp_point_fraction"], n_attractors=s["n_attractors"],
        qp_fraction_reachable=s["qp_fraction_reachable"], divergent_fraction_reachable=s["divergent_fraction_reachable"],
        unresolved_fraction_reachable=s["unresolved_fraction_reachable"],
        mean_multistability=s["mean_multistability"], lambda1_max=s["lambda1"]["max_over_points"],
        unconverged=s["unconverged"],
    )
    row.update({f"n_{k}": v for k, v in s["counts"].items()})
    for k in ("qp_fraction_low_coherence", "qp_fraction_high_coherence", "qp_fraction_by_coherence", "basin_match",
              "basin_match_own_choice"):
        if k in s:
            row[k] = s[k]
    if amap.stage != "stimulus":
        row["decision_labels"] = sorted({a["label"] for a in s["decision_attractors"] if a["trials"] > 0})
    row["map_wall_time_s"] = amap.info.get("wall_time_s")
    return {prefix + k: v for k, v in row.items()}


def _pearson(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _track_summary(rows: list[dict[str, Any]], change_tol: float) -> dict[str, Any]:
    qp = np.array([r["qp_fraction"] for r in rows], dtype=float)
    acc = np.array([np.nan if r["accuracy"] is None else r["accuracy"] for r in rows], dtype=float)
    change = np.array([r["map_change"] for r in rows[1:]], dtype=float)
    # the first checkpoint after which no consecutive change exceeds change_tol
    k = len(rows) - 1
    while k > 0 and change[k - 1] <= change_tol:
        k -= 1
    fin = np.isfinite(qp)
    return dict(
        n_checkpoints=len(rows),
        qp_fraction=dict(initial=qp[0], final=qp[-1], min=np.nanmin(qp) if fin.any() else None,
                         max=np.nanmax(qp) if fin.any() else None,
                         argmax_progress=rows[int(np.nanargmax(qp))]["progress"] if fin.any() else None),
        qp_range=float(np.nanmax(qp) - np.nanmin(qp)) if fin.any() else None,
        qp_fraction_reachable=dict(initial=rows[0]["qp_fraction_reachable"], final=rows[-1]["qp_fraction_reachable"]),
        accuracy=dict(initial=acc[0], final=acc[-1]),
        qp_accuracy_correlation=_pearson(qp, acc),
        map_stable_from=dict(checkpoint=rows[k]["checkpoint"], env_steps=rows[k]["env_steps"],
                             progress=rows[k]["progress"]),
        change_tol=change_tol,
    )


def track(
    run_folder: PathLike,
    grid: Union[int, Sequence[float], np.ndarray] = 11,
    stage: Union[str, Sequence[str]] = "stimulus",
    *,
    n_init: int = 16,
    n_observed: int = 8,
    trials: int = 128,
    seed: int = 0,
    checkpoints: Optional[Sequence[str]] = None,
    evaluate: str = "missing",
    eval_trials: int = 1000,
    change_tol: float = 0.0,
    progress: bool = True,
    config: Any = None,
    **map_kwargs: Any,
) -> Tracking:
    """The attractor landscape over a run's checkpoints, beside each checkpoint's accuracy.

    Every distinct saved model of the run (``agents.runs.RunDir.models``) is mapped with :func:`attractor_map` on the
    same trials (drawn once from the run's task with ``seed``). The defaults are coarser than a single map's
    (11 x 11 grid, 16 random + 8 observed initial states: about 4,000 orbits per checkpoint), so about ten
    checkpoints of a 250-unit network take a few minutes.

    Args:
        run_folder: A run folder of :func:`agents.train_rl` / :func:`agents.train_sl`.
        grid: Stimulus grid (see :func:`stimulus_grid`).
        stage: Stage to map, or several (the first gives the unprefixed columns and the map-change measures; the
            others' columns are prefixed with ``<stage>_``).
        n_init: Random initial states per input.
        n_observed: Observed stimulus-onset states per input.
        trials: Trials run through each checkpoint (observed states and decision basins).
        seed: Seed of the trials, random states and evaluation trials.
        checkpoints: Stems to include (e.g. ``["step_0", "final_model"]``; default: all).
        evaluate: Where the accuracy comes from: ``"missing"`` (the run's accuracy curve at the checkpoint's env
            steps, evaluating only checkpoints not on it), ``"always"`` (evaluate every checkpoint on the same
            ``eval_trials`` fresh trials) or ``"never"`` (``None`` when not on the curve).
        eval_trials: Trials per evaluation (``agents.evaluate_policy``, greedy actions).
        change_tol: A consecutive change of the dominant-kind map up to this fraction of grid points counts as no
            change (for ``summary["map_stable_from"]``).
        progress: Progress bar over checkpoints.
        config: The task (:class:`dm_envs.TaskConfig`; default: the last checkpoint's metadata). Needed for a run of
            plain SB3 zips (any sb3-contrib recurrent policy, e.g. an LSTM saved by ``CheckpointCallback``; their
            maps go through :mod:`analysis.dynamics.generic`).
        **map_kwargs: Passed to :func:`attractor_map` (and on to ``find_attractors``).

    Returns:
        A :class:`Tracking`, the pair ``(rows, summary)``: ``rows`` (see there) and ``summary``:
        ``n_checkpoints``, ``qp_fraction`` (``initial``, ``final``, ``min``, ``max``, ``argmax_progress``),
        ``qp_range`` (max - min), ``accuracy`` (``initial``, ``final``), ``qp_accuracy_correlation`` (Pearson over
        checkpoints; NaN with fewer than 3 or constant values), ``map_stable_from`` (the checkpoint after which
        the dominant-kind map no longer changes by more than ``change_tol``: its name, env steps and progress).

    Raises:
        FileNotFoundError: no readable model in the folder.
        ValueError: a bad ``evaluate`` or an unknown checkpoint name.

    Example:
        >>> rows, summary = track("runs/bench_sl", grid=11)                            # doctest: +SKIP
        >>> summary["qp_range"], summary["map_stable_from"]["progress"]                # doctest: +SKIP
        (0.02, 0.67)
        >>> track("runs/bench_sl").save("runs/bench_sl/track")                         # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    import agents
    from dm_envs import TaskConfig, sample_trials

    if evaluate not in ("missing", "always", "never"):
        raise ValueError(f"evaluate must be 'missing', 'always' or 'never', got {evaluate!r}")
    stages = [stage] if isinstance(stage, str) else list(stage)
    for s in stages:
        if s not in MAP_STAGES:
            raise ValueError(f"stage must be one of {MAP_STAGES}, got {s!r}")
    root = Path(run_folder)
    run_dir = RunDir(root)
    ckpts = _run_models(run_dir)
    if checkpoints is not None:
        names = {c.name for c in ckpts} | {a for c in ckpts for a in c.aliases}
        unknown = sorted(set(checkpoints) - names)
        if unknown:
            raise ValueError(f"unknown checkpoints {unknown}; the run has {sorted(names)}")
        ckpts = [c for c in ckpts if c.name in checkpoints or set(c.aliases) & set(checkpoints)]
    if config is not None:
        cfg = config
    else:
        try:
            cfg = TaskConfig.from_dict(agents.load_metadata(ckpts[-1].path)["task_config"])
        except (agents.ModelLoadError, KeyError) as err:
            raise ValueError(f"{ckpts[-1].path} carries no task config: pass config= (dmd analyze track "
                             "--level N)") from err
    batch = sample_trials(cfg, int(trials), np.random.default_rng(seed), noise=True)
    eval_batch = None
    end_steps = max(c.env_steps for c in ckpts)
    rows: list[dict[str, Any]] = []
    maps: list[AttractorMap] = []
    mapped: dict[str, tuple[str, list[AttractorMap]]] = {}  # weights -> (first checkpoint, its maps)
    bar = tqdm(ckpts, desc="checkpoints", unit="ckpt", disable=not progress)
    for ck in bar:
        bar.set_postfix_str(ck.name)
        model = agents.load_model(ck.path, rnn_only=False)
        dyn, source = _as_dynamics(model)  # source: the RNNPolicy model (exact SB3 states), else None
        if dyn.config is None or config is not None:
            dyn = dyn.with_config(cfg)
        dyn.metadata["path"] = str(ck.path)
        run = _get_rollout(dyn, source, batch, seed)
        acc, source = (None, None) if evaluate == "always" else (_curve_accuracy(run_dir, ck), "curve")
        if acc is None and evaluate != "never":
            if eval_batch is None:
                eval_batch = sample_trials(cfg, int(eval_trials), np.random.default_rng([seed, 0xE7A1]))
            acc, source = _policy_accuracy(model, dyn, eval_batch), "evaluated"
        row: dict[str, Any] = dict(checkpoint=ck.name, aliases=list(ck.aliases), env_steps=ck.env_steps,
                                   progress=ck.env_steps / end_steps if end_steps else 1.0, accuracy=acc,
                                   accuracy_source=source if acc is not None else None)
        key = _weights_key(model)
        twin = mapped.get(key)  # an earlier checkpoint with these very weights (final_model after acc_target)
        if twin is None:
            stage_maps = [attractor_map(dyn, grid, s, n_init=n_init, n_observed=n_observed, seed=seed, rollout=run,
                                        progress=False, **map_kwargs) for s in stages]
            for m in stage_maps:
                m.info["model"] = str(ck.path)
            mapped[key] = (ck.name, stage_maps)
        else:  # the same weights, trials and seed give the same maps: reuse them rather than recompute
            stage_maps = twin[1]
            row["same_weights_as"] = twin[0]
        for j, (s, m) in enumerate(zip(stages, stage_maps)):
            row.update(_map_row(m, "" if j == 0 else f"{s}_"))
            if twin is not None:
                row[("" if j == 0 else f"{s}_") + "map_wall_time_s"] = 0.0
        maps.append(stage_maps[0])
        rows.append(row)
    final_dom = maps[-1].dominant
    for j, (row, m) in enumerate(zip(rows, maps)):
        row["map_change"] = float((m.dominant != maps[j - 1].dominant).mean()) if j else float("nan")
        row["map_change_to_final"] = float((m.dominant != final_dom).mean())
    settings = json_safe(dict(run_folder=str(root), grid=grid if isinstance(grid, int) else list(grid),
                               stages=stages, n_init=n_init, n_observed=n_observed, trials=trials, seed=seed,
                               evaluate=evaluate, eval_trials=eval_trials, change_tol=change_tol,
                               map_kwargs=map_kwargs))
    return Tracking(rows, json_safe(_track_summary(rows, change_tol)), maps, settings)
