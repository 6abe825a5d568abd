"""``dmd analyze populations``: the population, information, connectivity, crystallization, PCA and robustness
analysis of one network, and the pipeline behind it (:func:`run_population_analysis`, reused by the benchmark).

``dmd analyze populations MODEL --out DIR`` reads a saved model (``MODEL.zip``, through ``agents.load_model``; its
task comes from the model's metadata) or plain weights (``MODEL.npz`` with ``W_rec, W_in, W_out`` and optional
``b_rec, b_out``; pass ``--complexity``), and writes ``DIR/summary.json``, CSV tables and PNG figures.

The decision and stimulus-stage attractors are found from the end-of-stimulus states of the evaluation trials, by
iterating each stage's map (:func:`analysis.populations.network_signatures`, the default: when the delay map holds
no bounded attractor for some choice, the decision states are the end-of-delay states the network reports from;
``--decision-states``) or by the attractor analysis
(``--attractors analysis``: :func:`analysis.attractors.find_attractors`, labelled by
:func:`analysis.populations.label_attractors`).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

STEPS: tuple[str, ...] = (
    "trials",
    "forward",
    "populations",
    "selectivity",
    "connectivity",
    "crystallization",
    "dimensionality",
    "robustness_noise",
    "robustness_kicks",
    "robustness_ablation",
)
"""The steps of :func:`run_population_analysis`, in order (``trials`` and ``forward`` always run)."""


@dataclass
class PopulationReport:
    """Everything :func:`run_population_analysis` computed (``None`` for skipped steps) and the time of each step."""

    config: Any
    trials: Any
    scores: Any
    hidden: np.ndarray
    attractors: dict[str, np.ndarray]
    populations: Any = None
    readout: Optional[dict[str, Any]] = None
    selectivity: Any = None
    joint_information: Optional[dict[str, Any]] = None
    connectivity: Any = None
    graph: Optional[dict[str, Any]] = None
    alignment: Optional[dict[str, Any]] = None
    blocks: Optional[dict[str, Any]] = None
    crystallization: Any = None
    pca: Any = None
    noise: Any = None
    kicks: Any = None
    ablation: Any = None
    decision_source: Optional[str] = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The numbers, JSON-serialisable (per-unit arrays are in the CSV tables)."""
        out: dict[str, Any] = {
            "task": self.config.to_dict(),
            "n_trials": len(self.trials),
            "accuracy": self.scores.accuracy,
            "accuracy_by_coherence": {f"{k:g}": v for k, v in self.scores.accuracy_by_coherence().items()},
            "outcome_rates": self.scores.rates(),
            "attractors": sorted(self.attractors),
            "decision_source": self.decision_source,
            "timings_s": self.timings,
        }
        if self.populations is not None:
            p = self.populations.to_dict()
            out["populations"] = {k: p[k] for k in ("sizes", "fractions", "balance", "gs", "threshold", "signatures")}
            out["readout_symmetry"] = self.readout
        if self.selectivity is not None:
            s = self.selectivity.to_dict()
            out["selectivity"] = {k: v for k, v in s.items() if k not in ("mi", "pvalue", "significant")}
        if self.joint_information is not None:
            out["joint_information"] = self.joint_information
        if self.connectivity is not None:
            g = dict(self.graph or {})
            g.pop("degree", None)
            g.pop("communities", None)
            out["connectivity"] = {**self.connectivity.to_dict(), "graph": g, "alignment": self.alignment,
                                   "structural_blocks": self.blocks}
        if self.crystallization is not None:
            out["crystallization"] = self.crystallization.to_dict()
        if self.pca is not None:
            out["pca"] = self.pca.to_dict()
        robustness = {}
        for key in ("noise", "kicks", "ablation"):
            obj = getattr(self, key)
            if obj is not None:
                robustness[key] = obj.to_dict()
        if robustness:
            out["robustness"] = robustness
        return _finite(out)


def _finite(obj: Any) -> Any:
    """Replace NaN/inf by None so that the JSON is standard."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0


def run_population_analysis(
    weights: Any,
    config: Any,
    *,
    n_trials: int = 1000,
    seed: int = 0,
    attractors: Optional[Mapping[str, Any]] = None,
    attractor_source: str = "rollout",
    decision_states: str = "auto",
    skip: Sequence[str] = (),
    gs: str = "silent",
    threshold: float = 1e-6,
    n_shuffles: int = 10000,
    n_shuffles_connectivity: int = 100,
    ablation_ks: Optional[Sequence[int]] = None,
    ablation_repeats: int = 5,
    robustness_dtype: Any = np.float32,
    joint_information: bool = False,
    progress: bool = False,
) -> PopulationReport:
    """Run the whole analysis of one network on ``n_trials`` trials of its task.

    Args:
        weights: :class:`~analysis.robustness.NetworkWeights` or anything it reads (``agents.RNNWeights``, ``.npz``).
        config: The task (:class:`dm_envs.TaskConfig`).
        n_trials: Evaluation trials (noise on), sampled with ``seed``.
        seed: Seed of everything (trials, shuffles, folds, kicks, ablations).
        attractors: ``{label: attractor}`` for the populations (with ``"FP+"``, ``"FP-"`` and stimulus-stage
            labels); default: found from the end-of-stimulus states of the first 200 trials, per ``attractor_source``.
        attractor_source: ``"rollout"``: :func:`~analysis.populations.network_signatures` (iterate the delay and
            zero-coherence stimulus maps; decision attractors labelled by the readout, or the states at the end of
            the delay, per ``decision_states``); ``"analysis"``: the
            attractor analysis (:func:`analysis.attractors.find_attractors` on the same inputs and starts, labelled by
            :func:`~analysis.populations.label_attractors`).
        decision_states: Where the decision signatures come from with ``attractor_source="rollout"``:
            ``"auto"`` (attractors when every choice has a bounded one, else the end-of-delay states the network
            reports from), ``"attractors"`` or ``"delay_end"``; the one used is ``decision_source`` in the summary.
        skip: Steps of :data:`STEPS` to skip.
        gs: Reading of ``Gs`` (``"silent"`` or ``"stimulus"``).
        threshold: Activity threshold of the population assignment.
        n_shuffles: Stage-2 shifts of the selectivity test.
        n_shuffles_connectivity: Shifts of the connectivity test.
        ablation_ks: Numbers of silenced units (default :data:`analysis.robustness.DEFAULT_KS`).
        ablation_repeats: Random draws per (pool, k).
        robustness_dtype: Forward dtype of the robustness runs (float32: about 3x faster).
        joint_information: Also the joint GCMI of each population with each variable, overall and per stage
            (:func:`~analysis.information.population_information`; a few seconds more for 250 units).
        progress: Progress bars.

    Returns:
        The :class:`PopulationReport` (with ``timings`` in seconds per step).

    Example:
        >>> from dm_envs import make_config
        >>> from analysis.robustness import NetworkWeights
        >>> rep = run_population_analysis(NetworkWeights.random(32, 7, 3), make_config(3), n_trials=50,
        ...                               skip=["connectivity", "robustness_ablation"], n_shuffles=200)
        >>> sorted(rep.timings)[:3]
        ['crystallization', 'dimensionality', 'forward']
    """
    from dm_envs import sample_trials, score_actions
    from dm_envs.config import STIMULUS

    from .connectivity import community_alignment, functional_connectivity, graph_statistics, structural_blocks
    from .crystallization import decision_crystallization
    from .dimensionality import pca_variance
    from .information import population_information, selectivity, task_variables
    from .populations import (activity_vector, assign_populations, end_of_stimulus_states, network_signatures,
                              readout_symmetry)
    from .robustness import DEFAULT_KS, NetworkWeights, ablation_curve, kick_robustness, noise_robustness, rnn_forward

    unknown = sorted(set(skip) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown steps {unknown}; steps: {STEPS}")
    w = NetworkWeights.from_any(weights)
    t: dict[str, float] = {}
    with _timed(t, "trials"):
        trials = sample_trials(config, n_trials, seed)
    with _timed(t, "forward"):
        run = rnn_forward(w, trials.obs)
        scores = score_actions(trials, run.actions)
    hidden, mask = run.hidden, trials.mask
    rep = PopulationReport(config, trials, scores, hidden, {}, timings=t)

    if "populations" not in skip:
        with _timed(t, "populations"):
            plus = minus = None
            if attractors is None:
                if attractor_source == "rollout":
                    attractors, rep.decision_source = network_signatures(w, config, trials, hidden, scores.choice,
                                                                         decision=decision_states)
                elif attractor_source == "analysis":
                    attractors, plus, minus = _attractor_analysis(w, config, end_of_stimulus_states(hidden, trials),
                                                                  seed)
                else:
                    raise ValueError(f"attractor_source must be 'rollout' or 'analysis', got {attractor_source!r}")
            rep.attractors = {k: activity_vector(v) for k, v in attractors.items()}
            if plus is None:
                plus = sorted(k for k in attractors if k == "FP+" or k.startswith("FP+#") or k == "FP1")
                minus = sorted(k for k in attractors if k == "FP-" or k.startswith("FP-#") or k == "FP2")
            rep.populations = assign_populations(attractors, plus=plus, minus=minus, gs=gs, threshold=threshold)
            rep.readout = readout_symmetry(w.W_out, labels=rep.populations.labels)
    labels = rep.populations.labels if rep.populations is not None else None

    if "selectivity" not in skip:
        with _timed(t, "selectivity"):
            variables = task_variables(trials, choice=scores.choice)
            rep.selectivity = selectivity(hidden, variables, mask, stage=trials.stage, populations=labels,
                                          n_shuffles=n_shuffles, seed=seed, progress=progress)
            if joint_information and labels is not None:
                rep.joint_information = population_information(hidden, variables, labels, mask,
                                                               stage=trials.stage, seed=seed)
    if "connectivity" not in skip:
        with _timed(t, "connectivity"):
            rep.connectivity = functional_connectivity(hidden, mask, n_shuffles=n_shuffles_connectivity, seed=seed,
                                                       progress=progress)
            rep.graph = graph_statistics(rep.connectivity.graph(), seed=seed)
            if labels is not None:
                rep.alignment = {
                    "all": community_alignment(rep.graph["communities"], labels),
                    "G+/G-": community_alignment(rep.graph["communities"], labels, include=["G+", "G-"]),
                }
                rep.blocks = structural_blocks(w.W_rec, labels, groups=["G+", "G-", "Ga", "Gs", "none"])
    if "crystallization" not in skip:
        with _timed(t, "crystallization"):
            rep.crystallization = decision_crystallization(
                hidden, w.W_out, mask, b_out=w.b_out, choice=scores.choice, groups=trials.relevant_coherence,
                align=trials.onset[:, STIMULUS], seed=seed, progress=progress,
            )
    if "dimensionality" not in skip:
        with _timed(t, "dimensionality"):
            rep.pca = pca_variance(hidden, mask)
    if "robustness_noise" not in skip and config.noise != "none" and config.noise_amplitude > 0:
        with _timed(t, "robustness_noise"):
            rep.noise = noise_robustness(w, config, n_trials=n_trials, seed=seed, dtype=robustness_dtype,
                                         progress=progress)
    if "robustness_kicks" not in skip:
        with _timed(t, "robustness_kicks"):
            rep.kicks = kick_robustness(w, trials, seed=seed, dtype=robustness_dtype, progress=progress)
    if "robustness_ablation" not in skip:
        with _timed(t, "robustness_ablation"):
            groups = None
            if rep.populations is not None:
                groups = {g: rep.populations.indices(g) for g in ("G+", "G-")}
            rep.ablation = ablation_curve(w, trials, DEFAULT_KS if ablation_ks is None else ablation_ks,
                                          groups=groups, n_repeats=ablation_repeats, seed=seed,
                                          dtype=robustness_dtype, progress=progress)
    return rep


def _attractor_analysis(w: Any, config: Any, starts: np.ndarray, seed: int) -> tuple[dict, list, list]:
    """Decision (delay input) and zero-coherence stimulus attractors per context, by ``analysis.attractors``."""
    from dm_envs import stage_input

    from .attractors import find_attractors
    from .dynamics import RNNDynamics
    from .populations import label_attractors

    dyn = RNNDynamics(w.W_rec, w.W_in, W_out=w.W_out, b_rec=w.b_rec, b_out=w.b_out, config=config)
    contexts = range(config.n_streams) if config.n_streams > 1 else [0]
    decision, stimulus = [], []
    zeros = np.zeros(config.n_streams)
    for c in contexts:
        decision += find_attractors(dyn, stage_input(config, "delay", context=c), init_states=starts, seed=seed)
        x = (stage_input(config, "stimulus", signed_coherence=zeros, context=c) if config.n_choices == 2
             else stage_input(config, "stimulus", coherence=zeros, context=c))
        stimulus += find_attractors(dyn, x, init_states=starts, seed=seed)
    decision = [a for a in decision if a.kind != "divergent"]
    stimulus = [a for a in stimulus if a.kind != "divergent"]
    return label_attractors(decision, stimulus, W_out=w.W_out, b_out=w.b_out)


# ---------------------------------------------------------------------------------------------------- outputs
def write_report(rep: PopulationReport, out: Path, *, figures: bool = True) -> list[Path]:
    """Write ``summary.json``, ``units.csv`` (one row per unit), curve CSVs and PNG figures to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "summary.json"
    path.write_text(json.dumps(rep.summary(), indent=1))
    written.append(path)
    written.append(_write_units_csv(rep, out / "units.csv"))
    if rep.crystallization is not None:
        d = rep.crystallization.decoder
        rows = [[int(tt), a] + ([] if d.group_accuracy is None else list(d.group_accuracy[:, i]))
                for i, (tt, a) in enumerate(zip(d.times, d.accuracy))]
        written.append(_write_csv(out / "decoder_accuracy.csv", ["time", "all"] + [f"{g:g}" for g in d.groups], rows))
    if rep.noise is not None:
        written.append(_write_csv(out / "robustness_noise.csv", ["scale", "amplitude", "accuracy"],
                                  zip(rep.noise.scales, rep.noise.amplitude, rep.noise.accuracy)))
    if rep.kicks is not None:
        written.append(_write_csv(out / "robustness_kicks.csv", ["size", "survival", "accuracy"],
                                  zip(rep.kicks.sizes, rep.kicks.survival, rep.kicks.accuracy)))
    if rep.ablation is not None:
        m = rep.ablation.mean()
        written.append(_write_csv(out / "robustness_ablation.csv", ["k"] + list(rep.ablation.groups),
                                  [[k] + list(m[:, i]) for i, k in enumerate(rep.ablation.ks)]))
    if figures:
        written += _write_figures(rep, out)
    return written


def _write_csv(path: Path, header: Sequence[str], rows: Any) -> Path:
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(header)
        for r in rows:
            wr.writerow([_fmt(v) for v in r])
    return path


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    return v.item() if isinstance(v, np.generic) else v


def _write_units_csv(rep: PopulationReport, path: Path) -> Path:
    H = rep.hidden.shape[2]
    header = ["unit"]
    cols: list[Sequence[Any]] = [range(H)]
    if rep.populations is not None:
        header += ["population"] + [f"active_{a}" for a in rep.populations.attractors]
        cols += [rep.populations.labels] + [rep.populations.active[:, j].astype(int)
                                            for j in range(len(rep.populations.attractors))]
    if rep.selectivity is not None:
        for i, v in enumerate(rep.selectivity.variables):
            header += [f"mi_{v}", f"p_{v}", f"sig_{v}"]
            cols += [rep.selectivity.mi[i], rep.selectivity.pvalue[i], rep.selectivity.significant[i].astype(int)]
    if rep.graph is not None:
        header += ["degree", "community"]
        cols += [rep.graph["degree"], rep.graph["communities"]]
    return _write_csv(path, header, zip(*cols))


def _write_figures(rep: PopulationReport, out: Path) -> list[Path]:
    from . import figures_populations as figs
    from .dimensionality import condition_average

    paths = []
    if rep.populations is not None:
        paths.append(figs.plot_populations(rep.populations, out / "populations.png", readout=rep.readout))
    if rep.selectivity is not None:
        paths.append(figs.plot_selectivity(rep.selectivity, out / "selectivity.png"))
    if rep.connectivity is not None:
        labels = rep.populations.labels if rep.populations is not None else None
        paths.append(figs.plot_connectivity(rep.connectivity, out / "connectivity.png", labels=labels,
                                            blocks=rep.blocks))
    if rep.crystallization is not None:
        paths.append(figs.plot_crystallization(rep.crystallization, out / "crystallization.png"))
    if rep.pca is not None:
        tr = rep.trials
        cond = np.round(tr.signed_coherence[np.arange(len(tr)), tr.context], 3) if tr.config.n_choices == 2 \
            else tr.correct_choice
        vals, mean, _ = condition_average(rep.hidden, cond, tr.mask)
        trajectories = {f"{v:g}" if isinstance(v, float) else str(v): mean[i] for i, v in enumerate(vals.tolist())}
        paths.append(figs.plot_pca(rep.pca, out / "pca.png", trajectories=trajectories))
    if rep.noise is not None or rep.kicks is not None or rep.ablation is not None:
        paths.append(figs.plot_robustness(out / "robustness.png", noise=rep.noise, kicks=rep.kicks,
                                          ablation=rep.ablation))
    return paths


# ---------------------------------------------------------------------------------------------------- CLI
def load_network(path: str | Path, complexity: Optional[int] = None) -> tuple[Any, Any]:
    """``(NetworkWeights, TaskConfig)`` from a saved model (``.zip``) or a weights file (``.npz``).

    Raises:
        SystemExit: with a clear message when the file cannot be read, or when reading a model needs an ``agents``
            that is not available.
    """
    from dm_envs import make_config

    from .robustness import NetworkWeights

    p = Path(path)
    if p.suffix == ".npz":
        if not p.is_file():
            raise SystemExit(f"dmd analyze populations: no weights file at {p}")
        return NetworkWeights.from_any(p), make_config(3 if complexity is None else complexity)
    try:
        import agents

        load_model, rnn_weights = agents.load_model, agents.rnn_weights
        task_config_of = agents.task_config_of
    except (ImportError, AttributeError) as err:
        raise SystemExit(
            "dmd analyze populations: reading a saved model needs agents.load_model / agents.rnn_weights, which "
            f"are not available ({type(err).__name__}: {err}). Pass the weights as an .npz file "
            "(W_rec, W_in, W_out[, b_rec, b_out]) with --complexity instead."
        ) from err
    try:
        model = load_model(p)
    except (FileNotFoundError, ValueError) as err:  # agents.ModelLoadError is a ValueError
        raise SystemExit(f"dmd analyze populations: {err}") from err
    if complexity is not None:
        cfg = make_config(complexity)
    else:
        try:
            cfg = task_config_of(model)
        except (KeyError, ValueError) as err:
            raise SystemExit(f"dmd analyze populations: {err}; pass --complexity to choose the task") from err
    return NetworkWeights.from_any(rnn_weights(model)), cfg


def add_analyze_commands(asub: Any) -> None:
    """Register ``dmd analyze populations``."""
    p = asub.add_parser(
        "populations",
        help="populations (G+/G-/Ga/Gs, balance), selectivity (GCMI), connectivity, crystallization, PCA, robustness",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("model", help="saved model (.zip) or weights (.npz with W_rec, W_in, W_out)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--complexity", type=int, default=None,
                   help="task level (default: the model's own task; 3 for .npz)")
    p.add_argument("--trials", type=int, default=1000, help="evaluation trials (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gs", choices=("silent", "stimulus"), default="silent", help="reading of the Gs group")
    p.add_argument("--attractors", choices=("rollout", "analysis"), default="rollout",
                   help="how decision/stimulus attractors are found: iterate the stage maps (rollout, default) or "
                        "the attractor analysis (analysis.attractors)")
    p.add_argument("--decision-states", choices=("auto", "attractors", "delay_end"), default="auto",
                   help="decision signatures: delay-map attractors, end-of-delay states, or auto (attractors when "
                        "every choice has a bounded one)")
    p.add_argument("--threshold", type=float, default=1e-6, help="activity threshold on attractors")
    p.add_argument("--shuffles", type=int, default=10000, help="stage-2 circular shifts of the selectivity test")
    p.add_argument("--joint-information", action="store_true",
                   help="also the joint GCMI of each population with each variable (per stage)")
    p.add_argument("--skip", nargs="*", default=[], choices=STEPS[2:], help="steps to skip")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--progress", action="store_true")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    weights, cfg = load_network(args.model, args.complexity)
    rep = run_population_analysis(weights, cfg, n_trials=args.trials, seed=args.seed, skip=args.skip, gs=args.gs,
                                  threshold=args.threshold, n_shuffles=args.shuffles, progress=args.progress,
                                  attractor_source=args.attractors, decision_states=args.decision_states,
                                  joint_information=args.joint_information)
    paths = write_report(rep, Path(args.out), figures=not args.no_figures)
    s = rep.summary()
    line = f"accuracy {s['accuracy']:.3f}"
    if "populations" in s:
        sizes = s["populations"]["sizes"]
        line += f" | G+ {sizes['G+']} G- {sizes['G-']} Ga {sizes['Ga']} Gs {sizes['Gs']} | balance " + (
            f"{s['populations']['balance']:.2f}" if s["populations"]["balance"] is not None else "n/a")
    print(line)
    print(f"wrote {len(paths)} files to {args.out} in {sum(rep.timings.values()):.1f} s")
    return 0
