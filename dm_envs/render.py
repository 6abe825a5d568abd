"""Pictures of a trial, drawn with numpy: the ``rgb_array`` and ``human`` render modes of every env front end.

:class:`TrialRenderer` draws the trial so far into an ``(H, W, 3)`` uint8 array of a fixed size per task (so the
frames of a run make a video; ``docs/img/trial_render.png`` is one):

* one row per input channel (``FIX``, ``SsCj`` for choice ``j`` of stream ``s``, ``CTXk``): its trace over the steps
  shown so far, on the background of each step's stage (fixation grey, stimulus yellow, delay blue, decision green);
* ``ACT``: one cell per step taken, grey for fixate, else the colour of the choice; ``GT``: the correct action in
  the decision stage.
* Stream channel ``j`` (``SsCj``) and the action and ground-truth cells of choice ``j`` share one colour
  (:data:`CHOICE_COLORS`: blue, orange, purple, ...); fixation is black, the context cue (``CTXk``) grey.
* The swatches right of ``ACT`` and ``GT`` show the choice made (once made) and the correct choice.
* When the trial has ended, the frame's border shows the outcome: green correct, red wrong, orange abort or miss.

Drawing a frame takes under a millisecond and needs numpy only; :func:`save_png` writes one to a PNG file
(zlib, no imaging library). :class:`HumanWindow` shows frames in a matplotlib window for ``render_mode="human"``;
without a display it warns once and shows nothing (use ``"rgb_array"`` there).
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from .config import DECISION, TaskConfig

if TYPE_CHECKING:  # pragma: no cover
    from ._engine import TrialEngine

__all__ = [
    "CHOICE_COLORS",
    "EngineRenderer",
    "HumanWindow",
    "RENDER_MODES",
    "TrialRenderer",
    "TrialView",
    "running_trial",
    "save_png",
    "tile_frames",
]

RENDER_MODES: tuple[str, ...] = ("ansi", "rgb_array", "human")
"""Render modes of the single env (the vector envs have ``"rgb_array"`` and ``"human"``)."""

CHOICE_COLORS = np.array(
    [(31, 119, 180), (255, 127, 14), (148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207)], dtype=np.uint8
)
"""Colour of choice ``j`` (cycled beyond six choices): its stimulus channels, action cells and swatches."""

_STAGE_TINTS = np.array(
    [(232, 232, 232), (255, 242, 200), (217, 230, 250), (218, 243, 218), (255, 255, 255)], dtype=np.uint8
)  # fixation, stimulus, delay, decision, padding (-1 indexes the last row)
_WHITE = np.array((255, 255, 255), dtype=np.uint8)
_INK = np.array((30, 30, 30), dtype=np.uint8)
_FIXATE = np.array((200, 200, 200), dtype=np.uint8)
_CONTEXT = np.array((120, 120, 120), dtype=np.uint8)
_OUTCOME_COLORS = {
    "correct": np.array((44, 160, 44), dtype=np.uint8),
    "wrong": np.array((214, 39, 40), dtype=np.uint8),
    "abort": np.array((255, 165, 0), dtype=np.uint8),
    "miss": np.array((255, 165, 0), dtype=np.uint8),
}

# A 3x5 pixel font for the row labels: each glyph is five rows of three pixels.
_GLYPH_ROWS = {
    "A": ".#./#.#/###/#.#/#.#", "B": "##./#.#/##./#.#/##.", "C": ".##/#../#../#../.##", "D": "##./#.#/#.#/#.#/##.",
    "E": "###/#../##./#../###", "F": "###/#../##./#../#..", "G": ".##/#../#.#/#.#/.##", "H": "#.#/#.#/###/#.#/#.#",
    "I": "###/.#./.#./.#./###", "J": "..#/..#/..#/#.#/.#.", "K": "#.#/#.#/##./#.#/#.#", "L": "#../#../#../#../###",
    "M": "#.#/###/###/#.#/#.#", "N": "##./#.#/#.#/#.#/#.#", "O": ".#./#.#/#.#/#.#/.#.", "P": "##./#.#/##./#../#..",
    "Q": ".#./#.#/#.#/##./.##", "R": "##./#.#/##./#.#/#.#", "S": ".##/#../.#./..#/##.", "T": "###/.#./.#./.#./.#.",
    "U": "#.#/#.#/#.#/#.#/###", "V": "#.#/#.#/#.#/#.#/.#.", "W": "#.#/#.#/###/###/#.#", "X": "#.#/#.#/.#./#.#/#.#",
    "Y": "#.#/#.#/.#./.#./.#.", "Z": "###/..#/.#./#../###", "0": "###/#.#/#.#/#.#/###", "1": ".#./##./.#./.#./###",
    "2": "##./..#/.#./#../###", "3": "##./..#/.#./..#/##.", "4": "#.#/#.#/###/..#/..#", "5": "###/#../##./..#/##.",
    "6": ".##/#../###/#.#/###", "7": "###/..#/.#./.#./.#.", "8": "###/#.#/###/#.#/###", "9": "###/#.#/###/..#/##.",
    "-": ".../.../###/.../...", " ": ".../.../.../.../...",
}  # fmt: skip
_GLYPHS = {c: np.array([[p == "#" for p in row] for row in rows.split("/")]) for c, rows in _GLYPH_ROWS.items()}
_TEXT_SCALE = 2


def _text_mask(text: str) -> np.ndarray:
    """Boolean pixels of ``text`` (upper-cased; unknown characters as blanks), scaled by ``_TEXT_SCALE``."""
    blank = _GLYPHS[" "]
    glyphs = [_GLYPHS.get(c, blank) for c in text.upper()]
    gap = np.zeros((5, 1), dtype=bool)
    parts = [p for g in glyphs for p in (g, gap)][:-1] if glyphs else [gap]
    return np.kron(np.hstack(parts), np.ones((_TEXT_SCALE, _TEXT_SCALE), dtype=bool)).astype(bool)


def _channel_labels(config: TaskConfig) -> list[str]:
    labels = ["FIX"]
    for s in range(config.n_streams):
        labels += [f"S{s + 1}C{j + 1}" for j in range(config.n_choices)]
    if config.has_context:
        labels += [f"CTX{s + 1}" for s in range(config.n_streams)]
    return labels


def _channel_colors(config: TaskConfig) -> np.ndarray:
    colors = [_INK]
    for _ in range(config.n_streams):
        colors += [CHOICE_COLORS[j % len(CHOICE_COLORS)] for j in range(config.n_choices)]
    if config.has_context:
        colors += [_CONTEXT] * config.n_streams
    return np.array(colors, dtype=np.uint8)


@dataclass
class TrialView:
    """What a frame shows: one trial and the actions taken in it so far.

    Attributes:
        obs: The whole trial's inputs, ``(L, obs_dim)``.
        stage: Stage id of each step, ``(L,)``.
        gt: Ground-truth action of each step, ``(L,)``.
        actions: The actions taken so far, ``(t,)`` with ``t <= L``.
        correct_choice: The correct choice (0-based).
        outcome: ``None`` while the trial runs; ``"correct"``, ``"wrong"``, ``"miss"`` or ``"abort"`` once it ended.
    """

    obs: np.ndarray
    stage: np.ndarray
    gt: np.ndarray
    actions: np.ndarray
    correct_choice: int
    outcome: Optional[str] = None

    @property
    def steps_shown(self) -> int:
        """Steps whose input is drawn: those taken, plus the observation now shown while the trial runs."""
        taken = len(self.actions)
        return taken if self.outcome is not None else min(taken + 1, len(self.stage))

    def copy(self) -> "TrialView":
        """A copy that no longer shares memory with an env's tape."""
        return TrialView(
            self.obs.copy(), self.stage.copy(), self.gt.copy(), self.actions.copy(), self.correct_choice, self.outcome
        )


def running_trial(engine: "TrialEngine", env: int, action_tape: np.ndarray) -> TrialView:
    """The running trial of ``env`` in ``engine`` (views into its tape), with the actions recorded on
    ``action_tape`` (one entry per tape slot) for the steps taken so far."""
    pos = int(engine.pos[env])
    row = pos // engine.t_max
    start, length = int(engine.start[row]), int(engine.length[row])
    span = slice(start, start + length)
    return TrialView(
        obs=engine.obs[span],
        stage=engine.stage[span],
        gt=engine.gt[span],
        actions=action_tape[start:pos],
        correct_choice=int(engine.correct_choice[row]),
    )


class TrialRenderer:
    """Draws :class:`TrialView` s of one task into RGB frames of a fixed size (see the module docstring).

    Args:
        config: The task (fixes the rows and the longest trial, hence the frame size).
        step_width: Pixels per time step (default: about 500 pixels for the longest trial, at most 24 per step).
        row_height: Pixels per input channel row.
        value_range: Input values mapped to the bottom and top of a channel row (values beyond are clipped).

    Example:
        >>> from dm_envs import make_config, sample_trials
        >>> from dm_envs.render import TrialRenderer, TrialView
        >>> cfg = make_config(1)
        >>> tr = sample_trials(cfg, 1, rng=0)
        >>> view = TrialView(tr.obs[0], tr.stage[0], tr.gt[0], tr.gt[0], int(tr.correct_choice[0]), "correct")
        >>> frame = TrialRenderer(cfg).draw(view)
        >>> frame.shape[2], frame.dtype.name
        (3, 'uint8')
    """

    def __init__(
        self,
        config: TaskConfig,
        *,
        step_width: Optional[int] = None,
        row_height: int = 30,
        value_range: tuple[float, float] = (-0.3, 1.3),
    ) -> None:
        self.config = config
        self.t_max = config.max_trial_steps
        self.step_width = int(step_width) if step_width else max(1, min(24, 504 // self.t_max))
        self.row_height = int(row_height)
        self.value_range = (float(value_range[0]), float(value_range[1]))
        labels = _channel_labels(config)
        self.colors = _channel_colors(config)
        pad, cell = 6, 12
        self.x0 = pad + max(_text_mask(s).shape[1] for s in labels + ["ACT", "GT"]) + pad
        self.plot_width = self.t_max * self.step_width
        self.channel_top = pad + np.arange(config.obs_dim) * self.row_height
        rows_end = pad + config.obs_dim * self.row_height
        self.act_top, self.gt_top, self.cell = rows_end + 4, rows_end + 4 + cell + 2, cell
        self.swatch_x = self.x0 + self.plot_width + pad
        width = self.swatch_x + cell + pad
        height = self.gt_top + cell + pad
        # multiples of 16: video encoders need even sizes and prefer macro blocks
        self.shape = (-(-height // 16) * 16, -(-width // 16) * 16, 3)
        self._background = self._draw_background(labels)

    # ------------------------------------------------------------------ static parts
    def _draw_background(self, labels: Sequence[str]) -> np.ndarray:
        frame = np.empty(self.shape, dtype=np.uint8)
        frame[:] = _WHITE
        rh = self.row_height
        for label, top in zip(list(labels) + ["ACT", "GT"], list(self.channel_top) + [self.act_top, self.gt_top]):
            height = rh if label not in ("ACT", "GT") else self.cell
            mask = _text_mask(label)
            y = int(top) + (height - mask.shape[0]) // 2
            frame[y : y + mask.shape[0], 6 : 6 + mask.shape[1]][mask] = _INK
        return frame

    # ------------------------------------------------------------------ one frame
    def draw(self, view: TrialView) -> np.ndarray:
        """The frame of ``view``: ``(H, W, 3)`` uint8 (``self.shape``)."""
        frame = self._background.copy()
        n = view.steps_shown
        sw, rh, x0 = self.step_width, self.row_height, self.x0
        if n > 0:
            cols = n * sw
            col_step = np.arange(cols) // sw  # the step each pixel column shows
            tint = _STAGE_TINTS[view.stage[:n]][col_step]  # (cols, 3)
            top, bottom = int(self.channel_top[0]), int(self.channel_top[-1]) + rh
            plot = frame[top:bottom, x0 : x0 + cols]
            plot[:] = tint[None]
            plot[rh - 1 :: rh] = _WHITE  # a white line between channel rows
            self._draw_traces(plot, view.obs[:n], col_step)
            gt = view.gt[:n]
            self._draw_cells(frame, self.gt_top, np.flatnonzero(gt > 0), gt[gt > 0] - 1)
        acts = np.asarray(view.actions)
        if len(acts):
            steps = np.arange(len(acts))
            self._draw_cells(frame, self.act_top, steps, acts - 1)
        self._swatch(frame, self.gt_top, CHOICE_COLORS[view.correct_choice % len(CHOICE_COLORS)])
        chosen = acts[(acts > 0) & (view.stage[: len(acts)] == DECISION)]
        if view.outcome is not None:
            if len(chosen):
                self._swatch(frame, self.act_top, CHOICE_COLORS[(int(chosen[-1]) - 1) % len(CHOICE_COLORS)])
            color = _OUTCOME_COLORS.get(view.outcome, _INK)
            for edge in (frame[:3], frame[-3:], frame[:, :3], frame[:, -3:]):
                edge[:] = color
        return frame

    def _draw_traces(self, plot: np.ndarray, obs: np.ndarray, col_step: np.ndarray) -> None:
        """Every channel's trace as a 2-pixel step line with vertical joins, vectorised over channels and columns."""
        lo, hi = self.value_range
        rh = self.row_height
        span = rh - 4  # keep a margin of 2 pixels inside each row
        v = np.clip(obs.astype(np.float64), lo, hi)
        y = 2 + np.rint((hi - v) / (hi - lo) * (span - 1)).astype(np.int64)  # (n, D), 0 = top of the row
        y_col = y[col_step]  # (cols, D)
        y_prev = y[np.maximum(col_step - 1, 0)]
        first = np.r_[False, col_step[1:] != col_step[:-1]][:, None]  # first column of a step joins the previous
        top = np.where(first, np.minimum(y_col, y_prev), y_col)
        bottom = np.where(first, np.maximum(y_col, y_prev), y_col) + 1
        rows = np.arange(rh)[:, None, None]  # (rh, 1, 1) against (cols, D)
        mask = (rows >= top[None]) & (rows <= bottom[None])  # (rh, cols, D)
        for c in range(obs.shape[1]):
            band = plot[c * rh : (c + 1) * rh]
            band[mask[:, :, c]] = self.colors[c]

    def _draw_cells(self, frame: np.ndarray, top: int, steps: np.ndarray, choice: np.ndarray) -> None:
        """One cell per step: grey where ``choice < 0`` (fixate), else the choice's colour."""
        if len(steps) == 0:
            return
        sw = self.step_width
        colors = np.where((choice < 0)[:, None], _FIXATE[None], CHOICE_COLORS[np.maximum(choice, 0) % len(CHOICE_COLORS)])
        cols = (steps[:, None] * sw + np.arange(max(sw - 1, 1))[None]).ravel()
        frame[top : top + self.cell, self.x0 + cols] = np.repeat(colors, max(sw - 1, 1), axis=0)[None]

    def _swatch(self, frame: np.ndarray, top: int, color: np.ndarray) -> None:
        frame[top : top + self.cell, self.swatch_x : self.swatch_x + self.cell] = color


class EngineRenderer:
    """The frames of every env of a :class:`~dm_envs.TrialEngine`: rendering for all env front ends.

    The front end calls :meth:`record` with the actions of each step before stepping the engine (the engine's tape
    keeps the inputs, stages and ground truth), :meth:`finish` when a trial ends and it should stay on screen until
    the next reset (the single env), and :meth:`frames` or :meth:`show` to render.

    Args:
        engine: The engine whose envs are drawn.
        render_mode: ``"rgb_array"`` or ``"human"`` (a window showing up to 16 envs side by side).
        title: Window title for ``"human"``.
    """

    def __init__(self, engine: "TrialEngine", render_mode: str, title: str = "dm_envs") -> None:
        self.engine = engine
        self.render_mode = render_mode
        self.renderer = TrialRenderer(engine.config)
        self.action_tape = np.zeros(engine.obs.shape[0], dtype=np.int64)
        self.finished: dict[int, TrialView] = {}
        self.window = HumanWindow(title, 1000.0 / engine.config.dt) if render_mode == "human" else None

    def record(self, actions: np.ndarray | int) -> None:
        """Note the actions every env takes at its current step (call before stepping the engine)."""
        self.action_tape[self.engine.pos] = actions

    def finish(self, env: int, outcome: str) -> None:
        """Keep ``env``'s running trial, whose last step was just recorded, on screen with its outcome."""
        view = running_trial(self.engine, env, self.action_tape)
        pos = int(self.engine.pos[env])
        view.actions = self.action_tape[pos - len(view.actions) : pos + 1]
        view.outcome = outcome
        self.finished[env] = view.copy()

    def clear(self) -> None:
        """Forget the finished trials kept on screen (at a reset)."""
        self.finished.clear()

    def frames(self) -> list[np.ndarray]:
        """One ``(H, W, 3)`` uint8 frame per env."""
        return [
            self.renderer.draw(self.finished.get(i) or running_trial(self.engine, i, self.action_tape))
            for i in range(self.engine.num_envs)
        ]

    def show(self) -> None:
        """``"human"``: show the frames of the first 16 envs, tiled, in the window."""
        if self.window is not None:
            self.window.show(tile_frames(self.frames()))

    def close(self) -> None:
        """Close the window, if one is open."""
        if self.window is not None:
            self.window.close()


# ---------------------------------------------------------------------- several frames, files, windows
def tile_frames(frames: Sequence[np.ndarray], max_frames: int = 16) -> np.ndarray:
    """Up to ``max_frames`` equal-sized frames tiled on a near-square grid (blank cells white), one RGB image."""
    frames = list(frames)[:max_frames]
    if not frames:
        raise ValueError("tile_frames needs at least one frame")
    n = len(frames)
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    h, w, ch = frames[0].shape
    out = np.full((rows * h, cols * w, ch), 255, dtype=np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = f
    return out


def save_png(path: str | Path, frame: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 frame to a PNG file (8-bit RGB, deflate-compressed); returns the path."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be an (H, W, 3) uint8 array, got shape {frame.shape}")
    h, w, _ = frame.shape
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), frame.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit depth, colour type 2 (RGB), no interlace
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


class HumanWindow:
    """A matplotlib window showing the latest frame (``render_mode="human"``).

    matplotlib is imported on the first frame. Without an interactive backend (no display, or ``MPLBACKEND=Agg``)
    the first frame raises a ``UserWarning`` saying so and every frame is dropped.
    """

    def __init__(self, title: str = "dm_envs", fps: float = 10.0) -> None:
        self.title = title
        self.fps = float(fps)
        self._figure = None
        self._image = None
        self._disabled = False

    def show(self, frame: np.ndarray) -> None:
        """Display ``frame`` (and let the GUI process its events for one frame period)."""
        if self._disabled:
            return
        import matplotlib.pyplot as plt

        if self._figure is None:
            if not _interactive_backend():
                self._disabled = True
                warnings.warn(
                    f"render_mode='human' needs an interactive matplotlib backend and a display; the backend is "
                    f"{plt.get_backend()!r}, so no window is shown (use render_mode='rgb_array' to get frames)",
                    UserWarning,
                    stacklevel=3,
                )
                return
            self._figure, ax = plt.subplots(num=self.title)
            ax.set_axis_off()
            self._image = ax.imshow(frame)
            self._figure.tight_layout()
        else:
            self._image.set_data(frame)
        plt.pause(1.0 / self.fps)

    def close(self) -> None:
        """Close the window, if one is open."""
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)
            self._figure = self._image = None


def _interactive_backend() -> bool:
    import matplotlib
    import matplotlib.pyplot as plt  # resolves the automatic backend choice

    backend = plt.get_backend().lower()
    if backend.startswith("module://"):
        return True
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # matplotlib < 3.9
        interactive = matplotlib.rcsetup.interactive_bk
    return backend in {b.lower() for b in interactive}

