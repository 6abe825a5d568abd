"""The one network type: the paper's ReLU RNN as arrays, its map, its forward pass over trials, and its loader.

:class:`Network` holds a trained (or initial) network as read-only float64 arrays (recurrent, input and readout
weights, the value head), the :class:`dm_envs.TaskConfig` it was trained on and its provenance (learning rule,
seed, env steps, source path). Every analysis takes it:

* as a dynamical system: within a trial stage the input ``x`` is constant (up to noise), so the network is the
  autonomous map ``F_x(h) = relu(W_rec h + W_in x + b_rec)`` (``b_rec = 0`` for the paper's bias-free network). It is
  piecewise linear: on the region where the activation pattern ``D = diag(1[W_rec h + W_in x + b_rec > 0])`` is
  fixed, ``F_x(h) = D (W_rec h + c)`` with the *drive* ``c = W_in x + b_rec``, and its Jacobian is ``D W_rec``
  (:meth:`Network.step`, :meth:`~Network.jacobian`, :meth:`~Network.simulate`, batched over states and inputs);
* as a policy over whole trials: :meth:`Network.forward` is the one vectorised numpy forward pass (optionally with
  silenced units and state kicks, for the robustness tests), scored with :func:`dm_envs.score_actions`.

:meth:`Network.load` reads any saved model (a ``RecurrentPPO`` zip of the trainers, RL or SL alike, a loaded model
or policy, or an ``.npz`` of the arrays). :func:`rollout` runs a saved policy in torch, giving exactly the hidden
states the policy computes inside Stable-Baselines3.

Example:
    >>> rng = np.random.default_rng(0)
    >>> net = Network(rng.uniform(-0.1, 0.1, (50, 50)), rng.uniform(-0.1, 0.1, (50, 3)))
    >>> traj = net.simulate(np.zeros((4, 50)), np.ones(3), n_steps=100)
    >>> traj.shape
    (4, 101, 50)
    >>> bool(np.allclose(net.step(traj[:, -1], np.ones(3)), traj[:, -1]))   # contracting: it settled
    True
"""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import numpy as np

if TYPE_CHECKING:  # heavy imports only for type checkers
    from dm_envs import TaskConfig, TrialBatch

ArrayLike = Union[np.ndarray, "list[float]"]
PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["Network", "Rollout", "rollout"]


def _as_f64(a: Any, name: str, ndim: int) -> np.ndarray:
    arr = np.array(a, dtype=np.float64, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        raise ValueError(f"{name} has {bad} non-finite (NaN or inf) entries")
    arr.flags.writeable = False  # the network is a value: protect it from accidental in-place edits
    return arr


@dataclass(frozen=True, eq=False)
class Network:
    """The paper's ReLU RNN as read-only float64 arrays, with its task and provenance.

    ``h_t = relu(W_rec h_{t-1} + W_in x_t + b_rec)``; action logits ``W_out h_t + b_out`` (action 0 = fixate);
    value ``w_value . h_t + b_value``. Methods of the map are batched: states ``h`` are ``(H,)`` or ``(B, H)``,
    inputs ``x`` are ``(D,)`` (shared) or ``(B, D)`` (one per state); leading shapes broadcast as in numpy.

    Args:
        W_rec: Recurrent weights ``(H, H)`` (``W_rec[i, j]``: from unit ``j`` to unit ``i``).
        W_in: Input weights ``(H, D)``.
        W_out: Action readout ``(A, H)`` (optional; needed by :meth:`readout`, :meth:`decision`, :meth:`forward`'s
            actions).
        b_rec: Recurrent bias ``(H,)`` (default zeros, the paper's bias-free network).
        b_out: Readout bias ``(A,)`` (default zeros).
        w_value: Value head ``(H,)`` (optional; the critic of an RL policy).
        b_value: Value bias.
        config: The :class:`dm_envs.TaskConfig` the network was trained on (:meth:`load` sets it from the model),
            used by :meth:`stage_input` and the analyses that draw trials.
        metadata: Provenance: learning rule, seed, delta, env steps, source ``path``, ... (the model's
            ``dmd_metadata`` when loaded).

    Attributes:
        hidden_size, input_size, n_actions: ``H``, ``D``, ``A`` (``n_actions`` is 0 without a readout).

    Example:
        >>> W = np.array([[0.5, 0.0], [0.0, 0.5]])
        >>> net = Network(W, np.eye(2), W_out=np.array([[1.0, -1.0], [-1.0, 1.0]]))
        >>> net.step(np.zeros(2), np.array([1.0, -1.0]))
        array([1., 0.])
        >>> net.jacobian(np.array([2.0, 0.0]), np.array([1.0, -1.0]))   # unit 2 is off: its row is zero
        array([[0.5, 0. ],
               [0. , 0. ]])
        >>> int(net.decision(np.array([2.0, 0.0])))
        0
    """

    W_rec: np.ndarray
    W_in: np.ndarray
    W_out: Optional[np.ndarray] = None
    b_rec: Optional[np.ndarray] = None
    b_out: Optional[np.ndarray] = None
    _: KW_ONLY
    w_value: Optional[np.ndarray] = None
    b_value: float = 0.0
    config: Optional["TaskConfig"] = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen: set once here
        W = _as_f64(self.W_rec, "W_rec", 2)
        H = W.shape[0]
        if W.shape != (H, H):
            raise ValueError(f"W_rec must be square, got shape {W.shape}")
        put("W_rec", W)
        put("W_in", _as_f64(self.W_in, "W_in", 2))
        if self.W_in.shape[0] != H:
            raise ValueError(f"W_in must be (H={H}, D), got shape {self.W_in.shape}")
        put("b_rec", _as_f64(np.zeros(H) if self.b_rec is None else self.b_rec, "b_rec", 1))
        if self.b_rec.shape != (H,):
            raise ValueError(f"b_rec must be ({H},), got shape {self.b_rec.shape}")
        if self.W_out is not None:
            put("W_out", _as_f64(self.W_out, "W_out", 2))
            if self.W_out.shape[1] != H:
                raise ValueError(f"W_out must be (A, H={H}), got shape {self.W_out.shape}")
            A = self.W_out.shape[0]
            put("b_out", _as_f64(np.zeros(A) if self.b_out is None else self.b_out, "b_out", 1))
            if self.b_out.shape != (A,):
                raise ValueError(f"b_out must be ({A},), got shape {self.b_out.shape}")
        elif self.b_out is not None:
            raise ValueError("b_out given without W_out")
        if self.w_value is not None:
            put("w_value", _as_f64(self.w_value, "w_value", 1))
            if self.w_value.shape != (H,):
                raise ValueError(f"w_value must be ({H},), got shape {self.w_value.shape}")
        put("b_value", float(self.b_value))
        put("metadata", dict(self.metadata or {}))

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def random(
        cls, hidden_size: int, obs_dim: int, n_actions: int, *, delta: float = 0.1, readout: float = 0.1,
        seed: int = 0, config: Optional["TaskConfig"] = None,
    ) -> "Network":
        """The paper's initialisation: ``W_rec, W_in ~ U(-delta, delta)``, ``W_out ~ U(-readout, readout)``.

        Example:
            >>> net = Network.random(10, obs_dim=7, n_actions=3, delta=0.1, seed=0)
            >>> net.hidden_size, net.W_in.shape, float(np.abs(net.W_rec).max()) <= 0.1
            (10, (10, 7), True)
        """
        rng = np.random.default_rng(seed)
        return cls(
            rng.uniform(-delta, delta, (hidden_size, hidden_size)),
            rng.uniform(-delta, delta, (hidden_size, obs_dim)),
            rng.uniform(-readout, readout, (n_actions, hidden_size)),
            config=config,
        )

    @classmethod
    def from_policy(cls, policy_or_model: Any, *, config: Optional["TaskConfig"] = None) -> "Network":
        """The actor of an ``agents.RNNPolicy`` (or a model holding one): core, action readout and value head.

        The task config and provenance come from the model's ``dmd_metadata`` when it has one (``config`` overrides
        the task).

        Raises:
            agents.ModelLoadError: the policy is not an ``agents.RNNPolicy``.
        """
        from agents.io import policy_of

        policy = policy_of(policy_or_model)
        rnn, head = policy.lstm_actor, policy.action_net
        as_np = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
        H = rnn.hidden_size
        meta = getattr(policy_or_model, "dmd_metadata", None)
        meta = dict(meta) if isinstance(meta, dict) else {}
        if config is None and meta.get("task_config") is not None:
            from dm_envs import TaskConfig

            config = TaskConfig.from_dict(meta["task_config"])
        return cls(
            as_np(rnn.weight_hh_l0),
            as_np(rnn.weight_ih_l0),
            as_np(head.weight),
            as_np(rnn.bias_ih_l0 + rnn.bias_hh_l0) if rnn.bias else np.zeros(H),
            as_np(head.bias) if head.bias is not None else np.zeros(head.out_features),
            w_value=as_np(policy.value_net.weight)[0],
            b_value=float(policy.value_net.bias.detach().cpu()[0]),
            config=config,
            metadata=meta,
        )

    @classmethod
    def load(cls, source: Any, *, config: Optional["TaskConfig"] = None) -> "Network":
        """The network from any saved or in-memory form: the one loader every analysis uses.

        Args:
            source: A model zip saved by the trainers (or any ``RecurrentPPO`` zip with an ``agents.RNNPolicy``), an
                ``.npz`` of the arrays (``W_rec, W_in, W_out`` and optional ``b_rec, b_out, w_value``), a loaded
                model or policy, a :class:`Network`, or an object or mapping with those arrays.
            config: The task (default: the model's own; required for an ``.npz`` by analyses that draw trials).

        Returns:
            The network; ``metadata["path"]`` names the file it came from.

        Raises:
            FileNotFoundError: no file at the path.
            agents.ModelLoadError: not a readable model of this project.
            ValueError: inconsistent shapes or non-finite weights (the message names the source).

        Example:
            >>> net = Network.load("runs/rl/final_model.zip")        # doctest: +SKIP
            >>> net.config.name, net.metadata["learning_rule"]        # doctest: +SKIP
            ('level3', 'rl')
        """
        if isinstance(source, Network):
            return source if config is None else replace(source, config=config)
        if isinstance(source, (str, os.PathLike)):
            return cls._load_file(os.fspath(source), config)
        if hasattr(source, "policy") or type(source).__name__.endswith("Policy"):
            return cls.from_policy(source, config=config)
        get = (lambda k: source[k] if k in source else None) if isinstance(source, Mapping) or hasattr(
            source, "files") else (lambda k: getattr(source, k, None))
        missing = [k for k in ("W_rec", "W_in") if get(k) is None]
        if missing:
            raise TypeError(f"cannot read a network from {type(source).__name__}: missing {missing}")
        return cls(get("W_rec"), get("W_in"), get("W_out"), get("b_rec"), get("b_out"), w_value=get("w_value"),
                   config=config)

    @classmethod
    def _load_file(cls, path: str, config: Optional["TaskConfig"]) -> "Network":
        from pathlib import Path

        p = Path(path)
        try:
            if p.suffix == ".npz":
                if not p.is_file():
                    raise FileNotFoundError(f"no weights file at {p}")
                with np.load(p) as data:
                    net = cls.load({k: data[k] for k in data.files}, config=config)
            else:
                import agents

                net = cls.from_policy(agents.load_model(p), config=config)
        except ValueError as err:
            if type(err).__name__ == "ModelLoadError":
                raise
            raise ValueError(f"{p}: {err}") from err
        net.metadata["path"] = os.fspath(path)
        return net

    def save(self, path: PathLike) -> None:
        """Write the arrays to an ``.npz`` file (readable by :meth:`load`)."""
        arrays = {k: getattr(self, k) for k in ("W_rec", "W_in", "W_out", "b_rec", "b_out", "w_value")
                  if getattr(self, k) is not None}
        np.savez(path, **arrays)

    def with_config(self, config: "TaskConfig") -> "Network":
        """A copy bound to another task (e.g. to test a network on a harder level)."""
        return replace(self, config=config)

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
        return f"Network(H={self.hidden_size}, D={self.input_size}, A={self.n_actions})"

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
            >>> Network(np.zeros((2, 2)), np.eye(2), b_rec=[0.0, 1.0]).drive([3.0, 4.0])
            array([3., 5.])
        """
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1:] != (self.input_size,):
            raise ValueError(f"inputs must end in D={self.input_size}, got shape {x.shape}")
        return x @ self.W_in.T + self.b_rec

    def pre(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """Pre-activations ``W_rec h + W_in x + b_rec``, ``(..., H)``.

        Example:
            >>> Network(np.eye(2), np.eye(2)).pre([1.0, 2.0], [0.5, -3.0])
            array([ 1.5, -1. ])
        """
        return self._check_h(h) @ self.W_rec.T + self.drive(x)

    def step(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """One step of the map, ``F_x(h) = relu(W_rec h + W_in x + b_rec)``, ``(..., H)``.

        Example:
            >>> Network(np.eye(2), np.eye(2)).step([1.0, 2.0], [0.5, -3.0])
            array([1.5, 0. ])
        """
        return np.maximum(self.pre(h, x), 0.0)

    def pattern(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """The activation pattern ``pre(h, x) > 0`` (bool, ``(..., H)``): which linear region ``h`` lies in.

        Example:
            >>> Network(np.eye(2), np.eye(2)).pattern([1.0, 2.0], [0.5, -3.0])
            array([ True, False])
        """
        return self.pre(h, x) > 0.0

    def jacobian(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """The Jacobian ``dF/dh = diag(pre(h, x) > 0) W_rec``, ``(..., H, H)``.

        ReLU's derivative at exactly 0 is taken as 0 (the unit is off), as in PyTorch.

        Example:
            >>> Network(np.eye(2), np.eye(2)).jacobian([1.0, 2.0], [0.5, -3.0])
            array([[1., 0.],
                   [0., 0.]])
        """
        return self.pattern(h, x)[..., :, None] * self.W_rec

    def speed(self, h: ArrayLike, x: ArrayLike) -> np.ndarray:
        """The kinetic energy ``q(h) = 1/2 ||F_x(h) - h||^2`` minimised by fixed-point finders, ``(...)``.

        Example:
            >>> float(Network(np.eye(2), np.eye(2)).speed([1.0, 2.0], [0.5, -3.0]))
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
            >>> net = Network(0.5 * np.eye(2), np.eye(2))
            >>> net.simulate([4.0, 4.0], [1.0, -1.0], 3)
            array([[4.  , 4.  ],
                   [3.  , 1.  ],
                   [2.5 , 0.  ],
                   [2.25, 0.  ]])
            >>> net.simulate(np.ones((5, 2)), [1.0, -1.0], 60, record=False).round(6)[0]
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
            >>> Network(np.eye(2), np.eye(2), W_out=[[1.0, 0.0]]).readout([2.0, 5.0])
            array([2.])
        """
        if self.W_out is None:
            raise ValueError("this network has no readout (W_out was not given)")
        return self._check_h(h) @ self.W_out.T + self.b_out

    def decision(self, h: ArrayLike) -> np.ndarray:
        """The greedy action ``argmax(W_out h + b_out)`` (0 = fixate; ``k`` = choice ``k``), ``(...)`` int.

        Example:
            >>> int(Network(np.eye(2), np.eye(2), W_out=np.eye(2)).decision([0.0, 3.0]))
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
            >>> net = Network(np.zeros((4, 4)), np.zeros((4, 7)), config=make_config(3))
            >>> net.stage_input("stimulus", signed_coherence=[0.2, -0.1], context=1).round(2)
            array([1.  , 0.6 , 0.4 , 0.45, 0.55, 0.  , 1.  ])
        """
        if self.config is None:
            raise ValueError("no task config attached (load it with Network.load, or pass config=)")
        from dm_envs import stage_input

        return stage_input(self.config, stage, **conditions)


    # ------------------------------------------------------------------------------------------ forward pass
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
        """Run the network over whole trials (vectorised over trials), with optional silenced units and kicks.

        SB3's order: at step ``t`` the network reads ``x_t``, updates ``h_t = relu(W_rec h_{t-1} + W_in x_t + b_rec)``
        from ``h_{-1} = h0`` (default 0), then acts ``argmax(W_out h_t + b_out)``.

        Args:
            trials: A :class:`dm_envs.TrialBatch` or its observations ``(N, T, D)``.
            unit_mask: ``(H,)`` or ``(N, H)``: units to keep (True/1); the others are **silenced**: clamped to 0 at
                every step (they neither fire nor drive anything).
            kick: ``(N, H)`` perturbation added to the state of trial ``n`` at step ``kick_step[n]`` (after the
                update); the kicked state is rectified (states of a ReLU network are non-negative) and re-masked.
            kick_step: ``(N,)`` step of each trial's kick (``-1``: no kick).
            kick_relative: Scale each kick by the norm of the state it perturbs (``kick`` then gives the direction and
                the relative size).
            h0: ``(H,)`` or ``(N, H)`` initial state (default 0).
            return_hidden: Keep the ``(N, T, H)`` states (memory: ``N T H`` floats).
            dtype: Computation dtype (float64, or float32 for speed).

        Returns:
            A :class:`Rollout` (``trials`` set when a batch was given; ``values`` with a value head).

        Example:
            >>> net = Network(np.zeros((2, 2)), np.eye(2), np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
            >>> net.forward(np.array([[[1.0, 0.0], [0.0, 2.0]]])).actions.tolist()
            [[1, 2]]
        """
        batch = None if isinstance(trials, np.ndarray) else trials
        x = np.asarray(trials if batch is None else batch.obs)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"observations must be (N, T, {self.input_size}), got shape {x.shape}")
        N, T, _ = x.shape
        H, A = self.hidden_size, self.n_actions
        Wr, Wi, br = self.W_rec.T.astype(dtype), self.W_in.T.astype(dtype), self.b_rec.astype(dtype)
        Wo = None if self.W_out is None else self.W_out.T.astype(dtype)
        bo = None if self.b_out is None else self.b_out.astype(dtype)
        keep = _unit_mask(unit_mask, N, H, dtype)
        h = np.zeros((N, H), dtype) if h0 is None else np.broadcast_to(np.asarray(h0, dtype), (N, H)).copy()
        if keep is not None:
            h *= keep
        ks = kick_a = None
        if kick is not None:
            kick_a = np.asarray(kick, dtype)
            if kick_a.shape != (N, H):
                raise ValueError(f"kick must have shape ({N}, {H}), got {kick_a.shape}")
            ks = np.full(N, -1, np.int64) if kick_step is None else np.asarray(kick_step, np.int64)
        hidden = np.empty((N, T, H), dtype) if return_hidden else None
        logits = np.empty((N, T, A), dtype)
        for t in range(T):
            h = h @ Wr
            h += x[:, t].astype(dtype, copy=False) @ Wi
            h += br
            np.maximum(h, 0.0, out=h)
            if keep is not None:
                h *= keep
            if ks is not None:
                _kick(h, ks == t, kick_a, kick_relative, keep)
            if hidden is not None:
                hidden[:, t] = h
            if Wo is not None:
                logits[:, t] = h @ Wo + bo
        actions = np.argmax(logits, axis=2).astype(np.int64) if A else np.zeros((N, T), dtype=np.int64)
        values = None
        if hidden is not None and self.w_value is not None:
            values = hidden @ self.w_value.astype(dtype) + self.b_value
        return Rollout(hidden=hidden, logits=logits, actions=actions, values=values, trials=batch,
                       config=self.config if self.config is not None else getattr(batch, "config", None))


def _unit_mask(mask: Optional[np.ndarray], N: int, H: int, dtype: Any) -> Optional[np.ndarray]:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        m = m != 0
    if m.shape not in ((H,), (N, H)):
        raise ValueError(f"unit_mask must have shape ({H},) or ({N}, {H}), got {m.shape}")
    return np.broadcast_to(m, (N, H)).astype(dtype)


def _kick(h: np.ndarray, now: np.ndarray, kick: np.ndarray, relative: bool, keep: Optional[np.ndarray]) -> None:
    """Add the kicks due at this step to the states ``h`` in place (rectified and re-masked)."""
    rows = np.flatnonzero(now)
    if not rows.size:
        return
    k = kick[rows]
    if relative:
        k = k * np.linalg.norm(h[rows], axis=1, keepdims=True)
    hk = np.maximum(h[rows] + k, 0.0)
    h[rows] = hk if keep is None else hk * keep[rows]


# ---------------------------------------------------------------------------------------------- runs over trials
@dataclass
class Rollout:
    """A network run over whole trials from ``h0 = 0`` (the state is reset at every trial start, as in SB3).

    Attributes:
        hidden: ``(N, T, H)`` hidden states ``h_t`` after reading the observation ``x_t`` (entries past a trial's
            ``length`` are padding; ``None`` when not kept).
        logits: ``(N, T, A)`` action logits.
        actions: ``(N, T)`` greedy actions.
        values: ``(N, T)`` the critic's value estimates (``None`` without a value head).
        trials: The trials (:class:`dm_envs.TrialBatch`: observations, stages, coherences, contexts, ...), when known.
        config: The task config, when known.
    """

    hidden: Optional[np.ndarray]
    logits: np.ndarray
    actions: np.ndarray
    values: Optional[np.ndarray] = None
    trials: Optional["TrialBatch"] = None
    config: Optional["TaskConfig"] = None

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

        if self.trials is None or self.hidden is None:
            raise ValueError("stage_states needs the trials and the hidden states of the run")
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
    """Hidden states of a saved policy over trials, computed in torch: exactly what it computes inside SB3.

    (:meth:`Network.forward` is the same map in float64 numpy; the two agree to float32 rounding.)

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
    from dm_envs import sample_trials

    model = agents.load_model(path_or_policy) if isinstance(path_or_policy, (str, os.PathLike)) else path_or_policy
    if config is None:
        try:
            config = agents.task_config_of(model)
        except (agents.ModelLoadError, KeyError):
            config = None
    if isinstance(trials, (int, np.integer)):
        if config is None:
            raise ValueError("the model carries no task config: pass config= or a TrialBatch")
        trials = sample_trials(config, int(trials), np.random.default_rng(seed), noise=noise, **conditions)
    elif conditions:
        raise TypeError("trial conditions are only used when trials is a number")
    run = agents.run_policy(model, trials)
    return Rollout(hidden=run.hidden, logits=run.logits, actions=run.actions, values=run.values, trials=trials,
                   config=config)
