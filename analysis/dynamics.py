"""The trained network as a dynamical system: the autonomous piecewise-linear map of a stage, and rollouts.

Within a trial stage the input ``x`` is constant (up to noise), so the network is the autonomous map

    ``F_x(h) = relu(W_rec h + W_in x + b_rec)``

(``b_rec = 0`` for the paper's bias-free network). It is piecewise linear: on the region where the activation
pattern ``D = diag(1[W_rec h + W_in x + b_rec > 0])`` is fixed, ``F_x(h) = D (W_rec h + c)`` with the *drive*
``c = W_in x + b_rec``, and its Jacobian is ``D W_rec``. :class:`RNNDynamics` holds the weights in float64 and
evaluates the map, its Jacobian and the action readout, batched over states and inputs;
:mod:`analysis.fixed_points` and :mod:`analysis.attractors` study it.

:func:`load_dynamics` builds the map from a saved policy (RL or SL alike) with the task it was trained on, and
:func:`rollout` runs a saved policy over trials from :mod:`dm_envs`, giving exactly the hidden states the policy
computes inside Stable-Baselines3.

Example:
    >>> rng = np.random.default_rng(0)
    >>> dyn = RNNDynamics(rng.uniform(-0.1, 0.1, (50, 50)), rng.uniform(-0.1, 0.1, (50, 3)))
    >>> traj = dyn.simulate(np.zeros((4, 50)), np.ones(3), n_steps=100)
    >>> traj.shape
    (4, 101, 50)
    >>> bool(np.allclose(dyn.step(traj[:, -1], np.ones(3)), traj[:, -1]))   # contracting: it settled
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

if TYPE_CHECKING:  # heavy imports only for type checkers
    from dm_envs import TaskConfig, TrialBatch

ArrayLike = Union[np.ndarray, "list[float]"]
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["RNNDynamics", "Rollout", "load_dynamics", "rollout"]


def _as_f64(a: Any, name: str, ndim: int) -> np.ndarray:
    arr = np.array(a, dtype=np.float64, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has non-finite entries")
    arr.flags.writeable = False  # the map is a value: protect it from accidental in-place edits
    return arr


class RNNDynamics:
    """The autonomous piecewise-linear map ``h -> relu(W_rec h + W_in x + b_rec)`` of a ReLU RNN, in float64.

    Every method is batched: states ``h`` are ``(H,)`` or ``(B, H)``, inputs ``x`` are ``(D,)`` (shared) or
    ``(B, D)`` (one per state); leading shapes broadcast as in numpy.

    Args:
        W_rec: Recurrent weights ``(H, H)``.
        W_in: Input weights ``(H, D)``.
        W_out: Action readout ``(A, H)`` (optional; needed by :meth:`readout` and :meth:`decision`).
        b_rec: Recurrent bias ``(H,)`` (default zeros, the paper's bias-free network).
        b_out: Readout bias ``(A,)`` (default zeros).
        config: The :class:`dm_envs.TaskConfig` the network was trained on (optional; :func:`load_dynamics` sets
            it), used by :meth:`stage_input`.
        metadata: Free-form facts about the network (learning rule, seed, source path, ...).

    Attributes:
        W_rec, W_in, W_out, b_rec, b_out: Read-only float64 copies of the weights.
        hidden_size, input_size, n_actions: ``H``, ``D``, ``A`` (``n_actions`` is 0 without a readout).

    Example:
        >>> W = np.array([[0.5, 0.0], [0.0, 0.5]])
        >>> dyn = RNNDynamics(W, np.eye(2), W_out=np.array([[1.0, -1.0], [-1.0, 1.0]]))
        >>> dyn.step(np.zeros(2), np.array([1.0, -1.0]))
        array([1., 0.])
        >>> dyn.jacobian(np.array([2.0, 0.0]), np.array([1.0, -1.0]))   # unit 2 is off: its row is zero
        array([[0.5, 0. ],
               [0. , 0. ]])
        >>> int(dyn.decision(np.array([2.0, 0.0])))
        0
    """

    def __init__(
        self,
        W_rec: ArrayLike,
        W_in: ArrayLike,
        W_out: Optional[ArrayLike] = None,
        b_rec: Optional[ArrayLike] = None,
        b_out: Optional[ArrayLike] = None,
        *,
        config: Optional["TaskConfig"] = None,
        metadata: Optional[dict[str, Any]] = None,
    ) -> None:
        self.W_rec = _as_f64(W_rec, "W_rec", 2)
        H = self.W_rec.shape[0]
        if self.W_rec.shape != (H, H):
            raise ValueError(f"W_rec must be square, got shape {self.W_rec.shape}")
        self.W_in = _as_f64(W_in, "W_in", 2)
        if self.W_in.shape[0] != H:
            raise ValueError(f"W_in must be (H={H}, D), got shape {self.W_in.shape}")
        self.b_rec = _as_f64(np.zeros(H) if b_rec is None else b_rec, "b_rec", 1)
        if self.b_rec.shape != (H,):
            raise ValueError(f"b_rec must be ({H},), got shape {self.b_rec.shape}")
        self.W_out: Optional[np.ndarray] = None
        self.b_out: Optional[np.ndarray] = None
        if W_out is not None:
            self.W_out = _as_f64(W_out, "W_out", 2)
            if self.W_out.shape[1] != H:
                raise ValueError(f"W_out must be (A, H={H}), got shape {self.W_out.shape}")
            A = self.W_out.shape[0]
            self.b_out = _as_f64(np.zeros(A) if b_out is None else b_out, "b_out", 1)
            if self.b_out.shape != (A,):
                raise ValueError(f"b_out must be ({A},), got shape {self.b_out.shape}")
        elif b_out is not None:
            raise ValueError("b_out given without W_out")
        self.config = config
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ------------------------------------------------------------------------------------------ sizes
    @property
    def hidden_size(self) -> int:
        """Number of recurrent units ``H``."""
        return int(self.W_rec.shape[0])

    @property
    def input_size(self) -> int:
        """Number of input channels ``D``."""
        return int(self.W_in.shape[1])

    @property
    def n_actions(self) -> int:
        """Number of readout actions ``A`` (0 without a readout)."""
        return 0 if self.W_out is None else int(self.W_out.shape[0])

    def __repr__(self) -> str:
        return f"RNNDynamics(H={self.hidden_size}, D={self.input_size}, A={self.n_actions})"

    # ------------------------------------------------------------------------------------------ the map
    def _check_h(self, h: ArrayLike) -> np.ndarray:
        h = np.asarray(h, dtype=np.float64)
        if h.shape[-1:] != (self.hidden_size,):
            raise ValueError(f"states must end in H={self.hidden_size}, got shape {h.shape}")
        return h

    def drive(self, x: ArrayLike) -> np.ndarray:
        """The constant part of the pre-activation, ``c = W_in x + b_rec``.

        Args:
            x: Inputs ``(..., D)``.

        Returns:
            ``(..., H)`` float64.

        Example:
            >>> RNNDynamics(np.zeros((2, 2)), np.eye(2), b_rec=[0.0, 1.0]).drive([3.0, 4.0])
            array([3., 5.])
        """
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.input_size,):
            raise ValueError(f"inputs must end in D={self.input_size}, got shape {x.shape}")
        return x @ self.W_in.T + self.b_rec

    def pre(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """Pre-activations ``W_rec h + W_in x + b_rec``, ``(..., H)``.

        Example:
            >>> RNNDynamics(np.eye(2), np.eye(2)).pre([1.0, 2.0], [0.5, -3.0])
            array([ 1.5, -1. ])
        """
        return self._check_h(h) @ self.W_rec.T + self.drive(x)

    def step(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """One step of the map, ``F_x(h) = relu(W_rec h + W_in x + b_rec)``, ``(..., H)``.

        Example:
            >>> RNNDynamics(np.eye(2), np.eye(2)).step([1.0, 2.0], [0.5, -3.0])
            array([1.5, 0. ])
        """
        return np.maximum(self.pre(h, x), 0.0)

    def pattern(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """The activation pattern ``pre(h, x) > 0`` (bool, ``(..., H)``): which linear region ``h`` lies in.

        Example:
            >>> RNNDynamics(np.eye(2), np.eye(2)).pattern([1.0, 2.0], [0.5, -3.0])
            array([ True, False])
        """
        return self.pre(h, x) > 0.0

    def jacobian(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """The Jacobian ``dF/dh = diag(pre(h, x) > 0) W_rec``, ``(..., H, H)``.

        ReLU's derivative at exactly 0 is taken as 0 (the unit is off), as in PyTorch.

        Example:
            >>> RNNDynamics(np.eye(2), np.eye(2)).jacobian([1.0, 2.0], [0.5, -3.0])
            array([[1., 0.],
                   [0., 0.]])
        """
        return self.pattern(h, x)[..., :, None] * self.W_rec

    def speed(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """The kinetic energy ``q(h) = 1/2 ||F_x(h) - h||^2`` minimised by fixed-point finders, ``(...)``.

        Example:
            >>> float(RNNDynamics(np.eye(2), np.eye(2)).speed([1.0, 2.0], [0.5, -3.0]))
            2.125
        """
        h = self._check_h(h)
        return 0.5 * np.sum((self.step(h, x) - h) ** 2, axis=-1)

    def simulate(
        self,
        h0: ArrayLike,
        x: ArrayLike,
        n_steps: int,
        *,
        record: bool = True,
        return_pre: bool = False,
    ) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Iterate the map from ``h0`` under constant inputs ``x``, batched over trajectories.

        Args:
            h0: Initial states ``(H,)`` or ``(B, H)``.
            x: Inputs ``(D,)`` (shared) or ``(B, D)`` (one per trajectory).
            n_steps: Number of steps.
            record: Return the whole trajectory (default) or only the final states.
            return_pre: Also return the pre-activations of every step (needs ``record``).

        Returns:
            With ``record``: the trajectory ``(B, n_steps + 1, H)`` starting with ``h0`` (``(n_steps + 1, H)`` when
            neither ``h0`` nor ``x`` is batched), and with ``return_pre`` also the pre-activations ``pre[t]`` that
            produced ``h[t + 1]`` (``(B, n_steps, H)``). Without ``record``: the final states ``(B, H)`` (or
            ``(H,)``).

        Example:
            >>> dyn = RNNDynamics(0.5 * np.eye(2), np.eye(2))
            >>> dyn.simulate([4.0, 4.0], [1.0, -1.0], 3)
            array([[4.  , 4.  ],
                   [3.  , 1.  ],
                   [2.5 , 0.  ],
                   [2.25, 0.  ]])
            >>> dyn.simulate(np.ones((5, 2)), [1.0, -1.0], 60, record=False).round(6)[0]
            array([2., 0.])
        """
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        if return_pre and not record:
            raise ValueError("return_pre needs record=True")
        h0 = self._check_h(h0)
        c = self.drive(x)
        single = h0.ndim == 1 and c.ndim == 1
        lead = np.broadcast_shapes(h0.shape[:-1], c.shape[:-1])
        if len(lead) > 1:
            raise ValueError("h0 and x may have at most one batch dimension")
        B = lead[0] if lead else 1
        h = np.array(np.broadcast_to(h0, (B, self.hidden_size)))
        c = np.broadcast_to(c, (B, self.hidden_size))
        traj = np.empty((B, n_steps + 1, self.hidden_size)) if record else None
        pres = np.empty((B, n_steps, self.hidden_size)) if return_pre else None
        if record:
            traj[:, 0] = h
        for t in range(n_steps):
            pre = h @ self.W_rec.T
            pre += c
            if return_pre:
                pres[:, t] = pre
            h = np.maximum(pre, 0.0, out=pre)
            if record:
                traj[:, t + 1] = h
        if not record:
            return h[0] if single else h
        if single:
            traj = traj[0]
            pres = None if pres is None else pres[0]
        return (traj, pres) if return_pre else traj

    # ------------------------------------------------------------------------------------------ readout
    def readout(self, h: ArrayLike) -> np.ndarray:
        """Action logits ``W_out h + b_out``, ``(..., A)``.

        Raises:
            ValueError: the dynamics has no readout.

        Example:
            >>> RNNDynamics(np.eye(2), np.eye(2), W_out=[[1.0, 0.0]]).readout([2.0, 5.0])
            array([2.])
        """
        if self.W_out is None:
            raise ValueError("this RNNDynamics has no readout (W_out was not given)")
        return self._check_h(h) @ self.W_out.T + self.b_out

    def decision(self, h: ArrayLike) -> np.ndarray:
        """The greedy action ``argmax(W_out h + b_out)`` (0 = fixate; ``k`` = choice ``k``), ``(...)`` int.

        Example:
            >>> int(RNNDynamics(np.eye(2), np.eye(2), W_out=np.eye(2)).decision([0.0, 3.0]))
            1
        """
        return np.argmax(self.readout(h), axis=-1)

    # ------------------------------------------------------------------------------------------ task
    def stage_input(self, stage: str, **conditions: Any) -> np.ndarray:
        """The noise-free input of a task stage (:func:`dm_envs.stage_input` with this network's task).

        Args:
            stage: ``"fixation"``, ``"stimulus"``, ``"delay"`` or ``"decision"``.
            **conditions: ``signed_coherence=``, ``coherence=``, ``direction=``, ``context=``.

        Raises:
            ValueError: no task config is attached.

        Example:
            >>> from dm_envs import make_config
            >>> dyn = RNNDynamics(np.zeros((4, 4)), np.zeros((4, 7)), config=make_config(3))
            >>> dyn.stage_input("stimulus", signed_coherence=[0.2, -0.1], context=1).round(2)
            array([1.  , 0.6 , 0.4 , 0.45, 0.55, 0.  , 1.  ])
        """
        if self.config is None:
            raise ValueError("no task config attached (build it with load_dynamics, or pass config=)")
        from dm_envs import stage_input

        return stage_input(self.config, stage, **conditions)


# ---------------------------------------------------------------------------------------------- saved policies
def load_dynamics(path_or_model: Any) -> RNNDynamics:
    """The map of a saved RNN policy (RL or SL alike), with the task config it was trained on.

    Args:
        path_or_model: A model zip saved by the project's trainers, a loaded model, or an ``agents.RNNPolicy``.

    Returns:
        :class:`RNNDynamics` with the actor's ``W_rec``, ``W_in``, ``b_rec`` and action readout; ``config`` is the
        model's task (``None`` if it carries no ``dmd_metadata``) and ``metadata`` its ``dmd_metadata`` (plus
        ``"path"`` when loaded from a file).

    Raises:
        FileNotFoundError: no file at the path.
        agents.ModelLoadError: not a model of this project.

    Example:
        >>> dyn = load_dynamics("runs/rl_seed0/final_model.zip")        # doctest: +SKIP
        >>> x = dyn.stage_input("stimulus", signed_coherence=[0.1, -0.2], context=0)   # doctest: +SKIP
    """
    import agents
    from dm_envs import TaskConfig

    model = path_or_model
    meta: dict[str, Any] = {}
    if isinstance(path_or_model, (str, os.PathLike)):
        model = agents.load_model(path_or_model)
        meta["path"] = os.fspath(path_or_model)
    w = agents.rnn_weights(model)
    carried = getattr(model, "dmd_metadata", None)
    config = None
    if isinstance(carried, dict):
        meta = {**carried, **meta}
        if carried.get("task_config") is not None:
            config = TaskConfig.from_dict(carried["task_config"])
    return RNNDynamics(w.W_rec, w.W_in, W_out=w.W_out, b_rec=w.b_rec, b_out=w.b_out, config=config, metadata=meta)


@dataclass
class Rollout:
    """A policy run over whole trials from ``h0 = 0`` (the state is reset at every trial start, as in SB3).

    Attributes:
        hidden: ``(N, T, H)`` hidden states ``h_t`` after reading the observation ``x_t`` (float32, exactly the
            policy's; entries past a trial's ``length`` are padding).
        logits: ``(N, T, A)`` action logits.
        actions: ``(N, T)`` greedy actions.
        values: ``(N, T)`` the critic's value estimates.
        trials: The trials (:class:`dm_envs.TrialBatch`: observations, stages, coherences, contexts, ...).
        config: The task config.
    """

    hidden: np.ndarray
    logits: np.ndarray
    actions: np.ndarray
    values: np.ndarray
    trials: "TrialBatch"
    config: "TaskConfig"

    def stage_states(self, stage: str, which: str = "last") -> np.ndarray:
        """The hidden state at the first or last step of a stage in every trial, ``(N, H)``.

        Args:
            stage: Stage name (``"fixation"``, ``"stimulus"``, ``"delay"``, ``"decision"``).
            which: ``"first"`` or ``"last"`` step of the stage. A trial whose stage lasts 0 steps gives the state
                just before the stage (the last step of the previous stage).

        Example:
            >>> h_end = run.stage_states("stimulus", "last")   # decision-stage initial conditions  # doctest: +SKIP
        """
        from dm_envs import STAGES

        sid = STAGES.index(stage)
        onset = self.trials.onset[:, sid]
        if which == "first":
            t = onset
        elif which == "last":
            t = onset + self.trials.duration[:, sid] - 1
        else:
            raise ValueError(f"which must be 'first' or 'last', got {which!r}")
        t = np.clip(t, 0, self.hidden.shape[1] - 1)
        return self.hidden[np.arange(len(t)), t]


def rollout(
    path_or_policy: Any,
    trials: Union["TrialBatch", int] = 256,
    *,
    seed: int = 0,
    noise: bool = True,
    config: Optional["TaskConfig"] = None,
    **conditions: Any,
) -> Rollout:
    """Hidden states of a saved policy over trials: exactly what the policy computes inside Stable-Baselines3.

    Args:
        path_or_policy: Model zip path, loaded model, or ``agents.RNNPolicy``.
        trials: A :class:`dm_envs.TrialBatch`, or the number of trials to draw from the model's task.
        seed: Seed of the drawn trials.
        noise: Whether drawn trials carry observation noise (``False``: the noise-free stimulus).
        config: Task to draw trials from (default: the model's own, from its ``dmd_metadata``).
        **conditions: Passed to :func:`dm_envs.sample_trials` (``signed_coherence=``, ``context=``, ...).

    Returns:
        :class:`Rollout` with the trials.

    Example:
        >>> run = rollout("runs/rl_seed0/final_model.zip", 512, seed=1, noise=False)   # doctest: +SKIP
        >>> run.hidden.shape                                                            # doctest: +SKIP
        (512, 23, 250)
    """
    import agents
    from dm_envs import TaskConfig, sample_trials

    model = agents.load_model(path_or_policy) if isinstance(path_or_policy, (str, os.PathLike)) else path_or_policy
    if config is None:
        meta = getattr(model, "dmd_metadata", None)
        if isinstance(meta, dict) and meta.get("task_config") is not None:
            config = TaskConfig.from_dict(meta["task_config"])
    if isinstance(trials, (int, np.integer)):
        if config is None:
            raise ValueError("the model carries no task config: pass config= or a TrialBatch")
        trials = sample_trials(config, int(trials), np.random.default_rng(seed), noise=noise, **conditions)
    elif conditions:
        raise TypeError("trial conditions are only used when trials is a number")
    run = agents.run_policy(model, trials)
    return Rollout(
        hidden=run.hidden,
        logits=run.logits,
        actions=run.actions,
        values=run.values,
        trials=trials,
        config=config,
    )
