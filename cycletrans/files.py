"""Files a run or a checkpoint is made of: atomic writes, JSON errors that name the file, and the
temporary files that killed writes leave behind.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> with atomic_write(path) as f:
    ...     _ = f.write(b'{"x": 1}')
    >>> read_json(path)
    {'x': 1}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# ".<name>.tmp<pid>" from atomic_write; ".tmpXXXXXX" from safetensors' own writer (save_file).
_TEMP_NAME = re.compile(r"\..+\.tmp\d+|\.tmp[A-Za-z0-9]{6}")


@contextmanager
def atomic_write(path: str | Path) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary file in the same folder, fsynced and moved over it.

    A writer killed at any moment leaves either the old file or the new one (and at worst a
    ``.<name>.tmp<pid>`` file, which :func:`remove_temp_files` removes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files of killed writes in ``folder``; returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and _TEMP_NAME.fullmatch(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def read_json(path: str | Path) -> Any:
    """The JSON document in ``path``; ValueError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from error
