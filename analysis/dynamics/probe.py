"""The dynamics probe: a cheap attractor measurement at every training checkpoint, logged to TensorBoard.

:class:`DynamicsProbe` is a checkpoint hook of the trainers (:mod:`agents.tensorboard`: ``agents`` cannot import
``analysis``, so the hook is handed to them: ``dmd train`` and the experiment cells do it by default,
``train_rl(..., checkpoint_hooks=[DynamicsProbe()])`` in library code). At each checkpoint it measures the network
being trained with the analysis' own classifier, :func:`~analysis.dynamics.maps.attractor_map` on a small stimulus
grid with short recordings (the same kinds and rules, at a lower resolution: an orbit the full recording resolves,
such as a period above ``n_record`` or a slow approach, can come out unresolved or as another kind, so the probe
shows trends and the full analysis gives the numbers of record), and logs

* ``dynamics/spectral_radius``: the spectral radius of ``W_rec``;
* ``dynamics/qp_fraction``: the trial-reachable quasi-periodic fraction (``qp_fraction_reachable`` of the map: the
  states trials visit during the stimulus, held at each grid input, whose bounded attractor is quasi-periodic);
* ``dynamics/fixed_point_fraction``, ``dynamics/periodic_fraction``, ``dynamics/chaotic_fraction``: the same for the
  other bounded kinds (with the QP fraction they sum to 1 over the bounded attractors);
* ``dynamics/divergent_fraction`` and ``dynamics/unresolved_fraction``: of all trial-reachable states (never in the
  denominators above; ``divergent_fraction_reachable`` and ``unresolved_fraction_reachable`` of the map);
* ``dynamics/n_attractors``: distinct attractors per grid input (mean multistability);
* ``dynamics/probe_s``: the probe's wall time;

and two images: ``dynamics/attractor_map`` (the dominant kind over the grid, one panel per context:
:func:`~analysis.dynamics.figures.plot_attractor_map`) and ``dynamics/trajectories`` (trial trajectories in PCA space
with the stimulus-stage attractors: :func:`~analysis.dynamics.figures.plot_trajectories_pca`).

The probe draws nothing from the training's generators: its trials come from ``default_rng(seed)`` and its random
states from ``find_attractors``' own seeded streams (and the trainers restore the global generators after every
hook anyway), so training is bit-identical with and without it. With the same settings the probe's numbers are the
analysis' numbers: ``attractor_map(checkpoint_zip, **probe.map_settings())`` of the checkpoint saved at that step
gives the same fractions (``tests/test_tensorboard.py`` checks it).

**Cost.** The defaults (a 3 x 3 coherence grid per context, 8 trial states per input, 64 trials, 400 + 400 steps of
recording instead of the analysis' 2,000 + 2,000) keep the probe and the histograms under 10% of a level-3 RL run's
wall time at the default checkpoint schedule (``python benchmarks/bench_tensorboard.py`` measures it).

Example:
    >>> from agents import train_sl
    >>> from analysis.dynamics.probe import DynamicsProbe
    >>> result = train_sl(3, seed=0, checkpoint_hooks=[DynamicsProbe()])    # doctest: +SKIP
    >>> DynamicsProbe().measure(result.model, result.model.dmd_metadata)     # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, Optional

import numpy as np

from analysis.dynamics.maps import AttractorMap, attractor_map

if TYPE_CHECKING:
    from dm_envs import TaskConfig

    from agents.tensorboard import CheckpointContext
    from analysis.network import Network, Rollout

__all__ = ["DynamicsProbe", "ProbeResult", "reachable_fractions", "spectral_radius"]


def spectral_radius(W: np.ndarray) -> float:
    """The largest eigenvalue modulus of a square matrix."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(W, dtype=np.float64))))) if np.size(W) else 0.0


def reachable_fractions(amap: AttractorMap) -> dict[str, float]:
    """Trial-reachable fractions of every kind of a stimulus-stage map (:meth:`AttractorMap.kind_fractions
    <analysis.dynamics.maps.AttractorMap.kind_fractions>` with ``reachable=True``): each attractor weighted by the
    trial-visited states in its basin, as the map's headline ``qp_fraction_reachable``."""
    return amap.kind_fractions(reachable=True)


@dataclass
class ProbeResult:
    """What one probe measured.

    Attributes:
        scalars: ``dynamics/*`` tag -> value (see the module docstring).
        amap: The stimulus-stage :class:`~analysis.dynamics.maps.AttractorMap`.
        rollout: The trials it was computed from.
        network: The network as float64 arrays.
    """

    scalars: dict[str, float]
    amap: AttractorMap
    rollout: "Rollout"
    network: "Network"


@dataclass
class DynamicsProbe:
    """Checkpoint hook: the network's attractors on a small stimulus grid, as ``dynamics/*`` scalars and images.

    Args:
        grid: Coherence grid size per stream (``stimulus_grid``; 3: ``-c_max, 0, c_max``).
        n_observed: Trial-visited states per grid input (the trial-reachable fractions are over them).
        n_init: Random initial states per grid input (they find attractors trials do not reach; they do not enter
            the reachable fractions).
        trials: Trials drawn (with noise) to take the visited states from.
        seed: Seed of the trials, the choice of states and the classifier's random frames (the probe's own; never a
            training stream).
        n_transient: Steps discarded before recording (the analysis: 2,000).
        n_record: Steps recorded per pass (the analysis: 2,000).
        max_period: Longest period searched (at most ``n_record``).
        images: Log the attractor-map and trajectory images.
        every: Probe every this many checkpoints (1: all; the final model is always probed).
    """

    grid: int = 3
    n_observed: int = 8
    n_init: int = 0
    trials: int = 64
    seed: int = 0
    n_transient: int = 400
    n_record: int = 400
    max_period: int = 400
    images: bool = True
    every: int = 1

    def __post_init__(self) -> None:
        self._calls = 0

    def map_settings(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~analysis.dynamics.maps.attractor_map` that reproduce the probe's map (with
        ``trials`` as a number: the same trials are drawn from the model's task)."""
        return dict(grid=self.grid, n_init=self.n_init, seed=self.seed, n_observed=self.n_observed,
                    trials=self.trials, progress=False, n_transient=self.n_transient, n_record=self.n_record,
                    max_period=min(self.max_period, self.n_record), n_jobs=1)

    def settings(self) -> dict[str, Any]:
        """The probe's settings (for records)."""
        return asdict(self)

    def measure(self, policy_or_model: Any, config: "TaskConfig | Mapping[str, Any] | None" = None) -> ProbeResult:
        """Probe a policy (or a model, a saved zip, a :class:`~analysis.network.Network`) without logging.

        Args:
            policy_or_model: What to probe; an ``agents.RNNPolicy`` runs its trials in torch (the states SB3 sees).
            config: The task (a ``TaskConfig``, its dict, or a model's ``dmd_metadata`` holding ``task_config``);
                default: the model's own.
        """
        from dm_envs import TaskConfig, sample_trials

        from analysis.network import Network, rollout

        t0 = time.perf_counter()
        if isinstance(config, Mapping):
            config = TaskConfig.from_dict(config.get("task_config", config))
        if isinstance(policy_or_model, Network):
            net, source = policy_or_model, None
            if config is not None:
                net = replace(net, config=config)
        else:
            if isinstance(policy_or_model, (str, os.PathLike)):  # a saved zip: its policy, as attractor_map does
                import agents

                policy_or_model = agents.load_model(policy_or_model)
            net, source = Network.from_policy(policy_or_model, config=config), policy_or_model
        cfg = net.config if config is None else config
        if cfg is None:
            raise ValueError("the probe needs the task: pass config= (the model carries no task config)")
        settings = self.map_settings()
        trials = sample_trials(cfg, int(settings.pop("trials")), np.random.default_rng(self.seed), noise=True)
        run = rollout(source, trials, config=cfg) if source is not None else net.forward(trials)
        amap = attractor_map(net, rollout=run, **settings)
        frac = reachable_fractions(amap)
        scalars = {
            "dynamics/spectral_radius": spectral_radius(net.W_rec),
            "dynamics/qp_fraction": frac["quasi_periodic"],
            "dynamics/fixed_point_fraction": frac["fixed_point"],
            "dynamics/periodic_fraction": frac["periodic"],
            "dynamics/chaotic_fraction": frac["chaotic"],
            "dynamics/divergent_fraction": frac["divergent"],
            "dynamics/unresolved_fraction": frac["unresolved"],
            "dynamics/n_attractors": float(amap.n_attractors.mean()),
        }
        scalars["dynamics/probe_s"] = time.perf_counter() - t0
        return ProbeResult(scalars=scalars, amap=amap, rollout=run, network=net)

    def __call__(self, ctx: "CheckpointContext") -> Optional[dict[str, float]]:
        """Measure the policy at a checkpoint and log the scalars and images through ``ctx.writer``."""
        self._calls += 1
        if not ctx.final and (self._calls - 1) % max(int(self.every), 1):
            return None
        t0 = time.perf_counter()
        res = self.measure(ctx.policy, ctx.config)
        w, step = ctx.writer, ctx.env_steps
        if self.images:
            from analysis.dynamics.figures import plot_attractor_map, plot_trajectories_pca

            w.add_image("dynamics/attractor_map", figure_image(plot_attractor_map(res.amap)), step,
                        dataformats="HWC")
            w.add_image("dynamics/trajectories",
                        figure_image(plot_trajectories_pca(res.rollout, [res.amap], max_trials=24, max_orbits=12,
                                                           seed=self.seed)), step, dataformats="HWC")
        res.scalars["dynamics/probe_s"] = time.perf_counter() - t0
        for tag, value in res.scalars.items():
            if np.isfinite(value):
                w.add_scalar(tag, value, step)
        return {k: v for k, v in res.scalars.items() if k != "dynamics/probe_s"}


def figure_image(fig: Any, dpi: int = 72) -> np.ndarray:
    """A matplotlib figure rendered to an ``(H, W, 3)`` uint8 array with the Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
