"""One cell of an experiment: train a network with one learning rule, then measure it.

:func:`run_cell` is what the runner executes in a worker. Every step is resumable: the trainer resumes from its
newest checkpoint (and returns at once when the run already finished), and each analysis writes its numbers to the
cell folder, where a rerun finds them and skips the step. Training runs the dynamics probe at every checkpoint
(:class:`~analysis.dynamics.probe.DynamicsProbe`: ``dynamics/*`` scalars and images in the run's TensorBoard folder);
``dynamics_probe = false`` in a spec's ``[analysis]`` table turns it off.

**Result schema** (the ``result.json`` of a cell, read by :mod:`analysis.experiments.report`):

``training``
    ``reached_target``, ``status``, ``final_accuracy``, ``steps_to_criterion`` (env steps for RL, supervised time
    steps for SL), ``trials_to_criterion``, ``wall_time_s``, ``accuracy_by_coherence`` (``{"|c|": acc}`` on
    ``eval_trials`` fresh trials, greedy actions), ``low_coherence_accuracy`` (at the lowest training coherence).
``dynamics``
    the stimulus-stage attractor map (``qp_fraction``, ``qp_fraction_by_coherence``, ``qp_fraction_low_coherence``,
    ``qp_fraction_high_coherence``, ``kind_counts``, ...) and ``decision_basin_match`` (delay-stage basins of the
    end-of-stimulus states that match the correct choice). The grids are in ``attractor_map.npz``.
``sculpting``, ``sculpting_summary``
    the landscape over the run's checkpoints (``progress``, ``accuracy``, ``qp_fraction``, population sizes and
    balance per checkpoint); ``population_crystallized_progress``: the training progress after which population
    membership stops changing (1.0 if it still changes at the end).
``populations``, ``information``, ``robustness``
    group sizes and balance; selectivity and stimulus information; accuracy against input noise, kicks and
    ablations (summaries; the full curves too).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from agents.files import read_json, write_json
from agents.runs import RunDir
from .spec import Cell, ExperimentSpec

EVAL_TRIALS = 10000
"""Fresh trials (a stream of their own, never seen by the stopping rule) for the final accuracy of each network."""

DEFAULT_ANALYSIS = {"grid": 21, "n_init": 32, "track_grid": 9, "track_n_init": 8, "population_trials": 1000,
                    "n_shuffles": 2000, "decision_states": "delay_end", "n_observed": 16, "initial": False,
                    "analyse_misses": False, "dynamics_probe": True}
"""Analysis settings of a cell, overridable by the spec's ``analysis`` table. ``decision_states`` (see
:func:`analysis.populations.groups.network_signatures`) is one source for the whole experiment: the default,
``"delay_end"``, reads every network the same way (the states it reports its choice from), where ``"auto"`` would
read networks with bounded decision attractors from those and the others from their delay-end states.
``n_observed``: trial-visited states per context that start (and weight) the stimulus-stage attractor map.
``initial``: also measure the pair's initial weights (step 0). ``analyse_misses``: also analyse networks that did not
reach the criterion (they are left out of every comparison, so by default only their accuracy is measured).
``dynamics_probe``: log the dynamics probe (:class:`analysis.dynamics.probe.DynamicsProbe`) to each run's TensorBoard
at every checkpoint; it never changes training."""


def _cached(path: Path, compute: Callable[[], dict]) -> dict:
    """Return the JSON at ``path``, or compute, write (atomically) and return it."""
    if path.exists():
        return read_json(path)
    value = compute()
    write_json(path, value)
    return value


def _train(spec: ExperimentSpec, cell: Cell, run_dir: Path) -> dict:
    from agents import train_rl, train_sl
    from agents.config import make_configs

    run, hyperparameters = make_configs(
        cell.rule,
        level=cell.level,
        task_overrides=dict(spec.task) or None,
        seed=cell.seed,
        delta=cell.delta,
        hidden_size=spec.hidden_size,
        target_accuracy=spec.target_accuracy,
        out_dir=run_dir,
        resume=True,
        progress=False,
        **(spec.rl if cell.rule == "rl" else spec.sl),
    )
    hooks = []
    if {**DEFAULT_ANALYSIS, **spec.analysis}["dynamics_probe"]:  # dynamics/* in TensorBoard at every checkpoint
        from analysis.dynamics.probe import DynamicsProbe

        hooks.append(DynamicsProbe())
    result = (train_rl if cell.rule == "rl" else train_sl)(run, hyperparameters, checkpoint_hooks=hooks)
    meta = result.metadata
    if result.status == "interrupted":
        raise KeyboardInterrupt("training was interrupted")
    return {
        "reached_target": bool(meta.get("reached_target")),
        "status": meta.get("status"),
        "final_accuracy": meta.get("final_accuracy"),
        "steps_to_criterion": meta.get("steps_to_criterion"),
        "trials_to_criterion": meta.get("trials_to_criterion"),
        "wall_time_s": meta.get("wall_time_s", meta.get("wall_time")),
    }


def _final_accuracy(model_path: Path, seed: int) -> dict:
    """Accuracy on ``EVAL_TRIALS`` fresh trials, independent of the evaluations that fired the stopping rule.

    Greedy actions with the training evaluator (``accuracy``, per coherence), and actions sampled from the policy's
    softmax (``sampled_accuracy``: how an RL policy acts while it is trained). The tasks are open loop (actions never
    change the observations), so sampling every step of the trials' logits is exact."""
    from agents import load_model, task_config_of
    from agents.evaluation import evaluate_policy
    from analysis.network import Network
    from dm_envs import sample_trials, score_actions

    model = load_model(model_path)
    cfg = task_config_of(model)
    trials = sample_trials(cfg, EVAL_TRIALS, np.random.default_rng([seed, 0xACC]))
    ev = evaluate_policy(model.policy, trials)
    by = {f"{c:g}": float(a) for c, a in ev.by_coherence.items()}
    lowest = min(ev.by_coherence)
    logits = Network.load(model).forward(trials).logits
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
    u = np.random.default_rng([seed, 0x5A3]).random(logits.shape[:2] + (1,))
    sampled = np.minimum((u > cdf).sum(axis=-1), logits.shape[-1] - 1)
    return {"accuracy": float(ev.accuracy), "accuracy_by_coherence": by, "eval_trials": EVAL_TRIALS,
            "low_coherence_accuracy": float(ev.by_coherence[lowest]),
            "sampled_accuracy": float(score_actions(trials, sampled).accuracy)}


def run_cell(spec_dict: dict, cell_dict: dict, cell_dir: str) -> dict:
    """Train and analyse one network; returns the result dict (see the module docstring for its schema)."""
    import torch

    torch.set_num_threads(1)
    spec = ExperimentSpec.from_dict(spec_dict)
    cell = Cell(**cell_dict)
    folder = Path(cell_dir)
    run_dir = folder / "run"
    opts = {**DEFAULT_ANALYSIS, **spec.analysis}
    t0 = time.time()

    training = _cached(folder / "training.json", lambda: _train(spec, cell, run_dir))
    model_path = RunDir(run_dir).trained_model()
    training.update(_cached(folder / "accuracy.json", lambda: _final_accuracy(model_path, cell.seed)))
    result: dict[str, Any] = {"training": training}
    t_analysis = time.time()
    if not (training.get("reached_target") or opts["analyse_misses"]):
        result["analyses"] = "skipped: the network did not reach the criterion"
        result["analysis_wall_time_s"] = 0.0
        result["cell_wall_time_s"] = time.time() - t0
        return result

    if "dynamics" in spec.analyses:
        result["dynamics"] = _cached(folder / "dynamics.json", lambda: _dynamics(model_path, folder, opts, cell.seed))
        if opts["initial"] and ("sl" not in spec.rules or cell.rule == "sl"):  # shared by the pair: measured once
            result["initial"] = _cached(folder / "initial.json", lambda: _initial(run_dir, folder, opts, cell.seed,
                                                                                  spec.analyses))
        if spec.track_checkpoints:
            track = _cached(folder / "sculpting.json", lambda: _sculpting(run_dir, opts, cell.seed))
            result["sculpting"], result["sculpting_summary"] = track["rows"], track["summary"]
    if "populations" in spec.analyses:
        pops = _cached(folder / "populations.json", lambda: _populations(model_path, folder, opts, cell.seed))
        result.update(pops)
    result["analysis_wall_time_s"] = time.time() - t_analysis
    result["cell_wall_time_s"] = time.time() - t0
    return result


def _initial(run_dir: Path, folder: Path, opts: dict, seed: int, analyses: Any) -> dict:
    """The same measurements on the initial weights (the run's step-0 checkpoint): what training added."""
    ckpt = RunDir(run_dir).checkpoint_at(0)
    if ckpt is None:
        return {"missing": "no step-0 checkpoint"}
    out: dict[str, Any] = {"dynamics": _dynamics(ckpt, folder / "initial", opts, seed, delay=False)}
    if "populations" in analyses:
        out.update(_populations(ckpt, folder / "initial", opts, seed))
    return out


def _dynamics(model_path: Path, folder: Path, opts: dict, seed: int, delay: bool = True) -> dict:
    from analysis.dynamics.maps import attractor_map

    folder.mkdir(parents=True, exist_ok=True)
    stim = attractor_map(model_path, grid=opts["grid"], stage="stimulus", n_init=opts["n_init"], seed=seed,
                         n_observed=opts["n_observed"], progress=False)
    stim.save(folder / "attractor_map")
    # the report reads the QP-presence grid from the cell folder
    npz = folder / "attractor_map" / "attractor_map.npz"
    if npz.exists():
        os.replace(npz, folder / "attractor_map.npz")
    out = dict(stim.to_dict().get("summary", stim.to_dict()))
    if delay:
        dmap = attractor_map(model_path, stage="delay", n_init=opts["n_init"], seed=seed, progress=False)
        dsum = dmap.to_dict().get("summary", dmap.to_dict())
        out["decision_basin_match"] = dsum.get("basin_match")
        out["decision"] = dsum
    return out


def _sculpting(run_dir: Path, opts: dict, seed: int) -> dict:
    from analysis.dynamics.tracking import track
    from analysis.populations.tracking import track_populations

    rows, summary = track(run_dir, grid=opts["track_grid"], n_init=opts["track_n_init"], seed=seed, progress=False)
    pops = track_populations(run_dir, seed=seed, progress=False)
    by_name = {r["checkpoint"]: r for r in pops.rows}
    for row in rows:  # the same checkpoints: add their population sizes, balance and membership stability
        p = by_name.get(row.get("checkpoint"), {})
        row.update({"population_sizes": p.get("sizes"), "balance_index": p.get("balance_index"),
                    "population_jaccard": (p.get("jaccard") or {}).get("mean")})
    at = pops.summary["crystallized_at"]
    summary = dict(summary)
    summary["population_crystallized_progress"] = 1.0 if at is None else at["progress"]
    return {"rows": rows, "summary": summary}


def _populations(model_path: Path, folder: Path, opts: dict, seed: int) -> dict:
    from analysis.network import Network
    from analysis.populations.pipeline import run_population_analysis

    rep = run_population_analysis(Network.load(model_path), n_trials=opts["population_trials"],
                                  seed=seed, n_shuffles=opts["n_shuffles"], skip=["connectivity"],
                                  decision_states=opts["decision_states"])
    summary = rep.summary()
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "population_summary.json", summary)
    return _population_schema(summary)


def _mean(values: Any) -> float:
    v = np.asarray([np.nan if x is None else x for x in (values or [])], dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _population_schema(s: dict) -> dict:
    """The numbers the report compares, picked out of the population analysis summary."""
    pops = s.get("populations", {})
    sizes = pops.get("sizes") or {}
    out: dict[str, Any] = {
        "populations": {
            "sizes": sizes,
            "balance_index": pops.get("balance"),
            "balance_defined": bool(sizes.get("G+", 0) + sizes.get("G-", 0) > 0),
            "decision_attractors": [a for a in s.get("attractors", []) if a.startswith("FP")],
            "decision_source": s.get("decision_source"),
            "readout_count_balance": (s.get("readout_symmetry") or {}).get("count_balance"),
        }
    }
    sel = s.get("selectivity") or {}
    stim = ((sel.get("stage_by_population") or {}).get("stimulus") or {}).get("all") or {}
    out["information"] = {
        "fraction_selective": sel.get("fraction_selective"),
        "mixed_fraction": sel.get("mixed_fraction"),
        "coherence_mi_stimulus": stim.get("relevant_coherence"),
    }
    rob = s.get("robustness") or {}
    noise, kicks, abl = rob.get("noise") or {}, rob.get("kicks") or {}, rob.get("ablation") or {}
    clean = s.get("accuracy")  # the same trials, no perturbation: each network's own reference
    curve = dict(zip(noise.get("scales", []), noise.get("accuracy", [])))
    harder = [a for k, a in curve.items() if k > 1 and a is not None]
    out["robustness"] = {
        "clean_accuracy": clean,
        # drops from the network's own accuracy: noise above the training amplitude, and silenced units
        "noise_drop": (curve[1.0] - float(np.mean(harder))) if 1.0 in curve and harder and curve[1.0] is not None
        else None,
        "ablation_drop": (clean - _mean((abl.get("mean_accuracy") or {}).get("random"))) if clean is not None
        else None,
        "noise_curve": {f"{k:g}": a for k, a in zip(noise.get("scales", []), noise.get("accuracy", []))},
        "noise_mean_accuracy": _mean(noise.get("accuracy")),
        "kick_curve": {f"{k:g}": a for k, a in zip(kicks.get("sizes", []), kicks.get("survival", []))},
        "kick_mean_survival": _mean(kicks.get("survival")),
        "ablation_mean_accuracy": _mean((abl.get("mean_accuracy") or {}).get("random")),
        "ablation_targeted_mean_accuracy": {g: _mean(v) for g, v in (abl.get("mean_accuracy") or {}).items()
                                            if g != "random"},
    }
    return out


__all__ = ["run_cell", "DEFAULT_ANALYSIS", "EVAL_TRIALS"]
