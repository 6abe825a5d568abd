"""Result files written atomically (a reader, or a resumed run, never sees half a file): CSV tables of dict rows
and JSON documents."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Sequence


def write_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write dict rows as CSV (columns: the union of their keys, first-seen order; a missing key is an empty cell).

    The file is written beside ``path`` and moved into place, so an interrupted write never leaves half a table.

    Example:
        >>> import tempfile
        >>> p = write_rows(Path(tempfile.mkdtemp()) / "t.csv", [{"a": 1}, {"a": 2, "b": 3}])
        >>> p.read_text().splitlines()
        ['a,b', '1,', '2,3']
    """
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or ["empty"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback: numpy arrays and scalars as lists and numbers, anything else as its string."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    """Write ``data`` as JSON (numpy values through :func:`json_default`), beside ``path`` then moved into place."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=json_default))
    os.replace(tmp, path)
    return path
