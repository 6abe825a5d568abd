"""Result files, written one way for every package: strict JSON and CSV tables, atomically.

One NaN policy everywhere: numpy scalars and arrays become plain Python numbers and lists, and NaN or infinite
floats become ``null`` (strict JSON that any reader accepts; readers turn ``null`` back into "no value"). Files are
written beside their destination and moved into place, so an interrupted write never leaves half a file, and a
resumed run or a reader never sees one.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_json(folder / "a.json", {"x": np.float32(0.5), "y": float("nan"), "z": np.arange(2)})
    >>> read_json(folder / "a.json")
    {'x': 0.5, 'y': None, 'z': [0, 1]}
    >>> _ = write_rows(folder / "t.csv", [{"a": 1}, {"a": 2, "b": 3}])
    >>> (folder / "t.csv").read_text().splitlines()
    ['a,b', '1,', '2,3']
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["json_safe", "read_json", "set_aside", "warn", "write_json", "write_rows", "write_text"]


def json_safe(x: Any) -> Any:
    """``x`` as strict JSON data: numpy values as Python ones, tuples as lists, NaN and infinities as ``None``.

    Mapping keys become strings; objects JSON does not know become their ``str``.

    Example:
        >>> json_safe({1: (np.int64(2), float("inf")), "a": np.array([0.5, np.nan])})
        {'1': [2, None], 'a': [0.5, None]}
    """
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path: PathLike, data: Any, indent: int = 1) -> Path:
    """Write ``data`` as strict JSON (:func:`json_safe`), atomically; returns the path."""
    return write_text(path, json.dumps(json_safe(data), indent=indent) + "\n")


def read_json(path: PathLike) -> Any:
    """Read a JSON file (``null`` stays ``None``)."""
    with open(path) as fh:
        return json.load(fh)


def write_rows(path: PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """Write dict rows as CSV, atomically (columns: the union of their keys in first-seen order; a missing key is
    an empty cell, and so is a NaN)."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or ["empty"])
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in json_safe(dict(row)).items()} for row in rows)
    os.replace(tmp, path)
    return path


def set_aside(path: PathLike) -> Path:
    """Move a corrupt file out of the way, to ``<name>.corrupt-<time>`` beside it (kept for inspection; never
    overwriting an earlier one); returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    path.replace(aside)
    return aside


def warn(message: str) -> None:
    """Print ``warning: <message>`` on stderr, as one line that does not break a progress bar."""
    from tqdm.auto import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)
