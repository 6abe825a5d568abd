"""Any recurrent policy as a dynamical system: fixed points, attractors and maps by autograd (torch).

The exact piecewise-linear analysis (:mod:`~analysis.dynamics.fixed_point`, :mod:`~analysis.dynamics.attractors`)
needs the package's ReLU network. This module analyses any recurrent map ``s_{t+1} = F(s_t, u)`` written in torch:

* :class:`TorchDynamics` holds the map as a function ``step(state, input) -> state`` (batched over rows), the
  readout of the action logits from the state, and the encoding of an observation into the input the step reads.
  :meth:`TorchDynamics.from_policy` builds it from any sb3-contrib ``RecurrentActorCriticPolicy``: the actor's
  ``nn.LSTM`` (state ``(h, c)`` of every layer, concatenated), an ``nn.GRU`` or ``nn.RNN`` (tanh or ReLU, e.g. the
  package's :class:`agents.RNNPolicy`), whatever features extractor precedes it and whatever MLP follows it;
  Jacobians come from autograd (``torch.func``).
* :func:`fixed_points`: minimise the speed ``q(s) = 1/2 |F(s) - s|^2`` from many starts (batched Adam with a
  per-start plateau schedule, or L-BFGS), polish the minima with Newton's method on ``F(s) - s = 0``, keep those with
  ``|F(s) - s| <= tol (1 + |s|)``, and report the Jacobian's eigenvalues and linear stability.
* :func:`find_attractors`: the same search and classification as :func:`analysis.dynamics.attractors.find_attractors`
  (the same :data:`~analysis.dynamics.attractors.KINDS`, thresholds and rules: a quasi-periodic orbit needs
  ``|lambda_1| <= lyap_eps``, ``lambda_2 <= lambda_1 - qp_gap`` and no period; periods are confirmed by a second
  return; ``unresolved`` when the recordings cannot decide), driven by the same engine. What differs is the map's
  calculus: trajectories that slow down are refined by Newton's method (instead of the exact solve of a linear
  region) and join the fixed point when it is linearly stable and close; Lyapunov exponents use the tangent map
  ``J(s) v`` by forward-mode autograd; a recorded orbit whose distance to a stable fixed point (found by Newton from
  its last state) shrinks over the stored orbit is that fixed point's basin (a slow focus, as the ReLU path's
  settled region). The escape test of the ReLU path (a ray in one linear region) does not apply: orbits are
  divergent when ``|s| > divergence_norm``.
* :func:`attractor_map` (:func:`analysis.dynamics.maps.attractor_map`) accepts a :class:`TorchDynamics` or a model
  zip whose policy is not an ``agents.RNNPolicy``, and returns the same :class:`~analysis.dynamics.maps.AttractorMap`.

The package's ReLU RNN keeps its exact path (:class:`analysis.network.Network`); :func:`load_dynamics` picks the
right one for a saved model.

Example:
    >>> import torch
    >>> A = torch.tensor([[0.5, 0.0], [0.0, 0.8]], dtype=torch.float64)
    >>> dyn = TorchDynamics(lambda s, u: s @ A.T + u, state_size=2)      # a contraction: s* = (I - A)^-1 u
    >>> [fp.state.round(6).tolist() for fp in fixed_points(dyn, np.array([1.0, 0.2]), n_init=8)]
    [[2.0, 1.0]]
    >>> [a.kind for a in find_attractors(dyn, np.array([1.0, 0.2]), n_init=8)]
    ['fixed_point']
"""

from __future__ import annotations

import copy
import functools
import os
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch.func import jacfwd, jvp, vmap

from analysis.dynamics.attractors import (
    SETTLE_MARGIN,
    Attractor,
    _Engine,
    _Frames,
    _initial_states,
    _NoBar,
    _Record,
    float32_wanted,
    inputs_and_seeds,
    make_criteria,
    search_inputs,
)
from analysis.dynamics.fixed_point import FixedPoint, adam_rows, unique_rows

if TYPE_CHECKING:
    from dm_envs import TaskConfig, TrialBatch

    from analysis.network import Rollout

__all__ = ["TorchDynamics", "find_attractors", "fixed_points", "load_dynamics", "newton"]

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_SCALE = 0.5
"""Scale ``s`` of random initial states ``N(0, s^2)`` when no states are given (LSTM/GRU states live in (-1, 1))."""


def _t(a: Any, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64)).to(dtype)


# ---------------------------------------------------------------------------------------------- recurrent cells
def _layer_weights(module: Any, layer: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    get = lambda name: getattr(module, f"{name}_l{layer}").detach().to("cpu", dtype)  # noqa: E731
    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    if module.bias:
        b_ih, b_hh = get("bias_ih"), get("bias_hh")
    else:
        b_ih = b_hh = torch.zeros(w_ih.shape[0], dtype=dtype)
    return w_ih, w_hh, b_ih, b_hh


def recurrent_cell(module: Any, dtype: torch.dtype = torch.float64) -> tuple[Step, Step, int, int, Callable]:
    """The step of a torch recurrent module (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and subclasses, any depth).

    The input the step reads is the first layer's input projection ``W_ih x + b`` (constant within a stage, so it
    is computed once per input); the state concatenates the layers' ``h`` (then, for an LSTM, the layers' ``c``).

    Args:
        module: The recurrent module (unidirectional, no ``proj_size``).
        dtype: Arithmetic of the step.

    Returns:
        ``(step, project, state_size, units, output)``: ``step(s, u)``; ``project(features)`` the input ``u``;
        ``state_size``; ``units`` (hidden units per layer); ``output(s)`` the last layer's ``h`` (what the
        policy's heads read).

    Raises:
        ValueError: an unsupported module.
    """
    mode = getattr(module, "mode", None)
    if mode not in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"):
        raise ValueError(f"unsupported recurrent core {type(module).__name__}: expected an nn.LSTM, nn.GRU or nn.RNN")
    if getattr(module, "bidirectional", False) or getattr(module, "proj_size", 0):
        raise ValueError(f"unsupported recurrent core {type(module).__name__}: bidirectional or with proj_size")
    L, H = int(module.num_layers), int(module.hidden_size)
    layers = [_layer_weights(module, layer, dtype) for layer in range(L)]
    w_ih0, _, b_ih0, b_hh0 = layers[0]
    n_h = L * H
    gate = {"RNN_TANH": torch.tanh, "RNN_RELU": torch.relu}.get(mode)

    def project(features: torch.Tensor) -> torch.Tensor:
        u = features.to(dtype) @ w_ih0.T + b_ih0
        return u if mode == "GRU" else u + b_hh0  # the GRU's b_hh of the n gate sits inside r * (...)

    def layer_in(x: torch.Tensor, layer: int) -> torch.Tensor:
        w_ih, _, b_ih, b_hh = layers[layer]
        u = x @ w_ih.T + b_ih
        return u if mode == "GRU" else u + b_hh

    def step(s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        hs, x, cs = [], u, []
        for layer in range(L):
            _, w_hh, _, b_hh = layers[layer]
            h = s[:, layer * H : (layer + 1) * H]
            if layer:
                x = layer_in(x, layer)
            if mode == "LSTM":
                c = s[:, n_h + layer * H : n_h + (layer + 1) * H]
                i, f, g, o = torch.addmm(x, h, w_hh.T).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                cs.append(c)
            elif mode == "GRU":
                xr, xz, xn = x.chunk(3, dim=1)
                hr, hz, hn = torch.addmm(b_hh, h, w_hh.T).chunk(3, dim=1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                h = (1 - z) * torch.tanh(xn + r * hn) + z * h
            else:
                h = gate(torch.addmm(x, h, w_hh.T))
            hs.append(h)
            x = h
        return torch.cat(hs + cs, dim=1)

    def output(s: torch.Tensor) -> torch.Tensor:
        return s[:, (L - 1) * H : L * H]

    return step, project, (2 if mode == "LSTM" else 1) * n_h, H, output


# ---------------------------------------------------------------------------------------------- the map
class TorchDynamics:
    """A recurrent map ``s_{t+1} = F(s_t, u)`` in torch, with its readout and task.

    Within a trial stage the observation ``x`` is constant, so ``u = drive(x)`` is too and ``F(., u)`` is an
    autonomous map. Numpy methods mirror :class:`analysis.network.Network` (states ``(B, S)`` or ``(S,)``, float64).

    Args:
        step: ``step(states (B, S), inputs (B, F)) -> (B, S)`` float64 tensors, row by row (rows must not interact),
            differentiable by ``torch.func``.
        state_size: ``S``.
        readout: ``readout(states (B, S)) -> logits (B, A)`` (optional; needed by decisions and choices).
        encode: ``encode(observations (B, D)) -> inputs (B, F)`` (default: the observation itself).
        step32: Optional float32 version of ``step`` (used for the cheap transient of maps of 64 state dimensions or
            more, as the ReLU path does; classification stays float64).
        n_actions: ``A`` (default: from ``readout`` on a zero state).
        input_size: ``D``, the observation size (default: the task's, else unknown).
        config: The task (:class:`dm_envs.TaskConfig`).
        metadata: Provenance (learning rule, path, ...).
        kind: What the map is (``"lstm"``, ``"gru"``, ``"rnn_tanh"``, ``"rnn_relu"``, ``"custom"``).
        units: Hidden units per layer (default ``S``).

    Example:
        >>> import torch
        >>> dyn = TorchDynamics(lambda s, u: torch.tanh(2.0 * s + u), state_size=1)
        >>> dyn.step(np.array([0.0]), np.array([0.5])).round(4)
        array([0.4621])
    """

    def __init__(
        self,
        step: Step,
        state_size: int,
        *,
        readout: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        encode: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        step32: Optional[Step] = None,
        n_actions: Optional[int] = None,
        input_size: Optional[int] = None,
        config: Optional["TaskConfig"] = None,
        metadata: Optional[dict[str, Any]] = None,
        kind: str = "custom",
        units: Optional[int] = None,
    ) -> None:
        self.step_fn, self.step32 = step, step32
        self.state_size = int(state_size)
        self.readout_fn, self.encode_fn = readout, encode
        if n_actions is None:
            n_actions = 0 if readout is None else int(readout(torch.zeros(1, self.state_size, dtype=torch.float64))
                                                      .shape[-1])
        self.n_actions = int(n_actions)
        self._input_size = input_size
        self.config = config
        self.metadata = dict(metadata or {})
        self.kind = kind
        self.units = int(units or state_size)
        self._parts: Optional[_ActorParts] = None  # the policy's actor (pickling rebuilds from it)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_policy(cls, policy_or_model: Any, *, config: Optional["TaskConfig"] = None) -> "TorchDynamics":
        """The actor of an sb3-contrib recurrent policy (or a model holding one) as a map.

        The state is the actor core's state (LSTM: ``(h, c)`` of every layer; GRU, RNN: ``h``); the input is the
        first layer's projection of the features extractor's output; the readout is ``action_net(mlp_extractor.
        forward_actor(h_last))``. Everything is copied to float64 on the CPU. The task comes from ``config`` or the
        model's ``dmd_metadata``.

        Raises:
            ValueError: not a recurrent actor-critic policy, or an unsupported core.
        """
        policy = getattr(policy_or_model, "policy", policy_or_model)
        if not hasattr(policy, "lstm_actor") or not hasattr(policy, "action_net"):
            raise ValueError(f"expected an sb3-contrib recurrent policy (with lstm_actor), got {type(policy).__name__}")
        meta = getattr(policy_or_model, "dmd_metadata", None)
        meta = dict(meta) if isinstance(meta, dict) else {}
        if config is None and meta.get("task_config") is not None:
            from dm_envs import TaskConfig

            config = TaskConfig.from_dict(meta["task_config"])
        parts = _ActorParts.of(policy)
        dyn = cls._from_parts(parts, config, meta)
        dyn.metadata.setdefault("policy", type(policy).__name__)
        return dyn

    @classmethod
    def _from_parts(cls, parts: "_ActorParts", config: Optional["TaskConfig"], meta: dict[str, Any]
                    ) -> "TorchDynamics":
        step, project, S, units, output = recurrent_cell(parts.core, torch.float64)
        step32 = recurrent_cell(parts.core, torch.float32)[0]

        def encode(obs: torch.Tensor) -> torch.Tensor:
            return project(parts.features(obs))

        def readout(s: torch.Tensor) -> torch.Tensor:
            return parts.action_net(parts.mlp_extractor.forward_actor(output(s)))

        space = parts.observation_space
        D = int(np.prod(space.shape)) if getattr(space, "shape", None) else None
        kind = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}[parts.core.mode]
        dyn = cls(step, S, readout=readout, encode=encode, step32=step32, input_size=D, config=config,
                  metadata=meta, kind=kind, units=units)
        dyn._parts = parts
        return dyn

    @classmethod
    def load(cls, source: Any, *, config: Optional["TaskConfig"] = None) -> "TorchDynamics":
        """From a model zip (any sb3-contrib ``RecurrentPPO``), a loaded model or a policy (``metadata["path"]``
        names the file)."""
        if isinstance(source, cls):
            return source if config is None else source.with_config(config)
        if isinstance(source, (str, os.PathLike)):
            import agents

            dyn = cls.from_policy(agents.load_model(source, rnn_only=False), config=config)
            dyn.metadata["path"] = os.fspath(source)
            return dyn
        return cls.from_policy(source, config=config)

    def with_config(self, config: "TaskConfig") -> "TorchDynamics":
        """A copy bound to another task."""
        new = copy.copy(self)
        new.config = config
        new.metadata = dict(self.metadata)
        return new

    def __reduce__(self) -> Any:  # worker processes rebuild the map from the policy's actor modules
        if self._parts is None:
            return object.__reduce__(self)
        return (TorchDynamics._from_parts, (self._parts, self.config, self.metadata))

    def __repr__(self) -> str:
        return f"TorchDynamics({self.kind}, S={self.state_size}, A={self.n_actions})"

    # ------------------------------------------------------------------ sizes
    @property
    def hidden_size(self) -> int:
        """The state dimension ``S`` (an LSTM's is twice its units per layer)."""
        return self.state_size

    @property
    def input_size(self) -> int:
        """The observation size ``D`` (the task's when not known from the policy)."""
        if self._input_size is not None:
            return int(self._input_size)
        if self.config is not None:
            return int(self.config.obs_dim)
        raise ValueError("the observation size is unknown (no policy observation space, no task)")

    # ------------------------------------------------------------------ torch
    def inputs(self, x: Any) -> torch.Tensor:
        """``drive(x)`` as a float64 tensor ``(B, F)``."""
        x = _t(np.atleast_2d(np.asarray(x, dtype=np.float64)))
        with torch.no_grad():
            return x if self.encode_fn is None else self.encode_fn(x).to(torch.float64)

    def f(self, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The step on tensors (float64)."""
        return self.step_fn(s, u)

    def jacobians(self, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``dF/ds`` at each row, ``(B, S, S)`` (autograd, forward mode)."""
        one = lambda z, v: self.step_fn(z[None], v[None])[0]  # noqa: E731
        return vmap(jacfwd(one, argnums=0))(s, u)

    # ------------------------------------------------------------------ numpy
    def _check_s(self, s: Any) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        if s.shape[-1:] != (self.state_size,):
            raise ValueError(f"states must end in S={self.state_size}, got shape {s.shape}")
        return s

    def drive(self, x: Any) -> np.ndarray:
        """The input the step reads for observations ``x`` (``(D,)`` or ``(B, D)``), float64."""
        u = self.inputs(x).numpy()
        return u[0] if np.ndim(x) == 1 else u

    def _pair(self, s: Any, x: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
        s = self._check_s(s)
        u = self.inputs(x)
        single = s.ndim == 1 and np.ndim(x) == 1
        B = max(int(np.prod(s.shape[:-1])) if s.ndim > 1 else 1, len(u))
        st = _t(np.broadcast_to(np.atleast_2d(s), (B, self.state_size)))
        return st, u.expand(B, -1), single

    def step(self, s: Any, x: Any) -> np.ndarray:
        """One step ``F(s, drive(x))`` (numpy, batched like :meth:`Network.step`)."""
        st, u, single = self._pair(s, x)
        with torch.no_grad():
            out = self.step_fn(st, u).numpy()
        return out[0] if single else out

    def jacobian(self, s: Any, x: Any) -> np.ndarray:
        """``dF/ds`` at ``s`` under input ``x``, ``(S, S)`` or ``(B, S, S)``."""
        st, u, single = self._pair(s, x)
        J = self.jacobians(st, u).numpy()
        return J[0] if single else J

    def speed(self, s: Any, x: Any) -> np.ndarray:
        """``q(s) = 1/2 |F(s) - s|^2``."""
        return 0.5 * np.sum((self.step(s, x) - self._check_s(s)) ** 2, axis=-1)

    def simulate(self, s0: Any, x: Any, n_steps: int, *, record: bool = True) -> np.ndarray:
        """Iterate under constant ``x``: ``(B, n_steps + 1, S)`` with ``record`` (else the final states)."""
        st, u, single = self._pair(s0, x)
        traj = [st]
        with torch.no_grad():
            for _ in range(int(n_steps)):
                st = self.step_fn(st, u)
                if record:
                    traj.append(st)
        out = torch.stack(traj, dim=1).numpy() if record else st.numpy()
        return out[0] if single else out

    def readout(self, s: Any) -> np.ndarray:
        """Action logits ``(..., A)``.

        Raises:
            ValueError: no readout.
        """
        if self.readout_fn is None:
            raise ValueError("this map has no readout")
        s = self._check_s(s)
        with torch.no_grad():
            out = self.readout_fn(_t(s.reshape(-1, self.state_size))).numpy()
        return out.reshape(s.shape[:-1] + (out.shape[-1],))

    def decision(self, s: Any) -> np.ndarray:
        """The greedy action ``argmax`` of the logits."""
        return np.argmax(self.readout(s), axis=-1)

    def stage_input(self, stage: str, **conditions: Any) -> np.ndarray:
        """The noise-free observation of a task stage (:func:`dm_envs.stage_input` with this map's task)."""
        if self.config is None:
            raise ValueError("no task config attached (pass config=)")
        from dm_envs import stage_input

        return stage_input(self.config, stage, **conditions)

    # ------------------------------------------------------------------ units
    @property
    def n_units(self) -> int:
        """The hidden units ``h`` the policy's heads read, over every layer: an LSTM's ``h`` (not its cell state
        ``c``), a GRU's or RNN's whole state; a custom map's whole state."""
        if self.kind == "lstm":
            return self.state_size // 2
        return self.state_size

    def unit_states(self, states: np.ndarray) -> np.ndarray:
        """The units' part ``h`` of states ``(..., S)``: ``(..., n_units)`` (an LSTM's ``(h, c)`` loses ``c``)."""
        return np.asarray(states)[..., : self.n_units]

    def _unit_columns(self) -> np.ndarray:
        """State columns of each unit, ``(n_units, k)``: ``h_i`` (and ``c_i`` for an LSTM)."""
        idx = np.arange(self.n_units)
        return np.stack([idx, idx + self.n_units], 1) if self.kind == "lstm" else idx[:, None]

    def forward(
        self,
        trials: Union["TrialBatch", np.ndarray],
        *,
        unit_mask: Optional[np.ndarray] = None,
        kick: Optional[np.ndarray] = None,
        kick_step: Optional[np.ndarray] = None,
        kick_relative: bool = False,
        h0: Optional[np.ndarray] = None,
        return_hidden: bool = True,
        dtype: Any = np.float64,
    ) -> "Rollout":
        """Run over whole trials from the zero state (SB3's order: read ``x_t``, update, act), with optional
        silenced units and kicks (the arguments of :meth:`analysis.network.Network.forward`).

        Args:
            trials: A :class:`dm_envs.TrialBatch` or observations ``(N, T, D)``.
            unit_mask: ``(n_units,)`` or ``(N, n_units)`` units to keep; the others are **silenced**: their ``h_i``
                (and an LSTM's ``c_i``) clamped to 0 at every step, so they drive nothing.
            kick: ``(N, S)`` perturbation of the full state (an LSTM's ``(h, c)``) of trial ``n`` at step
                ``kick_step[n]`` (after the update; ``-1``: none), re-masked.
            kick_relative: Scale each kick by the norm of the state it perturbs.
            h0: ``(S,)`` or ``(N, S)`` initial state (default 0).
            return_hidden: Keep the states.
            dtype: ``np.float32`` runs the float32 step when the map has one.

        Returns:
            A :class:`~analysis.network.Rollout` whose ``hidden`` holds the full states ``(N, T, S)``
            (:meth:`unit_states` gives the units).
        """
        from analysis.network import Rollout

        batch = None if isinstance(trials, np.ndarray) else trials
        x = np.asarray(trials if batch is None else batch.obs, dtype=np.float64)
        N, T, D = x.shape
        S = self.state_size
        use32 = np.dtype(dtype) == np.float32 and self.step32 is not None
        tdt = torch.float32 if use32 else torch.float64
        step = self.step32 if use32 else self.step_fn
        keep = None
        if unit_mask is not None:
            m = np.asarray(unit_mask)
            m = m if m.dtype == bool else m != 0
            if m.shape not in ((self.n_units,), (N, self.n_units)):
                raise ValueError(f"unit_mask must have shape ({self.n_units},) or ({N}, {self.n_units}), got {m.shape}")
            full = np.ones((N, S), dtype=bool)
            cols = self._unit_columns()
            m = np.broadcast_to(m, (N, self.n_units))
            for j in range(cols.shape[1]):
                full[:, cols[:, j]] = m
            keep = torch.from_numpy(full.astype(np.float64)).to(tdt)
        kick_t = ks = None
        if kick is not None:
            kick_t = torch.from_numpy(np.asarray(kick, dtype=np.float64)).to(tdt)
            if tuple(kick_t.shape) != (N, S):
                raise ValueError(f"kick must have shape ({N}, {S}), got {tuple(kick_t.shape)}")
            ks = np.full(N, -1, np.int64) if kick_step is None else np.asarray(kick_step, np.int64)
        with torch.no_grad():
            u = self.inputs(x.reshape(N * T, D)).reshape(N, T, -1).to(tdt)
            s = (torch.zeros(N, S, dtype=tdt) if h0 is None else
                 torch.from_numpy(np.broadcast_to(np.asarray(h0, np.float64), (N, S)).copy()).to(tdt))
            if keep is not None:
                s = s * keep
            states, logits = [], []
            for t in range(T):
                s = step(s, u[:, t])
                if keep is not None:
                    s = s * keep
                if ks is not None and (ks == t).any():
                    rows = torch.from_numpy(np.flatnonzero(ks == t))
                    k = kick_t[rows]
                    if kick_relative:
                        k = k * torch.linalg.vector_norm(s[rows], dim=1, keepdim=True)
                    s = s.clone()
                    s[rows] = s[rows] + k if keep is None else (s[rows] + k) * keep[rows]
                if return_hidden:
                    states.append(s)
                if self.readout_fn is not None:
                    logits.append(self.readout_fn(s.to(torch.float64)))
            hidden = torch.stack(states, dim=1).to(torch.float64).numpy() if return_hidden else None
            lg = (torch.stack(logits, dim=1).numpy() if logits else np.zeros((N, T, 0)))
        actions = lg.argmax(axis=-1).astype(np.int64) if self.n_actions else np.zeros((N, T), np.int64)
        return Rollout(hidden=hidden, logits=lg, actions=actions, trials=batch,
                       config=self.config if self.config is not None else getattr(batch, "config", None))


class _ActorParts:
    """Float64 CPU copies of a recurrent policy's actor: features extractor, core, MLP and action head."""

    def __init__(self, observation_space: Any, normalize_images: bool, extractor: Any, core: Any,
                 mlp_extractor: Any, action_net: Any) -> None:
        self.observation_space, self.normalize_images = observation_space, normalize_images
        self.extractor, self.core, self.mlp_extractor, self.action_net = extractor, core, mlp_extractor, action_net

    @classmethod
    def of(cls, policy: Any) -> "_ActorParts":
        def copy64(module: Any) -> Any:
            m = copy.deepcopy(module).to("cpu").double().eval()
            for prm in m.parameters():
                prm.requires_grad_(False)
            return m

        for name, prm in policy.named_parameters():
            if name.split(".")[0] in ("pi_features_extractor", "lstm_actor", "mlp_extractor", "action_net") and not (
                    torch.isfinite(prm).all()):
                raise ValueError(f"{name} has {int((~torch.isfinite(prm)).sum())} non-finite (NaN or inf) entries")
        return cls(policy.observation_space, bool(getattr(policy, "normalize_images", True)),
                   copy64(policy.pi_features_extractor), copy64(policy.lstm_actor), copy64(policy.mlp_extractor),
                   copy64(policy.action_net))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """What the policy's ``extract_features`` gives the actor (SB3's preprocessing, then the extractor)."""
        from stable_baselines3.common.preprocessing import preprocess_obs

        return self.extractor(preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images))


def load_dynamics(source: Any, *, config: Optional["TaskConfig"] = None) -> Union["TorchDynamics", Any]:
    """The map of a saved or loaded model: the exact :class:`analysis.network.Network` for the package's ReLU
    ``agents.RNNPolicy``, a :class:`TorchDynamics` for any other sb3-contrib recurrent policy.

    Args:
        source: A model zip, a loaded model or policy, a :class:`~analysis.network.Network` or a
            :class:`TorchDynamics`.
        config: The task (default: the model's ``dmd_metadata``).

    Raises:
        FileNotFoundError, agents.ModelLoadError: as :func:`agents.load_model`.
    """
    from analysis.network import Network

    if isinstance(source, (Network, TorchDynamics)):
        return source if config is None else source.with_config(config)
    import agents

    path = isinstance(source, (str, os.PathLike))
    model = agents.load_model(source, rnn_only=False) if path else source
    try:
        if isinstance(getattr(model, "policy", model), agents.RNNPolicy):
            dyn = Network.from_policy(model, config=config)
        else:
            dyn = TorchDynamics.from_policy(model, config=config)
    except ValueError as err:
        if not path or type(err).__name__ == "ModelLoadError":
            raise
        raise ValueError(f"{os.fspath(source)}: {err}") from err
    if path:
        dyn.metadata["path"] = os.fspath(source)
    return dyn


# ---------------------------------------------------------------------------------------------- Newton
def newton(
    dyn: TorchDynamics, s: np.ndarray, u: Union[np.ndarray, torch.Tensor], *, iters: int = 20, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """Newton's method on ``G(s) = F(s, u) - s = 0``, batched, with step halving when the residual grows.

    Args:
        dyn: The map.
        s: Starting states ``(B, S)``.
        u: Inputs ``(B, F)`` (the map's :meth:`~TorchDynamics.drive`).
        iters: Newton iterations.
        tol: Stop a row once ``|G(s)| <= tol (1 + |s|)``.

    Returns:
        ``(states (B, S), residuals |G(s)| (B,))`` (NaN rows where the Jacobian was singular or a state non-finite).
    """
    st = _t(np.atleast_2d(s)).clone()
    ut = torch.as_tensor(u, dtype=torch.float64).reshape(len(st), -1)
    eye = torch.eye(dyn.state_size, dtype=torch.float64)

    def resid(z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return dyn.step_fn(z, v) - z

    G = resid(st, ut)
    res = torch.linalg.vector_norm(G, dim=1)
    live = torch.nonzero(res > tol * (1 + torch.linalg.vector_norm(st, dim=1))).flatten()
    for _ in range(int(iters)):
        live = live[torch.isfinite(res[live])]
        if not len(live):
            break
        z, v, g = st[live], ut[live], G[live]
        J = dyn.jacobians(z, v) - eye
        delta, info = torch.linalg.solve_ex(J, -g)
        bad = (info != 0) | ~torch.isfinite(delta).all(dim=1)
        delta[bad] = 0.0
        r0 = res[live]
        step = torch.ones(len(live), dtype=torch.float64)
        for _ in range(6):  # backtracking: halve the step of rows whose residual would grow
            zn = z + step[:, None] * delta
            gn = resid(zn, v)
            rn = torch.linalg.vector_norm(gn, dim=1)
            worse = ~(rn <= r0) & ~bad
            if not worse.any():
                break
            step = torch.where(worse, step / 2, step)
        keep = (rn <= r0) & ~bad
        st[live[keep]], G[live[keep]], res[live[keep]] = zn[keep], gn[keep], rn[keep]
        conv = res[live] <= tol * (1 + torch.linalg.vector_norm(st[live], dim=1))
        live = live[~conv & keep]
    return st.numpy(), res.numpy()


def _spectrum(dyn: TorchDynamics, s: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Eigenvalues of the Jacobian at each state, by decreasing modulus, ``(B, S)`` complex."""
    if not len(s):
        return np.zeros((0, dyn.state_size), dtype=np.complex128)
    J = dyn.jacobians(_t(s), torch.as_tensor(u, dtype=torch.float64).reshape(len(s), -1))
    ev = torch.linalg.eigvals(J).numpy()
    return np.take_along_axis(ev, np.argsort(-np.abs(ev), axis=1, kind="stable"), axis=1)


# ---------------------------------------------------------------------------------------------- fixed points
def _seeds(dyn: TorchDynamics, init_states: Optional[np.ndarray], n_init: int, init_scale: Optional[float],
           rng: np.random.Generator) -> np.ndarray:
    """Given states plus ``n_init`` random ``N(0, s^2)`` ones (``s``: the RMS of the given, else 0.5)."""
    S = dyn.state_size
    given = np.zeros((0, S)) if init_states is None else np.asarray(init_states, np.float64).reshape(-1, S)
    if init_scale is None:
        init_scale = float(np.sqrt(np.mean(given**2))) if len(given) else DEFAULT_SCALE
    return np.concatenate([given, rng.normal(0.0, init_scale or DEFAULT_SCALE, (int(n_init), S))])


def _minimise(dyn: TorchDynamics, s0: np.ndarray, u: torch.Tensor, method: str, lr: float, max_iters: int,
              tol_q: float, lr_factor: float = 0.95, lr_patience: int = 5) -> np.ndarray:
    """Minimise ``q = 1/2 |F(s) - s|^2`` from each row of ``s0`` (rows are independent problems)."""
    s = _t(s0).clone().requires_grad_(True)
    ub = u.expand(len(s), -1)

    def q_rows() -> torch.Tensor:
        return 0.5 * torch.sum((dyn.step_fn(s, ub) - s) ** 2, dim=1)

    if method == "lbfgs":  # one joint problem: the sum of the rows' q (block-diagonal Hessian)
        opt = torch.optim.LBFGS([s], lr=1.0, max_iter=max_iters, tolerance_grad=1e-15, tolerance_change=1e-20,
                                history_size=20, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            total = q_rows().sum()
            total.backward()
            return total

        opt.step(closure)
        return s.detach().numpy()
    # Adam with each row's own moments and plateau schedule (Golub & Sussillo's fixed-point-finder)

    def speed_and_gradient(h: np.ndarray, need_grad: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
        z = torch.from_numpy(h).requires_grad_(need_grad)
        q = 0.5 * torch.sum((dyn.step_fn(z, u.expand(len(z), -1)) - z) ** 2, dim=1)
        if not need_grad:
            return q.detach().numpy(), None
        (g,) = torch.autograd.grad(q.sum(), z)
        return q.detach().numpy(), g.numpy()

    return adam_rows(speed_and_gradient, s0, lr=lr, lr_factor=lr_factor, lr_patience=lr_patience,
                     max_iters=max_iters, tol_q=tol_q)[0]


def fixed_points(
    dyn: TorchDynamics,
    x: np.ndarray,
    *,
    init_states: Optional[np.ndarray] = None,
    n_init: int = 64,
    seed: "int | np.random.Generator | None" = 0,
    method: str = "adam",
    init_scale: Optional[float] = None,
    n_sim_steps: int = 200,
    sim_stride: int = 10,
    lr: float = 0.05,
    max_iters: int = 2000,
    newton_iters: int = 30,
    tol: float = 1e-9,
    unique_tol: float = 1e-6,
    stable_only: bool = False,
) -> list[FixedPoint]:
    """Fixed points of ``F(., drive(x))`` by speed minimisation from many starts, polished by Newton's method.

    Starts: ``init_states`` plus ``n_init`` random states ``N(0, s^2)``, each replaced by a state drawn along its
    trajectory over ``n_sim_steps`` steps (every ``sim_stride``-th), as the ReLU path seeds its minimiser.
    ``q(s) = 1/2 |F(s) - s|^2`` is minimised from every start (``method="adam"``: batched Adam, each start with its
    own learning rate, multiplied by 0.95 after 5 iterations without improvement; ``"lbfgs"``: L-BFGS with a
    strong-Wolfe line search on the sum over starts), then Newton's method on ``F(s) - s = 0`` makes the minima
    exact. Minima whose residual stays above ``tol (1 + |s|)`` are slow points and are dropped.

    Args:
        dyn: The map.
        x: The observation ``(D,)``.
        init_states: Optional seed states ``(M, S)``.
        n_init: Random seed states.
        seed: Seed (or generator).
        method: ``"adam"`` or ``"lbfgs"``.
        init_scale: ``s`` (default: RMS of ``init_states``, else 0.5).
        n_sim_steps, sim_stride: Trajectory seeding.
        lr: Adam's initial learning rate.
        max_iters: Minimiser iterations.
        newton_iters: Newton iterations of the polish.
        tol: Fixed when ``|F(s) - s| <= tol (1 + |s|)``.
        unique_tol: Points closer than ``unique_tol (1 + |s|)`` merge.
        stable_only: Only linearly stable points.

    Returns:
        :class:`~analysis.dynamics.fixed_point.FixedPoint` objects (``pattern`` is ``None``), stable first, then by
        increasing ``|s|``.

    Example:
        >>> import torch
        >>> th = 0.3; R = torch.tensor([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]], dtype=torch.float64)
        >>> dyn = TorchDynamics(lambda s, u: 1.2 * s @ R.T + u, 2)          # an unstable focus at (I - 1.2 R)^-1 u
        >>> fp = fixed_points(dyn, np.array([0.1, 0.0]), n_init=4)[0]
        >>> fp.stable, round(fp.spectral_radius, 6)
        (False, 1.2)
    """
    if method not in ("adam", "lbfgs"):
        raise ValueError(f"method must be 'adam' or 'lbfgs', got {method!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    u = dyn.inputs(x)
    seeds = _seeds(dyn, init_states, n_init, init_scale, rng)
    if not len(seeds):
        raise ValueError("no seed states: give init_states or n_init > 0")
    traj = dyn.simulate(seeds, x[None].repeat(len(seeds), 0), n_sim_steps)[:, :: max(1, int(sim_stride))]
    starts = traj[np.arange(len(seeds)), rng.integers(0, traj.shape[1], len(seeds))]
    starts = starts[np.isfinite(starts).all(axis=1)]
    mins = _minimise(dyn, starts, u, method, lr, max_iters, tol_q=0.5 * tol**2)
    ub = u.expand(len(mins), -1)
    pts, res = newton(dyn, mins, ub, iters=newton_iters, tol=tol)
    ok = np.isfinite(res) & (res <= tol * (1.0 + np.linalg.norm(pts, axis=1)))
    pts, res = pts[ok], res[ok]
    pts = pts[unique_rows(pts, unique_tol, order=np.argsort(res, kind="stable"))]
    out = []
    ev = _spectrum(dyn, pts, u.expand(len(pts), -1))
    for h, e in zip(pts, ev):
        rho = float(np.abs(e[0])) if e.size else 0.0
        state = h.copy()
        state.flags.writeable = False
        out.append(FixedPoint(state=state, input=x.copy(), residual=float(np.linalg.norm(dyn.step(h, x) - h)),
                              eigenvalues=e, spectral_radius=rho, stable=rho < 1.0, pattern=None,
                              decision=int(dyn.decision(h)) if dyn.n_actions else None, method=method))
    if stable_only:
        out = [p for p in out if p.stable]
    out.sort(key=lambda p: (not p.stable, p.norm, tuple(p.state)))
    return out


# ---------------------------------------------------------------------------------------------- attractors
class _TorchStepper:
    """One step of a torch map for recorded representatives, with their tangent frames by forward-mode autograd."""

    def __init__(self, dyn: TorchDynamics, u: torch.Tensor, frames: Optional[_Frames]) -> None:
        self.dyn, self.u, self.frames = dyn, u, frames

    def step(self, h: np.ndarray, accumulate: bool) -> tuple[np.ndarray, np.ndarray]:
        s = torch.from_numpy(np.ascontiguousarray(h))
        fr = self.frames
        if fr is None:
            with torch.no_grad():
                out = self.dyn.step_fn(s, self.u).numpy()
            return out, out
        f = lambda z: self.dyn.step_fn(z, self.u)  # noqa: E731
        V = torch.from_numpy(fr.Q.astype(np.float64, copy=False)).reshape(fr.H, fr.r, fr.k).permute(2, 1, 0)
        new, JV = vmap(lambda v: jvp(f, (s,), (v,)), out_dims=(None, 0))(V)
        fr.push(np.ascontiguousarray(JV.permute(2, 1, 0).numpy()), accumulate)
        out = new.detach().numpy()
        return out, out

    def keep(self, keep: np.ndarray) -> None:
        self.u = self.u[torch.from_numpy(np.asarray(keep))]
        if self.frames is not None:
            self.frames.drop(keep)


class _TorchEngine(_Engine):
    """The attractor search of :mod:`analysis.dynamics.attractors` on a :class:`TorchDynamics` (see the module)."""

    def __init__(self, dyn: TorchDynamics, U: np.ndarray, h0: np.ndarray, crit: Any,
                 seqs: Sequence[np.random.SeedSequence], bar: Any, newton_iters: int = 20) -> None:
        self.dyn = dyn
        self.W = None
        self._init_search(U, h0, crit, seqs, bar)
        self.U64 = torch.from_numpy(np.ascontiguousarray(U, dtype=np.float64))
        use32 = dyn.step32 is not None and float32_wanted(crit.transient_dtype, self.H)
        self.tdtype = torch.float32 if use32 else torch.float64
        self.tstep = dyn.step32 if use32 else dyn.step_fn
        self.U_t = self.U64.to(self.tdtype)
        self.frame_dtype = np.dtype(np.float64)
        self._fps: dict[int, list[int]] = {}
        self.newton_iters = int(newton_iters)

    # ------------------------------------------------------------------ fixed points
    def _refine(self, i: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Newton from states ``s`` of inputs ``i``: ``(points, converged)``."""
        pts, res = newton(self.dyn, s, self.U64[torch.from_numpy(np.asarray(i))], iters=self.newton_iters,
                          tol=0.1 * self.crit.fp_tol)
        ok = np.isfinite(res) & (res <= self.crit.fp_tol * (1.0 + np.linalg.norm(pts, axis=1)))
        return pts, ok

    def _fp_record(self, i: int, state: np.ndarray, refined: bool = False) -> int:
        """The record of the fixed point of input ``i`` at ``state`` (Newton-refined unless ``refined``), merged
        with a known one within ``fp_merge_tol``; created with its Jacobian spectrum."""
        if not refined:
            pts, ok = self._refine(np.array([i]), state[None])
            state = pts[0] if ok[0] else state
        for rid in self._fps.get(i, []):
            rec = self.records[rid]
            scale = 1.0 + max(np.linalg.norm(rec.state), np.linalg.norm(state))
            if np.linalg.norm(rec.state - state) <= self.crit.fp_merge_tol * scale:
                return rid
        ev = _spectrum(self.dyn, state[None], self.C[i][None])[0]
        rid = len(self.records)
        self.records.append(_Record("fixed_point", i, np.array(state, dtype=np.float64), eigenvalues=ev))
        self._fps.setdefault(i, []).append(rid)
        return rid

    def _stable(self, rid: int, margin: float = 0.0) -> bool:
        ev = self.records[rid].eigenvalues
        return ev is None or not ev.size or bool(np.abs(ev[0]) < 1.0 - margin)

    def _stationary_record(self, i: int, o: dict[str, Any], b: int) -> int:
        return self._fp_record(i, self.h[b])

    def _settled_fixed_point(self, i: int, orbit: np.ndarray) -> Optional[int]:
        """A slowly converging orbit: Newton from its last state finds a fixed point with spectral radius at most
        ``1 - SETTLE_MARGIN``, and the orbit's distance to it over the last quarter of the stored orbit stays below
        its distance over the first quarter (on an invariant curve around it, the distance does not shrink)."""
        pts, ok = self._refine(np.array([i]), orbit[-1][None])
        if not ok[0]:
            return None
        d = np.linalg.norm(orbit - pts[0], axis=1)
        q = max(1, len(d) // 4)
        if not d[-q:].max() < d[:q].min():
            return None
        rid = self._fp_record(i, pts[0], refined=True)
        return rid if self._stable(rid, SETTLE_MARGIN) else None

    def _stepper(self, reps: np.ndarray, frames: Optional[_Frames]) -> _TorchStepper:
        return _TorchStepper(self.dyn, self.U64[torch.from_numpy(self.inp[reps])], frames)

    # ------------------------------------------------------------------ transient
    def _iterate(self, idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, None]:
        s = torch.from_numpy(self.h[idx]).to(self.tdtype)
        u = self.U_t[torch.from_numpy(self.inp[idx])]
        s_prev = s
        with torch.no_grad():
            for _ in range(n):
                s_prev = s
                s = self.tstep(s, u)
        return s.to(torch.float64).numpy(), s_prev.to(torch.float64).numpy(), None

    def _check(self, idx: np.ndarray, h: np.ndarray, h_prev: np.ndarray, active: Any = None) -> None:
        """Exit diverged trajectories, and those that have come close to a stable fixed point (Newton-refined) or
        stopped moving."""
        crit = self.crit
        _, _, _, _, rel, near = self._exit_diverged(idx, h, h_prev)
        if not near.size:
            return
        inp = self.inp[idx[near]]
        left = self._snap_known(idx, near, inp, h)
        if left.size:  # Newton once per cluster of nearby states of one input
            reps = []
            inp_left = self.inp[idx[left]]
            for i in np.unique(inp_left):
                sel = left[inp_left == i]
                reps.extend(sel[unique_rows(h[sel], crit.snap_tol)])
            reps = np.asarray(reps, dtype=np.int64)
            pts, ok = self._refine(self.inp[idx[reps]], h[reps])
            for r, p, good in zip(reps, pts, ok):
                if good:
                    rid = self._fp_record(int(self.inp[idx[r]]), p, refined=True)
                    if self._stable(rid):
                        self._snap_known(idx, left, self.inp[idx[left]], h, only=rid)
            left = left[~self.done[idx[left]]]
        still = left[rel[left] < crit.fp_tol]  # the step itself is tiny: a fixed point (the paper's criterion)
        for r in still:
            rid = self._fp_record(int(self.inp[idx[r]]), h[r])
            self.h[idx[r]] = self.records[rid].state
            self._join(rid, idx[[r]])

    def _snap_known(self, idx: np.ndarray, near: np.ndarray, inp: np.ndarray, h: np.ndarray,
                    only: Optional[int] = None) -> np.ndarray:
        """Join the states ``idx[near]`` within ``snap_tol (1 + |s*|)`` of a known stable fixed point of their
        input (or of record ``only``); returns the others."""
        for i in np.unique(inp):
            rids = [only] if only is not None else [r for r in self._fps.get(int(i), []) if self._stable(r)]
            for rid in rids:
                rec = self.records[rid]
                if rec.inp != i:
                    continue
                sel = near[(inp == i) & ~self.done[idx[near]]]
                if not sel.size:
                    break
                hit = sel[np.linalg.norm(h[sel] - rec.state, axis=1) <= self.crit.snap_tol * (
                    1.0 + np.linalg.norm(rec.state))]
                if hit.size:
                    self.h[idx[hit]] = rec.state
                    self._join(rid, idx[hit])
        return near[~self.done[idx[near]]]


def _search_block(dyn: TorchDynamics, U: np.ndarray, h0: np.ndarray, crit: Any,
                  seqs: Sequence[np.random.SeedSequence], newton_iters: int, bar: Any = None) -> list[_Record]:
    torch.set_num_threads(1)
    engine = _TorchEngine(dyn, U, h0, crit, seqs, bar if bar is not None else _NoBar(), newton_iters)
    with np.errstate(over="ignore", invalid="ignore"):
        engine.run()
    return engine.records


def find_attractors(
    dyn: TorchDynamics,
    x: np.ndarray,
    n_init: int = 32,
    seed: Optional[int] = 0,
    init_states: Optional[np.ndarray] = None,
    *,
    init_scale: Optional[float] = None,
    newton_iters: int = 20,
    block_size: int = 64,
    n_jobs: int = 1,
    progress: bool = False,
    **settings: Any,
) -> Union[list[Attractor], list[list[Attractor]]]:
    """Find and classify the attractors of ``F(., drive(x))`` for one observation or many.

    The arguments and the result are those of :func:`analysis.dynamics.attractors.find_attractors` (every
    classification threshold is a keyword in ``settings``: ``n_transient``, ``n_record``, ``lyap_eps``, ``qp_gap``,
    ``period_tol``, ``max_period``, ``merge_tol``, ...; the ReLU-only ``escape_*`` and ``sparse_below`` are
    ignored). Random initial states are ``N(0, s^2)`` (signed: LSTM and GRU states are), ``s`` the RMS of the given
    states, else ``init_scale``, else 0.5. Fixed points carry their Jacobian's eigenvalues
    (``Attractor.eigenvalues``), so their ``lyapunov`` is ``log |eigenvalue|``.

    Args:
        dyn: The map.
        x: One observation ``(D,)`` or many ``(N, D)``.
        n_init: Random initial states per input.
        seed: Seed of the random states and the Lyapunov frames.
        init_states: ``(M, S)`` or ``(N, M, S)`` given initial states.
        init_scale: ``s``.
        newton_iters: Newton iterations when a slowing trajectory is refined.
        block_size: Inputs searched together.
        n_jobs: Worker processes over blocks (``-1``: one per CPU); a map built by
            :meth:`TorchDynamics.from_policy` is rebuilt in each worker, others must pickle.
        progress: Progress bar.
        **settings: Classification thresholds (see above).

    Example:
        >>> import torch
        >>> def step(s, u):                      # radius -> sqrt(radius): attracted to the unit circle, where
        ...     r, a = torch.linalg.vector_norm(s, dim=1), torch.atan2(s[:, 1], s[:, 0])
        ...     a = a + 2 * np.pi / 7 - 0.05 * torch.sin(7 * a)       # the rotation locks onto one 7-cycle
        ...     return torch.stack([torch.cos(a), torch.sin(a)], dim=1) * torch.sqrt(r)[:, None]
        >>> [(a.kind, a.period, a.basin_count) for a in find_attractors(TorchDynamics(step, 2), np.zeros(1), n_init=4)]
        [('periodic', 7, 4)]
    """
    crit = make_criteria(dyn.state_size, **settings)
    X, single, seqs = inputs_and_seeds(x, seed)
    U = dyn.drive(X)
    h0 = _initial_states(dyn, np.full((len(X), dyn.state_size), DEFAULT_SCALE), init_states, int(n_init), init_scale,
                         seqs, signed=True)
    return search_inputs(dyn, X, U, h0, crit, seqs, functools.partial(_search_block, dyn, newton_iters=newton_iters),
                         single, block_size=block_size, n_jobs=n_jobs, progress=progress)
