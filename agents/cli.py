"""``dmd train rl|sl``: train the paper's network by PPO or by supervised learning (``agents.train_rl/train_sl``).

Both commands take the same task, network, stopping and run options; each adds its learning rule's
hyperparameters. Options left out take the trainer's defaults, or, with ``--resume`` on an existing run, the values
the run was started with. Heavy imports (torch, SB3) happen inside the handlers, so ``dmd --help`` stays instant.

Examples::

    dmd train rl --level 3 --seed 0 --out runs/rl_l3_s0
    dmd train sl --level 3 --seed 0 --out runs/sl_l3_s0
    dmd train rl --out runs/rl_l3_s0 --resume          # continue after Ctrl-C
    dmd train sl --out runs/sl_l3_s0 --no-probe        # without the dynamics probe at checkpoints
    tensorboard --logdir runs                          # both learning rules side by side
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from .defaults import PPO_DEFAULTS, RL_SCHEDULE, RUN_DEFAULTS, SL_DEFAULTS, SL_SCHEDULE

_NOT_OPTIONS = ("level", "preset", "config", "task_overrides", "out_dir", "resume", "overwrite", "progress")
"""RunConfig fields the options set otherwise (the task options, --out, --resume, --overwrite, --no-progress)."""


def add_commands(sub: Any) -> None:
    """Register ``dmd train rl`` and ``dmd train sl``."""
    p = sub.add_parser("train", help="train a policy by RL (PPO) or SL (Adam + cross-entropy)",
                       description="Train the paper's ReLU RNN on a decision task by RL or SL, to 95% accuracy.")
    rules = p.add_subparsers(dest="rule", metavar="RULE", required=True)
    rl = rules.add_parser("rl", help="PPO (sb3-contrib RecurrentPPO) on the batched env")
    _add_common(rl, RL_SCHEDULE)
    g = rl.add_argument_group("PPO hyperparameters")
    d = PPO_DEFAULTS
    g.add_argument("--n-envs", type=POSITIVE_INT, help=f"trials stepped in parallel ({d['n_envs']})")
    g.add_argument("--n-steps", type=POSITIVE_INT, help=f"env steps per env per rollout ({d['n_steps']})")
    g.add_argument("--batch-size", type=POSITIVE_INT, help=f"minibatch size in env steps ({d['batch_size']})")
    g.add_argument("--n-epochs", type=POSITIVE_INT, help=f"passes over each rollout ({d['n_epochs']})")
    g.add_argument("--lr", dest="learning_rate", type=POSITIVE, help=f"Adam learning rate ({d['learning_rate']:g})")
    g.add_argument("--ent-coef", type=NON_NEGATIVE, help=f"entropy bonus ({d['ent_coef']:g})")
    g.add_argument("--gamma", type=FRACTION, help=f"discount factor ({d['gamma']:g})")
    g.add_argument("--gae-lambda", type=FRACTION, help=f"GAE lambda ({d['gae_lambda']:g})")
    g.add_argument("--clip-range", type=POSITIVE, help=f"PPO clip range ({d['clip_range']:g})")
    g.add_argument("--vf-coef", type=NON_NEGATIVE, help=f"value loss coefficient ({d['vf_coef']:g})")
    g.add_argument("--max-grad-norm", type=POSITIVE, help=f"gradient norm clipping ({d['max_grad_norm']:g})")
    g.add_argument("--target-kl", type=POSITIVE, help=f"early-stop an update's epochs above 1.5 x this KL "
                   f"({d['target_kl']})")
    rl.set_defaults(func=run_train, rule="rl")

    sl = rules.add_parser("sl", help="Adam + cross-entropy on whole-trial batches (same network and init)")
    _add_common(sl, SL_SCHEDULE)
    g = sl.add_argument_group("SL hyperparameters")
    d = SL_DEFAULTS
    g.add_argument("--lr", dest="learning_rate", type=POSITIVE, help=f"Adam learning rate ({d['learning_rate']:g})")
    g.add_argument("--batch-size", type=POSITIVE_INT, help=f"trials per update ({d['batch_size']})")
    g.add_argument("--fixate-weight", type=NON_NEGATIVE,
                   help=f"loss weight of the steps before the decision stage ({d['fixate_weight']:g})")
    g.add_argument("--decision-weight", type=NON_NEGATIVE,
                   help=f"loss weight of the decision-stage steps ({d['decision_weight']:g})")
    g.add_argument("--max-grad-norm", type=POSITIVE, help=f"gradient norm clipping ({d['max_grad_norm']:g})")
    g.add_argument("--weight-decay", type=NON_NEGATIVE, help=f"Adam weight decay ({d['weight_decay']:g})")
    sl.set_defaults(func=run_train, rule="sl")


def _add_common(p: argparse.ArgumentParser, schedule: dict[str, int]) -> None:
    r = RUN_DEFAULTS
    t = p.add_argument_group("task")
    t.add_argument("--level", "--complexity", "-c", type=int, choices=(1, 2, 3, 4), help="level 1-4 (default 3)")
    t.add_argument("--preset", help="named task preset instead of a level (neurogym)")
    t.add_argument("--task-override", "-o", action="append", default=[], metavar="KEY=VALUE", type=task_override,
                   help="task field override, value as JSON (e.g. noise_amplitude=0.3, coherences=[0.1,0.4]); "
                   "repeatable")
    n = p.add_argument_group("network and run")
    n.add_argument("--seed", type=COUNT, help=f"seed of weights, trials and evaluation ({r['seed']})")
    n.add_argument("--delta", type=POSITIVE, help=f"init half-width of W_rec and W_in ({r['delta']:g})")
    n.add_argument("--hidden-size", type=POSITIVE_INT, help=f"recurrent units ({r['hidden_size']})")
    n.add_argument("--critic", choices=("shared", "rnn", "linear"), help=f"value head mode ({r['critic']})")
    n.add_argument("--target", dest="target_accuracy", type=TARGET, help=f"target accuracy ({r['target_accuracy']:g})")
    n.add_argument("--confidence-z", type=NON_NEGATIVE,
                   help=f"z of the Wilson lower bound that must clear the target ({r['confidence_z']:g})")
    n.add_argument("--consecutive", type=POSITIVE_INT,
                   help=f"evaluations in a row that must clear the target ({r['consecutive']})")
    n.add_argument("--train-past", type=number(low=1),
                   help=f"train on after the criterion to this multiple of the trials to criterion ({r['train_past']:g})")
    n.add_argument("--max-steps", type=POSITIVE_INT, help=f"env-step budget ({schedule['max_steps']:.3g})")
    n.add_argument("--max-time", type=POSITIVE, help="wall-time budget in seconds (none)")
    n.add_argument("--max-rollbacks", type=COUNT,
                   help="rollbacks to the last healthy evaluation when the policy collapses (3)")
    n.add_argument("--eval-every", type=POSITIVE_INT,
                   help=f"env steps between evaluations ({schedule['eval_every']:.3g})")
    n.add_argument("--eval-trials", type=POSITIVE_INT, help=f"fresh trials per evaluation ({r['eval_trials']})")
    n.add_argument("--checkpoint-every", type=POSITIVE_INT,
                   help=f"env steps between checkpoints ({schedule['checkpoint_every']:.3g})")
    n.add_argument("--out", type=output_folder, help="run folder (default runs/<rule>_<task>_d<delta>_s<seed>)")
    n.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    n.add_argument("--overwrite", action="store_true", help="delete a previous run in --out first")
    n.add_argument("--no-progress", action="store_true", help="no progress bar")
    n.add_argument("--no-probe", action="store_true",
                   help="no dynamics probe at checkpoints (TensorBoard dynamics/* scalars and images)")
    n.add_argument("--device", help=f"torch device ({r['device']})")


# ---------------------------------------------------------------------- option types (shared by every dmd command)
def number(kind: type = float, *, low: Optional[float] = None, high: Optional[float] = None,
           low_open: bool = False) -> Callable[[str], Any]:
    """An argparse ``type``: a finite number (an integer when ``kind`` is ``int``, which may be written ``30e6``) in
    ``[low, high]`` (``(low, high]`` with ``low_open``); anything else is a usage error that names the option.

    Example:
        >>> number(int, low=1)("30e6"), number(low=0, high=1)("0.5")
        (30000000, 0.5)
    """
    what = "an integer" if kind is int else "a finite number"
    if low is not None and high is not None:
        what += f" in {'(' if low_open else '['}{low:g}, {high:g}]"
    elif low is not None:
        what += f" {'>' if low_open else '>='} {low:g}"

    def parse(text: str) -> Any:
        try:
            value: float = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
        fine = math.isfinite(value) and (kind is not int or value == int(value))
        fine = fine and (low is None or (value > low if low_open else value >= low))
        if not (fine and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return int(value) if kind is int else float(value)

    parse.__name__ = what
    return parse


POSITIVE_INT = number(int, low=1)
COUNT = number(int, low=0)
POSITIVE = number(low=0, low_open=True)
NON_NEGATIVE = number(low=0)
FRACTION = number(low=0, high=1)
TARGET = number(low=0, high=1, low_open=True)


def output_folder(text: str) -> str:
    """An argparse ``type`` for an output folder: not an existing file, and creatable where it is to go."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create the folder {text}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot create the folder {text}: {existing} is not writable")
    return text


def existing_folder(text: str) -> str:
    """An argparse ``type`` for an input folder that must exist."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder" if path.exists() else f"no folder {text}")
    return text


def task_override(text: str) -> str:
    """An argparse ``type`` for ``-o KEY=VALUE``: ``KEY`` must name a :class:`~dm_envs.TaskConfig` field."""
    try:
        parse_overrides([text])
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` to a dict; values are parsed as JSON when they can be, else kept as strings.

    Raises:
        ValueError: an item is not ``KEY=VALUE``, or ``KEY`` is not a task field.
    """
    import dataclasses

    from dm_envs.config import TaskConfig

    fields = sorted(f.name for f in dataclasses.fields(TaskConfig))
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        if key not in fields:
            raise ValueError(f"unknown task field {key!r}; allowed: {', '.join(fields)}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def trainer_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer's settings (fields of :mod:`agents.config`'s configs) from the parsed options of ``dmd train rl|sl``
    but the run folder's (options not given are left to the configs' defaults, or, when resuming a run, taken from
    the run's stored settings)."""
    from .config import config_fields

    names = [k for k in config_fields(args.rule) if k not in _NOT_OPTIONS]
    kwargs = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    overrides = parse_overrides(args.task_override)
    if args.level is not None:
        kwargs["level"] = args.level
    if args.preset is not None:
        kwargs["preset"] = args.preset
    if overrides:
        kwargs["task_overrides"] = overrides
    if args.resume and args.out:
        kwargs = _fill_from_run(args.out, kwargs, args.rule)
    return kwargs


def train_configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The ``(RunConfig, PPOConfig | SLConfig)`` of ``dmd train rl|sl`` (see :func:`trainer_kwargs`)."""
    from .config import make_configs

    return make_configs(args.rule, out_dir=args.out, resume=args.resume, overwrite=args.overwrite,
                        progress=not args.no_progress, **trainer_kwargs(args))


def _fill_from_run(out: str, kwargs: dict[str, Any], rule: str) -> dict[str, Any]:
    from .config import config_fields
    from .io import load_metadata
    from .runs import RunDir

    ckpt = RunDir(out).newest_checkpoint()
    if ckpt is None:
        return kwargs
    stored = load_metadata(ckpt)
    params = config_fields(rule)
    filled = dict(kwargs)
    if not {"level", "preset", "task_overrides"} & set(kwargs):
        filled["config"] = stored["task_config"]
    for key in ("seed", "delta", "hidden_size"):
        filled.setdefault(key, stored[key])
    filled.setdefault("critic", stored["policy_kwargs"].get("critic", "shared"))
    for key, value in stored.get("hyperparameters", {}).items():
        if key in params:
            filled.setdefault(key, value)
    stopping = stored.get("stopping_rule", {})
    filled.setdefault("target_accuracy", stopping.get("target", stored.get("target_accuracy")))
    filled.setdefault("confidence_z", stopping.get("z"))
    filled.setdefault("consecutive", stopping.get("consecutive"))
    filled.setdefault("train_past", stopping.get("train_past", 1.0))
    ev = stored.get("evaluation", {})
    filled.setdefault("eval_trials", ev.get("n_trials"))
    filled.setdefault("eval_every", ev.get("every_env_steps"))
    filled.setdefault("max_steps", stored.get("max_steps"))
    filled.setdefault("max_time", stored.get("max_time"))
    filled.setdefault("max_rollbacks", stored.get("max_rollbacks"))
    filled.setdefault("checkpoint_every", stored.get("checkpoint_every"))
    return {k: v for k, v in filled.items() if v is not None}


def checkpoint_hooks(args: argparse.Namespace) -> list[Any]:
    """The checkpoint hooks of ``dmd train`` (:mod:`agents.tensorboard`): those the ``dmd`` front end provides, unless
    ``--no-probe``.

    ``agents`` cannot import ``analysis``, so the dynamics probe comes in through the parsed arguments: the root
    parser (``analysis.cli.build_parser``) sets ``args.checkpoint_hook_factory``, a function returning the hooks
    (``[analysis.dynamics.probe.DynamicsProbe()]``). Without it (a parser built from this module alone) there are none.
    """
    factory = getattr(args, "checkpoint_hook_factory", None)
    if getattr(args, "no_probe", False) or factory is None:
        return []
    return list(factory())


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``dmd train rl|sl``: the exit status of the run's final status (:data:`TRAIN_EXIT_CODES`). Errors
    (a diverged run, a folder that holds another run, a mismatched resume) propagate to ``dmd``, which prints them on
    one line with their exit status; an interrupt by SIGTERM becomes 143 there."""
    if args.rule == "rl":
        from .train_rl import train_rl as trainer
    else:
        from .train_sl import train_sl as trainer
    result = trainer(*train_configs(args), checkpoint_hooks=checkpoint_hooks(args))
    if args.no_progress:  # the trainer prints its summary line only with the progress bar
        from .runs import summary_line

        print(summary_line(result.metadata, result.run_dir), file=sys.stderr)
    return TRAIN_EXIT_CODES.get(result.status, 1)


TRAIN_EXIT_CODES = {"reached_target": 0, "budget_exhausted": 3, "collapsed": 4, "interrupted": 130}
"""Exit status of ``dmd train`` by the run's final status: 0 criterion reached, 3 budget exhausted, 4 the policy
collapsed past its rollbacks, 130 interrupted; anything else 1."""


__all__ = ["COUNT", "FRACTION", "NON_NEGATIVE", "POSITIVE", "POSITIVE_INT", "TARGET", "TRAIN_EXIT_CODES",
           "add_commands", "checkpoint_hooks", "existing_folder", "number", "output_folder", "parse_overrides",
           "run_train", "task_override", "train_configs", "trainer_kwargs"]
