"""Populations of any recurrent policy (LSTM, GRU, tanh RNN): the population analysis on the generic path.

:func:`analysis.populations.pipeline.run_population_analysis` sends a policy that is not the package's ReLU RNN
here (a :class:`~analysis.dynamics.generic.TorchDynamics`, or a model zip / loaded model whose core is an LSTM, a
GRU or a torch RNN), and :func:`run_generic_population_analysis` returns the same
:class:`~analysis.populations.pipeline.PopulationReport`, written by the same ``write_report``.

**What a unit is.** The units are the recurrent core's hidden units ``h`` (every layer's): an LSTM's ``h`` (not its
cell state ``c``, which no head reads), a GRU's or tanh RNN's whole state. Their values are signed (in ``(-1, 1)``),
so a unit's *activity* on a state is ``|h_i|`` and it counts as *active* when ``|h_i| > threshold``
(:data:`GENERIC_THRESHOLD` = 0.1 by default, a tenth of its range; the ReLU RNN's default is 1e-6). Everything else
reads as for the ReLU RNN:

* decision and stimulus-stage states come from iterating each stage's map from the end-of-stimulus states of the
  trials (the full state, ``(h, c)`` for an LSTM), or from the end-of-delay states of the trials; a unit belongs to
  an attractor's signature when it is active in most of its states (:func:`~analysis.populations.groups.
  state_signature` on the time-averaged ``|h|``);
* ``readout_symmetry`` uses the *linearised* readout: the Jacobian of the action logits with respect to ``h``,
  averaged over the end-of-delay states of the trials (the readout is ``action_net(mlp(h))``, not a matrix);
* selectivity, functional connectivity, crystallization (readout commitment from the policy's own logits, the
  decoder on ``h``), PCA and robustness run on ``h``; a silenced unit has ``h_i`` (and an LSTM's ``c_i``) clamped
  to 0 at every step; a kick perturbs the full state.

One step is ReLU-specific and is skipped, with a note in ``summary["notes"]``: the structural blocks of ``W_rec``
(mean recurrent weight between populations) need the single recurrent matrix of ``relu(W_rec h + W_in x)``.

Example:
    >>> rep = run_generic_population_analysis("lstm.zip", make_config(3), n_trials=200)   # doctest: +SKIP
    >>> rep.summary()["units"]                                                            # doctest: +SKIP
    {'kind': 'lstm', 'n_units': 64, 'state_size': 128, 'what': "the LSTM's h (every layer), not its cell state c"}
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = [
    "GENERIC_THRESHOLD",
    "effective_readout",
    "generic_map",
    "generic_signatures",
    "run_generic_population_analysis",
    "unit_activity",
]

GENERIC_THRESHOLD = 0.1
"""Default activity threshold on ``|h_i|`` for the signed units of LSTM, GRU and tanh cores."""

SKIPPED_STRUCTURAL = ("structural_blocks: skipped, it needs the single recurrent matrix W_rec of the ReLU RNN "
                      "(relu(W_rec h + W_in x))")

UNIT_TEXT = {
    "lstm": "the LSTM's h (every layer), not its cell state c",
    "gru": "the GRU's h (every layer)",
    "rnn_tanh": "the tanh RNN's h (every layer)",
    "rnn_relu": "the ReLU RNN's h (every layer)",
    "custom": "the map's whole state",
}


def generic_map(network: Any, config: Any = None) -> Any:
    """The :class:`~analysis.dynamics.generic.TorchDynamics` of ``network`` when it is not the package's ReLU RNN,
    else ``None`` (a :class:`~analysis.network.Network`, an ``.npz`` or mapping of weights, an ``agents.RNNPolicy``).

    Args:
        network: A map, a model zip, a loaded model or policy, weights.
        config: The task to bind (default: the model's own).
    """
    from analysis.dynamics.generic import TorchDynamics, load_dynamics
    from analysis.network import Network

    if isinstance(network, TorchDynamics):
        return network if config is None else network.with_config(config)
    if isinstance(network, (Network, Mapping)):
        return None
    if isinstance(network, (str, os.PathLike)):
        if not str(network).endswith(".zip") and not os.path.exists(str(network) + ".zip"):
            return None  # .npz weights
        if _saved_rnn_policy(network):
            return None  # the package's ReLU RNN: Network.load reads it (no second load here)
    elif not hasattr(getattr(network, "policy", network), "lstm_actor"):
        return None
    dyn = load_dynamics(network, config=config)
    return dyn if isinstance(dyn, TorchDynamics) else None


def _saved_rnn_policy(path: Any) -> bool:
    """Whether a zip's ``data`` names ``agents.RNNPolicy`` as its policy class (read without loading weights)."""
    import json
    import zipfile

    p = str(path) if str(path).endswith(".zip") else str(path) + ".zip"
    try:
        with zipfile.ZipFile(p) as zf:
            cls = json.loads(zf.read("data")).get("policy_class", {})
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return False  # load_dynamics names the problem
    return cls.get("__module__") == "agents.policy" and "RNNPolicy." in str(cls.get("__init__", ""))


def unit_activity(dyn: Any, states: np.ndarray) -> np.ndarray:
    """``|h|``: the activity of the units on full states ``(..., S)``, ``(..., n_units)``."""
    return np.abs(dyn.unit_states(states))


def effective_readout(dyn: Any, states: np.ndarray) -> np.ndarray:
    """The linearised readout ``(A, n_units)``: ``d logits / d h`` averaged over ``states`` ``(M, S)`` (autograd).

    For a policy whose heads read ``h`` through an MLP this is the readout's local matrix around the states the
    trials visit; for a linear head it is the head's weight matrix.
    """
    import torch
    from torch.func import jacrev, vmap

    s = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(states), dtype=np.float64))
    one = lambda z: dyn.readout_fn(z[None])[0]  # noqa: E731
    J = vmap(jacrev(one))(s)  # (M, A, S)
    return J.mean(dim=0).numpy()[:, : dyn.n_units]


def _settle(dyn: Any, x: np.ndarray, h0: np.ndarray, n_transient: int, n_average: int) -> tuple[np.ndarray, np.ndarray]:
    """Iterate the stage map from each row of ``h0``: ``(final states (M, S), time-averaged |h| (M, n_units))``."""
    if not len(h0):
        return h0, np.zeros((0, dyn.n_units))
    xs = np.broadcast_to(x, (len(h0), len(x)))
    s = dyn.simulate(h0, xs, n_transient, record=False) if n_transient else h0
    traj = dyn.simulate(s, xs, n_average)[:, 1:]
    return traj[:, -1], unit_activity(dyn, traj).mean(axis=1)


def generic_signatures(
    dyn: Any,
    config: Any,
    trials: Any,
    states: np.ndarray,
    choice: np.ndarray,
    *,
    decision: str = "auto",
    n_starts: int = 200,
    n_transient: int = 500,
    n_average: int = 50,
    max_norm: float = 1e4,
    threshold: float = GENERIC_THRESHOLD,
    stimulus_coherence: float = 0.0,
) -> tuple[dict[str, np.ndarray], str]:
    """Activity signatures of the decision and stimulus-stage states, for ``assign_populations`` (the generic
    :func:`~analysis.populations.groups.network_signatures`: same labels, same ``decision`` rule).

    Args:
        dyn: The map.
        config: The task.
        trials: The trials of ``states``.
        states: ``(N, T, S)`` full states of the trials.
        choice: ``(N,)`` the choice of each trial (0-based, -1 for none).
        decision: ``"auto"``, ``"attractors"`` or ``"delay_end"``.
        n_starts: End-of-stimulus states used as starts.
        n_transient, n_average: Iterations discarded, then averaged.
        max_norm: A settled decision state with a larger norm counts as unbounded.
        threshold: Activity ``|h_i|`` above which a unit is on.
        stimulus_coherence: Signed coherence of every stream for the stimulus-stage states.

    Returns:
        ``(signatures, source)`` with ``source`` ``"attractors"`` or ``"delay_end"``.
    """
    from dm_envs import stage_input
    from dm_envs.config import DECISION

    from analysis.populations.groups import DECISION_SOURCES, end_of_stimulus_states, state_signature

    if decision not in DECISION_SOURCES:
        raise ValueError(f"decision must be one of {DECISION_SOURCES}, got {decision!r}")
    starts = end_of_stimulus_states(states, trials, n_starts)
    ctx = np.asarray(trials.context)[: len(starts)]
    contexts = list(range(config.n_streams)) if config.n_streams > 1 else [0]
    k = config.n_choices
    names = ["FP+", "FP-"] if k == 2 else [f"FP{j + 1}" for j in range(k)]

    def of(c: int) -> np.ndarray:
        return starts if not np.any(ctx == c) else starts[ctx == c]

    with np.errstate(over="ignore", invalid="ignore"):
        ends, acts = zip(*(_settle(dyn, stage_input(config, "delay", context=c), of(c), n_transient, n_average)
                           for c in contexts))
        ends, acts = np.concatenate(ends), np.concatenate(acts)
        picked = np.argmax(dyn.readout(ends)[:, 1:], axis=1) if len(ends) else np.zeros(0, int)
        sig = {name: state_signature(acts[picked == j], threshold) for j, name in enumerate(names)
               if np.any(picked == j)}
        bounded = all(n in sig for n in names) and bool(np.all(np.isfinite(ends))) and (
            not len(ends) or np.linalg.norm(ends, axis=1).max() < max_norm)
        sc = np.full(config.n_streams, float(stimulus_coherence))
        for c in contexts:
            x = (stage_input(config, "stimulus", signed_coherence=sc, context=c) if k == 2
                 else stage_input(config, "stimulus", coherence=np.abs(sc), context=c))
            label = "stim" if config.n_streams == 1 else f"stim_ctx{c + 1}"
            sig[label] = state_signature(_settle(dyn, x, of(c), n_transient, n_average)[1], threshold)
    if decision == "attractors" or (decision == "auto" and bounded):
        return sig, "attractors"
    out = {key: v for key, v in sig.items() if key not in names}
    last = states[np.arange(len(trials)), trials.onset[:, DECISION] - 1]
    choice = np.asarray(choice).copy()
    if np.any(choice < 0):  # trials without a choice count for the choice their readout prefers
        choice[choice < 0] = np.argmax(dyn.readout(last[choice < 0])[:, 1:], axis=1)
    on = unit_activity(dyn, last) > threshold
    out.update({name: (on[choice == j].mean(axis=0) > 0.5).astype(float) for j, name in enumerate(names)
                if np.any(choice == j)})
    return out, "delay_end"


def _analysis_signatures(dyn: Any, config: Any, starts: np.ndarray, seed: int
                         ) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Decision (delay input) and zero-coherence stimulus attractors per context by the generic attractor search,
    each as its time-averaged ``|h|``; decision attractors labelled by the choice the readout prefers on them."""
    from dm_envs import stage_input

    from analysis.dynamics.generic import find_attractors

    contexts = range(config.n_streams) if config.n_streams > 1 else [0]
    zeros = np.zeros(config.n_streams)
    out: dict[str, np.ndarray] = {}
    taken: dict[int, list[str]] = {}
    n_stim = 0

    def activity(a: Any) -> np.ndarray:
        orbit = getattr(a, "orbit", None)
        pts = np.atleast_2d(orbit if orbit is not None and len(orbit) else a.state)
        return unit_activity(dyn, pts).mean(axis=0)

    for c in contexts:
        for a in find_attractors(dyn, stage_input(config, "delay", context=c), init_states=starts, seed=seed):
            if a.kind == "divergent":
                continue
            orbit = getattr(a, "orbit", None)
            pts = np.atleast_2d(orbit if orbit is not None and len(orbit) else a.state)
            choice = int(np.argmax(dyn.readout(pts).mean(axis=0)[1:])) + 1
            base = {1: "FP+", 2: "FP-"}.get(choice, f"FP{choice}")
            names = taken.setdefault(choice, [])
            label = base if not names else f"{base}#{len(names) + 1}"
            names.append(label)
            out[label] = activity(a)
        x = (stage_input(config, "stimulus", signed_coherence=zeros, context=c) if config.n_choices == 2
             else stage_input(config, "stimulus", coherence=zeros, context=c))
        for a in find_attractors(dyn, x, init_states=starts, seed=seed):
            if a.kind != "divergent":
                n_stim += 1
                out[f"stim#{n_stim}:{a.kind}"] = activity(a)
    return out, taken.get(1, []), taken.get(2, [])


def run_generic_population_analysis(
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
) -> Any:
    """The population analysis of any recurrent policy (the arguments and result of
    :func:`analysis.populations.pipeline.run_population_analysis`; units as in this module's docstring).

    Args:
        network: A :class:`~analysis.dynamics.generic.TorchDynamics`, or a model zip / loaded model of any
            sb3-contrib recurrent policy.
        config: The task (default: the model's own).
        threshold: Activity threshold on ``|h_i|`` (default :data:`GENERIC_THRESHOLD`).
        attractors: ``{label: (n_units,) activity}`` given signatures (default: found as ``attractor_source``
            says: ``"rollout"`` iterates the stage maps, :func:`generic_signatures`; ``"analysis"`` runs the generic
            attractor search).
        **others: As :func:`~analysis.populations.pipeline.run_population_analysis`.

    Returns:
        A :class:`~analysis.populations.pipeline.PopulationReport` whose ``hidden`` holds the units ``h``, with
        ``info`` (what a unit is) and ``notes`` (the skipped ReLU-only step).
    """
    from dm_envs import sample_trials, score_actions
    from dm_envs.config import STIMULUS

    from analysis.populations.crystallization import Crystallization, decoder_accuracy, readout_commitment
    from analysis.populations.dimensionality import pca_variance
    from analysis.populations.pipeline import (PopulationReport, _connectivity_step, _populations_step,
                                               _robustness_steps, _selectivity_step, _timed, check_options)
    from analysis.populations.robustness import DEFAULT_KS

    threshold = check_options(threshold, skip, default_threshold=GENERIC_THRESHOLD)
    dyn = generic_map(network, config)
    if dyn is None:
        raise ValueError("expected a recurrent policy other than the package's ReLU RNN (use run_population_analysis)")
    config = dyn.config
    if config is None:
        raise ValueError("the network carries no task config: pass config=")
    t: dict[str, float] = {}
    with _timed(t, "trials"):
        trials = sample_trials(config, n_trials, seed)
    with _timed(t, "forward"):
        run = dyn.forward(trials)
        scores = score_actions(trials, run.actions)
    states, mask = run.hidden, trials.mask
    hidden = dyn.unit_states(states)
    rep = PopulationReport(config, trials, scores, hidden, {}, timings=t)
    rep.info = {"kind": dyn.kind, "n_units": dyn.n_units, "state_size": dyn.state_size,
                "what": UNIT_TEXT.get(dyn.kind, UNIT_TEXT["custom"]), "activity": "|h|", "threshold": threshold,
                "readout": "linearised: d logits / d h averaged over the end-of-delay states"}
    rep.notes = [SKIPPED_STRUCTURAL] if "connectivity" not in skip else []

    if "populations" not in skip:
        with _timed(t, "populations"):
            _populations_step(rep, dyn, attractors, attractor_source, decision_states, gs, threshold, seed,
                              states=states)
    labels = rep.populations.labels if rep.populations is not None else None
    if "selectivity" not in skip:
        with _timed(t, "selectivity"):
            _selectivity_step(rep, labels, n_shuffles, joint_information, seed, progress)
    if "connectivity" not in skip:  # functional connectivity only: the structural blocks need W_rec
        with _timed(t, "connectivity"):
            _connectivity_step(rep, dyn, labels, n_shuffles_connectivity, seed, progress)
    if "crystallization" not in skip:
        with _timed(t, "crystallization"):
            align = trials.onset[:, STIMULUS]
            com = readout_commitment(run.logits, mask, start=align)
            y = np.asarray(scores.choice, np.int64)
            groups = trials.relevant_coherence
            dec = decoder_accuracy(hidden, y, mask, align=align, groups=groups, seed=seed, progress=progress)
            rep.crystallization = Crystallization(com, dec, np.asarray(groups), y)
    if "dimensionality" not in skip:
        with _timed(t, "dimensionality"):
            rep.pca = pca_variance(hidden, mask)
    ks = [k for k in (DEFAULT_KS if ablation_ks is None else ablation_ks) if k <= dyn.n_units]
    _robustness_steps(rep, dyn, skip, n_trials, ks, ablation_repeats, robustness_dtype, seed, progress)
    return rep
