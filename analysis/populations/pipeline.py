"""The population, information, connectivity, crystallization, PCA and robustness analysis of one network.

:func:`run_population_analysis` runs every step on fresh trials of the network's task and returns a
:class:`PopulationReport`; :func:`write_report` writes ``summary.json``, CSV tables and figures
(``dmd analyze populations MODEL --out DIR``, the experiment cells and ``benchmarks/bench_populations.py`` use it).

The decision and stimulus-stage attractors are found from the end-of-stimulus states of the evaluation trials, by
iterating each stage's map (:func:`analysis.populations.groups.network_signatures`, the default: when the delay map holds
no bounded attractor for some choice, the decision states are the end-of-delay states the network reports from;
``--decision-states``) or by the attractor analysis
(``--attractors analysis``: :func:`analysis.dynamics.attractors.find_attractors`, labelled by
:func:`analysis.populations.groups.label_attractors`).
"""

from __future__ import annotations

import csv
import json
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np

from agents.files import json_safe, write_json

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
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

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
        if self.info:  # the generic path (analysis.populations.generic): what a unit is
            out["units"] = self.info
        if self.notes:
            out["notes"] = self.notes
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
        return json_safe(out)


_STEP_BAR: ContextVar[Any] = ContextVar("population_step_bar", default=None)


@contextmanager
def step_progress(n_steps: int = len(STEPS), enabled: bool = True) -> Iterator[Any]:
    """A progress bar over the steps of :func:`run_population_analysis` (shown at once, naming the running step),
    for the analyses run inside the ``with`` block (``dmd analyze populations`` uses it).

    Example:
        >>> with step_progress(enabled=False):
        ...     rep = run_population_analysis(net, n_trials=100)          # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=n_steps, desc="populations", unit="step", disable=not enabled)
    token = _STEP_BAR.set(bar)
    try:
        yield bar
    finally:
        _STEP_BAR.reset(token)
        bar.close()


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    bar = _STEP_BAR.get()
    if bar is not None:
        bar.set_postfix_str(name)
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    if bar is not None:
        bar.update(1)


def run_population_analysis(
    network: Any,
    config: Any = None,
    *,
    n_trials: int = 1000,
    seed: int = 0,
    attractors: Optional[Mapping[str, Any]] = None,
    attractor_source: str = "rollout",
    decision_states: str = "auto",
    skip: Sequence[str] = (),
    gs: str = "stimulus",
    threshold: Optional[float] = None,
    n_shuffles: int = 10000,
    n_shuffles_connectivity: int = 100,
    ablation_ks: Optional[Sequence[int]] = None,
    ablation_repeats: int = 5,
    robustness_dtype: Any = np.float32,
    joint_information: bool = False,
    progress: bool = False,
) -> PopulationReport:
    """Run the whole analysis of one network on ``n_trials`` trials of its task.

    Any other sb3-contrib recurrent policy (LSTM, GRU, tanh RNN) goes to
    :func:`analysis.populations.generic.run_generic_population_analysis` (units: the core's ``h``; see there).

    Args:
        network: The :class:`~analysis.network.Network` (or anything :meth:`Network.load` reads: a model zip, an
            ``.npz``, a loaded model), or any recurrent policy's model zip, model or ``TorchDynamics``.
        config: The task (:class:`dm_envs.TaskConfig`; default: the network's own).
        n_trials: Evaluation trials (noise on), sampled with ``seed``.
        seed: Seed of everything (trials, shuffles, folds, kicks, ablations).
        attractors: ``{label: attractor}`` for the populations (with ``"FP+"``, ``"FP-"`` and stimulus-stage
            labels); default: found from the end-of-stimulus states of the first 200 trials, per ``attractor_source``.
        attractor_source: ``"rollout"``: :func:`~analysis.populations.groups.network_signatures` (iterate the delay and
            zero-coherence stimulus maps; decision attractors labelled by the readout, or the states at the end of
            the delay, per ``decision_states``); ``"analysis"``: the
            attractor analysis (:func:`analysis.dynamics.attractors.find_attractors` on the same inputs and starts, labelled by
            :func:`~analysis.populations.groups.label_attractors`).
        decision_states: Where the decision signatures come from with ``attractor_source="rollout"``:
            ``"auto"`` (attractors when every choice has a bounded one, else the end-of-delay states the network
            reports from), ``"attractors"`` or ``"delay_end"``; the one used is ``decision_source`` in the summary.
        skip: Steps of :data:`STEPS` to skip.
        gs: Reading of ``Gs`` (``"silent"`` or ``"stimulus"``).
        threshold: Activity threshold of the population assignment (default 1e-6; 0.1 on ``|h|`` for the
            generic path).
        n_shuffles: Stage-2 shifts of the selectivity test.
        n_shuffles_connectivity: Shifts of the connectivity test.
        ablation_ks: Numbers of silenced units (default :data:`analysis.populations.robustness.DEFAULT_KS`).
        ablation_repeats: Random draws per (pool, k).
        robustness_dtype: Forward dtype of the robustness runs (float32: about 3x faster).
        joint_information: Also the joint GCMI of each population with each variable, overall and per stage
            (:func:`~analysis.populations.information.population_information`; a few seconds more for 250 units).
        progress: Progress bars.

    Returns:
        The :class:`PopulationReport` (with ``timings`` in seconds per step).

    Example:
        >>> from dm_envs import make_config
        >>> from analysis.network import Network
        >>> rep = run_population_analysis(Network.random(32, 7, 3), make_config(3), n_trials=50,
        ...                               skip=["connectivity", "robustness_ablation"], n_shuffles=200)
        >>> sorted(rep.timings)[:3]
        ['crystallization', 'dimensionality', 'forward']
    """
    from dm_envs import sample_trials, score_actions

    from analysis.network import Network

    from analysis.populations.generic import generic_map, run_generic_population_analysis

    generic = generic_map(network, config)
    if generic is not None:  # any other recurrent policy: the same report on its units h
        return run_generic_population_analysis(
            generic, n_trials=n_trials, seed=seed, attractors=attractors, attractor_source=attractor_source,
            decision_states=decision_states, skip=skip, gs=gs, threshold=threshold, n_shuffles=n_shuffles,
            n_shuffles_connectivity=n_shuffles_connectivity, ablation_ks=ablation_ks,
            ablation_repeats=ablation_repeats, robustness_dtype=robustness_dtype,
            joint_information=joint_information, progress=progress)
    threshold = check_options(threshold, skip, default_threshold=1e-6)
    w = Network.load(network, config=config)
    config = w.config
    if config is None:
        raise ValueError("the network carries no task config: pass config=")
    t: dict[str, float] = {}
    with _timed(t, "trials"):
        trials = sample_trials(config, n_trials, seed)
    with _timed(t, "forward"):
        run = w.forward(trials.obs)
        scores = score_actions(trials, run.actions)
    rep = PopulationReport(config, trials, scores, run.hidden, {}, timings=t)

    if "populations" not in skip:
        with _timed(t, "populations"):
            _populations_step(rep, w, attractors, attractor_source, decision_states, gs, threshold, seed)
    labels = rep.populations.labels if rep.populations is not None else None
    if "selectivity" not in skip:
        with _timed(t, "selectivity"):
            _selectivity_step(rep, labels, n_shuffles, joint_information, seed, progress)
    if "connectivity" not in skip:
        with _timed(t, "connectivity"):
            _connectivity_step(rep, w, labels, n_shuffles_connectivity, seed, progress)
    _readout_steps(rep, w, skip, seed, progress)
    _robustness_steps(rep, w, skip, n_trials, ablation_ks, ablation_repeats, robustness_dtype, seed, progress)
    return rep


# ---------------------------------------------------------------------------------------------------- the steps
def check_options(threshold: Optional[float], skip: Sequence[str], default_threshold: float) -> float:
    """The activity threshold (``default_threshold`` for None) after checking it and the steps to ``skip``.

    Raises:
        ValueError: a threshold that is not a finite number >= 0, or an unknown step.
    """
    threshold = default_threshold if threshold is None else threshold
    if not (isinstance(threshold, (int, float)) and np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    unknown = sorted(set(skip) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown steps {unknown}; steps: {STEPS}")
    return threshold


def _populations_step(rep: PopulationReport, w: Any, attractors: Optional[Mapping[str, Any]], attractor_source: str,
                      decision_states: str, gs: str, threshold: float, seed: int,
                      states: Optional[np.ndarray] = None) -> None:
    """The attractors (given, or per ``attractor_source``), the populations they define and the readout's symmetry.

    ``states`` (the full recurrent states of the trials) marks the generic path (:mod:`analysis.populations.generic`):
    its signatures, its attractor search and its linearised readout stand in for the ReLU network's."""
    from analysis.populations.groups import (activity_vector, assign_populations, end_of_stimulus_states,
                                             network_signatures, readout_symmetry)

    config, trials, hidden = rep.config, rep.trials, rep.hidden
    generic = states is not None
    if generic:
        from analysis.populations import generic as g
    states = hidden if states is None else states
    plus = minus = None
    if attractors is None:
        if attractor_source == "rollout":
            signatures = g.generic_signatures if generic else network_signatures
            attractors, rep.decision_source = signatures(w, config, trials, states, rep.scores.choice,
                                                         decision=decision_states, threshold=threshold)
        elif attractor_source == "analysis":
            search = g._analysis_signatures if generic else _attractor_analysis
            attractors, plus, minus = search(w, config, end_of_stimulus_states(states, trials), seed)
        else:
            raise ValueError(f"attractor_source must be 'rollout' or 'analysis', got {attractor_source!r}")
    rep.attractors = {k: activity_vector(v) for k, v in attractors.items()}
    if plus is None:
        plus = sorted(k for k in attractors if k == "FP+" or k.startswith("FP+#") or k == "FP1")
        minus = sorted(k for k in attractors if k == "FP-" or k.startswith("FP-#") or k == "FP2")
    rep.populations = assign_populations(attractors, plus=plus, minus=minus, gs=gs, threshold=threshold)
    if generic:
        from dm_envs.config import DECISION

        last = states[np.arange(len(trials)), trials.onset[:, DECISION] - 1]
        readout = g.effective_readout(w, last[:200])
    else:
        readout = w.W_out
    rep.readout = readout_symmetry(readout, labels=rep.populations.labels)


def _selectivity_step(rep: PopulationReport, labels: Optional[np.ndarray], n_shuffles: int, joint_information: bool,
                      seed: int, progress: bool) -> None:
    """Per-unit selectivity for the task variables (and the populations' joint information if asked)."""
    from analysis.populations.information import population_information, selectivity, task_variables

    trials, hidden, mask = rep.trials, rep.hidden, rep.trials.mask
    variables = task_variables(trials, choice=rep.scores.choice)
    rep.selectivity = selectivity(hidden, variables, mask, stage=trials.stage, populations=labels,
                                  n_shuffles=n_shuffles, seed=seed, progress=progress)
    if joint_information and labels is not None:
        rep.joint_information = population_information(hidden, variables, labels, mask,
                                                       stage=trials.stage, seed=seed)


def _connectivity_step(rep: PopulationReport, w: Any, labels: Optional[np.ndarray], n_shuffles_connectivity: int,
                       seed: int, progress: bool) -> None:
    """Functional connectivity, its graph, and (with populations) community alignment and structural blocks."""
    from analysis.populations.connectivity import (community_alignment, functional_connectivity, graph_statistics,
                                                   structural_blocks)

    rep.connectivity = functional_connectivity(rep.hidden, rep.trials.mask, n_shuffles=n_shuffles_connectivity,
                                               seed=seed, progress=progress)
    rep.graph = graph_statistics(rep.connectivity.graph(), seed=seed)
    if labels is not None:
        rep.alignment = {
            "all": community_alignment(rep.graph["communities"], labels),
            "G+/G-": community_alignment(rep.graph["communities"], labels, include=["G+", "G-"]),
        }
        if getattr(w, "W_rec", None) is not None:  # the package's ReLU RNN (not the generic path's policies)
            rep.blocks = structural_blocks(w.W_rec, labels, groups=["G+", "G-", "Ga", "Gs", "silent", "none"])


def _readout_steps(rep: PopulationReport, w: Any, skip: Sequence[str], seed: int, progress: bool) -> None:
    """Decision crystallization and PCA dimensionality (each unless skipped)."""
    from dm_envs.config import STIMULUS

    from analysis.populations.crystallization import decision_crystallization
    from analysis.populations.dimensionality import pca_variance

    t, trials, hidden, mask = rep.timings, rep.trials, rep.hidden, rep.trials.mask
    if "crystallization" not in skip:
        with _timed(t, "crystallization"):
            rep.crystallization = decision_crystallization(
                hidden, w.W_out, mask, b_out=w.b_out, choice=rep.scores.choice, groups=trials.relevant_coherence,
                align=trials.onset[:, STIMULUS], seed=seed, progress=progress,
            )
    if "dimensionality" not in skip:
        with _timed(t, "dimensionality"):
            rep.pca = pca_variance(hidden, mask)


def _robustness_steps(rep: PopulationReport, w: Any, skip: Sequence[str], n_trials: int,
                      ablation_ks: Optional[Sequence[int]], ablation_repeats: int, robustness_dtype: Any, seed: int,
                      progress: bool) -> None:
    """Accuracy under input noise, kicks and ablations (each unless skipped; noise only for noisy tasks)."""
    from analysis.populations.robustness import DEFAULT_KS, ablation_curve, kick_robustness, noise_robustness

    t, config, trials = rep.timings, rep.config, rep.trials
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


def _attractor_analysis(w: Any, config: Any, starts: np.ndarray, seed: int) -> tuple[dict, list, list]:
    """Decision (delay input) and zero-coherence stimulus attractors per context, by ``analysis.dynamics.attractors``."""
    from dm_envs import stage_input

    from analysis.dynamics.attractors import find_attractors
    from analysis.populations.groups import label_attractors

    dyn = w
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
def write_report(rep: PopulationReport, out: Path, *, figures: bool = True, fmt: str = "png") -> list[Path]:
    """Write ``summary.json``, ``units.csv`` (one row per unit), curve CSVs and figures (``fmt``: ``"png"``,
    ``"pdf"`` or ``"svg"``) to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    path = out / "summary.json"
    write_json(path, rep.summary())
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
        written += _write_figures(rep, out, fmt)
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


def _write_figures(rep: PopulationReport, out: Path, fmt: str = "png") -> list[Path]:
    from analysis.populations import figures as figs
    from analysis.populations.dimensionality import condition_average

    paths = []
    if rep.populations is not None:
        paths.append(figs.plot_populations(rep.populations, out / f"populations.{fmt}", readout=rep.readout))
    if rep.selectivity is not None:
        paths.append(figs.plot_selectivity(rep.selectivity, out / f"selectivity.{fmt}"))
    if rep.connectivity is not None:
        labels = rep.populations.labels if rep.populations is not None else None
        paths.append(figs.plot_connectivity(rep.connectivity, out / f"connectivity.{fmt}", labels=labels,
                                            blocks=rep.blocks))
    if rep.crystallization is not None:
        paths.append(figs.plot_crystallization(rep.crystallization, out / f"crystallization.{fmt}"))
    if rep.pca is not None:
        tr = rep.trials
        cond = np.round(tr.signed_coherence[np.arange(len(tr)), tr.context], 3) if tr.config.n_choices == 2 \
            else tr.correct_choice
        vals, mean, _ = condition_average(rep.hidden, cond, tr.mask)
        trajectories = {f"{v:g}" if isinstance(v, float) else str(v): mean[i] for i, v in enumerate(vals.tolist())}
        paths.append(figs.plot_pca(rep.pca, out / f"pca.{fmt}", trajectories=trajectories))
    if rep.noise is not None or rep.kicks is not None or rep.ablation is not None:
        paths.append(figs.plot_robustness(out / f"robustness.{fmt}", noise=rep.noise, kicks=rep.kicks,
                                          ablation=rep.ablation))
    return paths
