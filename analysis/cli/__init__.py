"""The ``dmd`` command line: the top floor of the project, with no library code of its own.

Each package contributes its subcommands through an ``add_commands(subparsers)`` function in its own ``cli``
module; the handlers parse options, call the library and print a line or two. Heavy imports (torch, SB3,
matplotlib) happen inside the handlers, so ``dmd --help`` is instant.

========================  ===================================================
``dmd demo``              trials of every task, observer/oracle/random scores (``dm_envs.cli``)
``dmd train rl|sl``       train a policy (``agents.cli``)
``dmd analyze ...``       measure the dynamics of saved policies (:mod:`analysis.cli.analyze`)
``dmd experiment ...``    ensembles of RL and SL runs, comparison report (:mod:`analysis.cli.experiment`)
========================  ===================================================

Errors: :func:`main` is the one place where exceptions become exit statuses (:data:`EXIT_CODES`). A user error
(bad options, a missing or corrupt input, an invalid spec) is one line ``dmd: error: ...`` on stderr, never a
traceback; ``dmd --debug ...`` adds the traceback, and a bug always shows it. Options are validated by argparse
types (``agents.cli.number``, ``output_folder``, ``existing_folder``), so usage errors name the option.
"""

from __future__ import annotations

import argparse
import importlib
import json
import linecache
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

COMMAND_MODULES = ("dm_envs.cli", "agents.cli", "analysis.cli.analyze", "analysis.cli.experiment")
"""Modules that contribute subcommands, in help order."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_BUDGET, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 3, 130, 143
EXIT_CODES = {
    EXIT_OK: ("ok", "the command did its work"),
    EXIT_FAILURE: ("failure", "the work failed (a diverged training run, failed experiment cells, an I/O error)"),
    EXIT_USAGE: ("usage", "bad arguments or input (a missing or corrupt file, an invalid spec, an unusable --out)"),
    EXIT_BUDGET: ("budget exhausted", "a training run ended without reaching its criterion"),
    4: ("collapsed", "a training run's policy collapsed past its rollbacks (dmd train)"),
    EXIT_SIGINT: ("SIGINT", "interrupted (Ctrl-C); rerun the same command to resume"),
    EXIT_SIGTERM: ("SIGTERM", "terminated; rerun the same command to resume"),
}
"""Exit statuses of ``dmd`` (the README's table)."""

USAGE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # bad values, agents.ModelLoadError, JSON/TOML decode errors, undecodable text, invalid specs
    FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError,
)
"""Errors of the library that mean bad input: one line on stderr, exit status 2."""

LIBRARY_FAILURES = (("agents.runs", "TrainingDiverged"),)
"""(module, class) of library errors that mean the work failed: one line, exit status 1 (checked only when the
module is loaded, so ``dmd`` imports nothing for it)."""

_ROOTS = {Path(__file__).parents[2], Path(__file__).resolve().parents[2]}
PROJECT_DIRS = tuple(str(root / pkg) + os.sep for root in _ROOTS for pkg in ("dm_envs", "agents", "analysis"))
"""Where the project's own code lives (a ``TypeError`` raised there by a ``raise`` statement is a validation)."""


def single_thread_default() -> None:
    """One BLAS/OpenMP thread per process unless the user set otherwise.

    The project parallelises with processes (``--jobs``, the experiment pool), and the numbers of chaotic orbits
    depend on the thread count through rounding. Takes effect for libraries loaded afterwards (``main`` calls it
    before importing any subcommand module, hence before numpy) and for every worker process started later.
    """
    for var in THREAD_VARIABLES:
        os.environ.setdefault(var, "1")


def register_commands(subparsers: Any, modules: Sequence[str], hook: str) -> None:
    """Let each of ``modules`` add its subcommands through its function named ``hook``."""
    for name in modules:
        getattr(importlib.import_module(name), hook)(subparsers)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, ``dmd: error: ...`` (every subcommand's parser too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"dmd: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``dmd`` argument parser with every subcommand."""
    from analysis import __version__

    parser = Parser(
        prog="dmd",
        description="Decision dynamics: train RNNs by RL and SL on decision tasks and compare their dynamics.",
        epilog="exit status: " + ", ".join(f"{code} {name}" for code, (name, _) in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"dmd {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register_commands(sub, COMMAND_MODULES, "add_commands")
    parser.set_defaults(checkpoint_hook_factory=default_checkpoint_hooks)  # dmd train: the probe (agents.cli)
    return parser


def default_checkpoint_hooks() -> list[Any]:
    """The checkpoint hooks ``dmd train`` passes to the trainers unless ``--no-probe``: the dynamics probe (handed to
    ``agents.cli``, which cannot import ``analysis``; imported only when a training starts)."""
    from analysis.dynamics.probe import DynamicsProbe

    return [DynamicsProbe()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``dmd`` with ``argv`` (default: the process arguments); returns the exit status (:data:`EXIT_CODES`).

    The one place where errors become exit statuses: a library error that means bad input (:data:`USAGE_ERRORS`,
    and a ``TypeError`` raised by the project's own validation) prints ``dmd: error: ...`` on one line and returns
    2; a failure of the work returns 1 the same way; any other exception is a bug and keeps its traceback.
    ``--debug`` prints the traceback of every error.
    """
    single_thread_default()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed on one line
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    with SignalLog() as signals:
        try:
            code = int(args.func(args) or 0)
        except KeyboardInterrupt:
            code = EXIT_SIGINT
        except Exception as err:
            code = error_code(err)
            if code is None:
                raise
            if args.debug:
                traceback.print_exc()
            print(f"dmd: error: {describe(err)}", file=sys.stderr)
            return code
    if code == EXIT_SIGINT:
        term = signals.last() == signal.SIGTERM
        print(f"dmd: {'terminated' if term else 'interrupted'}; rerun the same command to resume", file=sys.stderr)
        return EXIT_SIGTERM if term else EXIT_SIGINT
    return code


def error_code(err: BaseException) -> Optional[int]:
    """The exit status of an error that is not a bug (None for a bug)."""
    for module, name in LIBRARY_FAILURES:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(err, cls):
            return EXIT_FAILURE
    if isinstance(err, USAGE_ERRORS) or (isinstance(err, TypeError) and raised_by_validation(err)):
        return EXIT_USAGE
    if isinstance(err, OSError):  # a full disk, a lost mount, ...
        return EXIT_FAILURE
    return None


def raised_by_validation(err: BaseException) -> bool:
    """Whether ``err`` comes from a ``raise`` statement in the project's own code (a check of its input, such as
    an unknown keyword), rather than from a failing operation (a bug)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or not tb.tb_frame.f_code.co_filename.startswith(PROJECT_DIRS):
        return False
    return linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).strip().startswith("raise")


def describe(err: BaseException) -> str:
    """An error as one line of text."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.filename}: {err.strerror}"
    elif isinstance(err, UnicodeDecodeError):
        text = f"not a text file ({err})"
    elif isinstance(err, json.JSONDecodeError):
        text = f"invalid JSON: {err}"
    else:
        text = str(err) or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


class SignalLog:
    """Which signals arrived while a command ran, whoever handled them (``signal.set_wakeup_fd``): training and the
    experiment runner catch SIGTERM to stop cleanly, and ``dmd`` still tells SIGTERM (143) from SIGINT (130).

    Installs a SIGTERM handler that raises ``KeyboardInterrupt`` where none is installed (so ``finally`` blocks
    run). Does nothing outside the main thread.
    """

    def __enter__(self) -> "SignalLog":
        self._read: Optional[int] = None
        if _main_thread():
            self._read, write = os.pipe()
            os.set_blocking(self._read, False)
            os.set_blocking(write, False)
            self._write = write
            self._old_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            self._old_term = signal.signal(signal.SIGTERM, _interrupt)
        self._seen: list[int] = []
        return self

    def last(self) -> Optional[int]:
        """The last SIGINT or SIGTERM received so far."""
        if self._read is not None:
            try:
                self._seen += list(os.read(self._read, 4096))
            except BlockingIOError:
                pass
        interrupts = [s for s in self._seen if s in (signal.SIGINT, signal.SIGTERM)]
        return interrupts[-1] if interrupts else None

    def __exit__(self, *exc: Any) -> None:
        if self._read is not None:
            self.last()
            signal.set_wakeup_fd(self._old_fd)
            signal.signal(signal.SIGTERM, self._old_term)
            os.close(self._read)
            os.close(self._write)
            self._read = None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    """Whether this is the main thread (the only one that may install signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
