"""The whole dynamics analysis of one saved policy, written to a folder (``dmd analyze dynamics``).

:func:`run_dynamics_analysis` maps the attractors of every stage:

* **stimulus stage**: :func:`~analysis.dynamics.maps.attractor_map` over the coherence grid in every context, from
  states observed at stimulus onset plus random states per input;
* **delay and decision stages**: :func:`~analysis.dynamics.maps.attractor_map` per context from the end-of-stimulus
  states of the trials (decision attractors ``FP+``/``FP-``, each trial's basin against its correct choice and the
  network's own choice), plus every fixed point the exact solver finds
  (:func:`~analysis.dynamics.fixed_point.fixed_points`).

It writes ``summary.json`` (every map's numbers: counts per kind, QP fraction overall / per ``|coherence|`` / low and
high halves, multistability, Lyapunov exponents, decision-basin match; timings), ``attractors.csv`` (one row per
attractor, all stages), ``basins.csv`` (one row per trial and stage), ``fixed_points.csv``, the maps
(``attractor_map.{json,npz}``, ``attractor_map_delay.*``, ``attractor_map_decision.*``) and figures:
``attractor_map.png``, ``lyapunov.png``, ``qp_by_coherence.png``, ``trajectories_pca.png``, ``decision_basins.png``.

Example:
    >>> summary = run_dynamics_analysis("runs/rl/final_model.zip", "runs/rl/dynamics")   # doctest: +SKIP
    >>> summary["stimulus"]["qp_fraction"]                                              # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.files import write_json, write_rows

__all__ = ["FIGURE_FORMATS", "run_dynamics_analysis", "write_figures"]

FIGURE_FORMATS = ("png", "pdf", "svg")
"""Formats the figures can be written in (``dmd analyze ... --format``)."""


def _basin_rows(dmap: Any) -> list[dict[str, Any]]:
    b = dmap.basins
    labels = dmap.labels()
    rows = []
    for n in range(len(b)):
        row: dict[str, Any] = {"stage": dmap.stage, "trial": n, "context": int(b.context[n])}
        for s in range(b.coherence.shape[1]):
            row[f"c{s + 1}"] = float(b.signed[n, s]) if np.isfinite(b.signed[n, s]) else float(b.coherence[n, s])
        a = int(b.attractor[n])
        row.update(relevant=float(b.relevant[n]), correct_choice=int(b.correct_choice[n]),
                   own_choice=int(b.own_choice[n]), basin=labels[a] if a >= 0 else "", basin_choice=int(b.choice[n]),
                   match=bool(b.match[n]))
        rows.append(row)
    return rows


def _fixed_point_rows(dyn: Any, stage: str, ctx: int, x: np.ndarray, seeds: np.ndarray, seed: int) -> list[dict]:
    from analysis.dynamics.maps import attractor_label, choice_readout
    from analysis.network import Network

    if isinstance(dyn, Network):
        from analysis.dynamics.fixed_point import fixed_points
    else:
        from analysis.dynamics.generic import fixed_points
    out = []
    for fp in fixed_points(dyn, x, init_states=seeds, n_init=32, seed=seed):
        choice = int(choice_readout(dyn, fp.state))
        out.append({"stage": stage, "context": ctx, "stable": fp.stable, "spectral_radius": fp.spectral_radius,
                    "n_active": fp.n_active, "choice": choice,
                    "label": ("" if fp.stable else "unstable ") + attractor_label("fixed_point", choice,
                                                                                  dyn.config.n_choices),
                    "action": fp.decision, "norm": fp.norm, "residual": fp.residual})
    return out


def run_dynamics_analysis(
    model_path: Any,
    out_dir: Any,
    *,
    config: Any = None,
    grid: int = 21,
    n_init: int = 32,
    observed: int = 16,
    trials: int = 256,
    n_transient: int = 2000,
    n_record: int = 2000,
    seed: int = 0,
    jobs: int = -1,
    figures: bool = True,
    fmt: str = "png",
    progress: bool = True,
) -> dict[str, Any]:
    """Every attractor map of a saved policy, its decision basins and fixed points, written to ``out_dir``.

    The package's ReLU ``agents.RNNPolicy`` is analysed exactly (:class:`analysis.network.Network`); any other
    sb3-contrib recurrent policy (a stock ``MlpLstmPolicy``, a GRU core) by the generic path
    (:mod:`analysis.dynamics.generic`; the summary's ``dynamics`` says which).

    Args:
        model_path: A saved model zip (RL or SL, or any ``RecurrentPPO`` zip).
        out_dir: Output folder (created).
        config: The task (:class:`dm_envs.TaskConfig`; default: the model's ``dmd_metadata``, required for models
            saved without it, e.g. trained in plain SB3 code).
        grid: Signed-coherence values per stream of the stimulus-stage map.
        n_init: Random initial states per input.
        observed: Observed stimulus-onset states per input.
        trials: Trials run through the policy (observed states, basins).
        n_transient, n_record: Steps discarded and recorded per orbit (:func:`~analysis.dynamics.attractors.find_attractors`).
        seed: Seed of the trials and the search.
        jobs: Worker processes of the attractor search (-1: one per CPU; the numbers do not depend on it).
        figures: Also write the figures.
        fmt: Figure format: ``"png"``, ``"pdf"`` or ``"svg"``.
        progress: Progress bars.

    Returns:
        The summary written to ``summary.json``.
    """
    import agents
    from analysis.dynamics.generic import load_dynamics
    from analysis.dynamics.maps import attractor_map
    from analysis.network import Network, rollout
    from dm_envs import sample_trials, stage_input

    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"fmt must be one of {FIGURE_FORMATS}, got {fmt!r}")
    out = Path(out_dir)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model = agents.load_model(model_path, rnn_only=False)
    dyn = load_dynamics(model, config=config)
    exact = isinstance(dyn, Network)
    if dyn.config is None:
        raise ValueError(f"{model_path}: the model carries no task config (dmd_metadata['task_config']): pass the "
                         "task (dmd analyze dynamics --level N and/or -o KEY=VALUE)")
    cfg = dyn.config
    if dyn.input_size != cfg.obs_dim:
        raise ValueError(f"{model_path}: the policy reads {dyn.input_size} inputs, the task {cfg.name} has "
                         f"{cfg.obs_dim}: pass the task it was trained on (--level, -o)")
    out.mkdir(parents=True, exist_ok=True)
    if exact:  # the policy's own float32 torch states, as in SB3
        run = rollout(model, trials, seed=seed, noise=True, config=cfg)
    else:
        run = dyn.forward(sample_trials(cfg, int(trials), np.random.default_rng(seed), noise=True))
    timings["rollout"] = time.perf_counter() - t0
    kw = dict(n_transient=n_transient, n_record=n_record, n_jobs=jobs)
    maps = {}
    for stage in ("stimulus", "delay", "decision"):
        t0 = time.perf_counter()
        maps[stage] = attractor_map(dyn, grid, stage, n_init=n_init, seed=seed, observed=observed > 0,
                                    n_observed=observed, rollout=run, progress=progress, **kw)
        maps[stage].info["model"] = str(model_path)
        maps[stage].save(out)
        timings[f"{stage}_map"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    end = run.stage_states("stimulus", "last").astype(np.float64)
    rng = np.random.default_rng(seed)
    contexts = maps["delay"].contexts
    fp_rows: list[dict[str, Any]] = []
    for stage in ("delay", "decision"):
        for ctx in contexts:
            sel = np.flatnonzero(run.trials.context == ctx)
            seeds = end[np.sort(rng.choice(sel, min(64, sel.size), replace=False))] if sel.size else None
            fp_rows += _fixed_point_rows(dyn, stage, int(ctx), stage_input(cfg, stage, context=int(ctx)), seeds, seed)
    timings["fixed_points"] = time.perf_counter() - t0

    basins = {
        stage: {"trials": len(maps[stage].basins), "basin_matches_correct_choice": maps[stage].basins.basin_match,
                "basin_match_own_choice": maps[stage].basins.basin_match_own_choice}
        for stage in ("delay", "decision")
    }
    summary: dict[str, Any] = dict(
        model=str(model_path), learning_rule=dyn.metadata.get("learning_rule"), env_steps=dyn.metadata.get("env_steps"),
        dynamics="relu_exact" if exact else f"generic_{dyn.kind}", state_size=dyn.hidden_size, task=cfg.to_dict(), grid=grid, n_init=n_init, observed=observed, trials=trials, n_transient=n_transient,
        n_record=n_record, seed=seed,
        **{stage: m.to_dict() for stage, m in maps.items()}, decision_basins=basins,
        fixed_points={stage: {"stable": sum(r["stable"] for r in fp_rows if r["stage"] == stage),
                              "unstable": sum(not r["stable"] for r in fp_rows if r["stage"] == stage)}
                      for stage in ("delay", "decision")},
        timings_s=timings,
    )
    write_rows(out / "attractors.csv", [r for m in maps.values() for r in m.rows()])
    write_rows(out / "basins.csv", _basin_rows(maps["delay"]) + _basin_rows(maps["decision"]))
    write_rows(out / "fixed_points.csv", fp_rows)
    if figures:
        t0 = time.perf_counter()
        write_figures(out, maps, run, fmt=fmt)
        timings["figures"] = time.perf_counter() - t0
    write_json(out / "summary.json", summary)
    return summary


def write_figures(out: Path, maps: dict[str, Any], run: Any, fmt: str = "png") -> list[Path]:
    """Write the dynamics figures of ``maps`` (``stimulus``, ``delay``, ``decision``) into ``out``, as ``fmt``
    (``"png"``, ``"pdf"`` or ``"svg"``)."""
    from analysis.dynamics import figures as fd

    paths = []
    stim = maps.get("stimulus")
    if stim is not None:
        for name, fn in (("attractor_map", fd.plot_attractor_map), ("lyapunov", fd.plot_lyapunov),
                         ("qp_by_coherence", fd.plot_qp_by_coherence)):
            fn(stim, out / f"{name}.{fmt}")
            paths.append(out / f"{name}.{fmt}")
    fd.plot_trajectories_pca(run, [m for m in maps.values() if m is not None], out / f"trajectories_pca.{fmt}")
    paths.append(out / f"trajectories_pca.{fmt}")
    dec = maps.get("decision") or maps.get("delay")
    if dec is not None and dec.basins is not None:
        fd.plot_decision_basins(run, dec, out / f"decision_basins.{fmt}")
        paths.append(out / f"decision_basins.{fmt}")
    return paths
