"""The one atomic writer: a reader (or a resumed run) never sees half a file or half a directory.

Everything is written beside its target and renamed into place (same filesystem, so the rename
is atomic). `durable=True` also fsyncs the data before the rename, for what must survive a power
cut or a kill of the machine, not only of the process (trace collection's records).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from r1kit.errors import R1kitError


def write_text(path: str | Path, text: str, *, durable: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any, *, durable: bool = False, indent: int = 2) -> Path:
    return write_text(path, json.dumps(data, indent=indent, default=str, ensure_ascii=False) + "\n", durable=durable)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def atomic_dir(out: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of `out` to write into; it becomes `out` only if the block
    succeeds and is removed otherwise. Without `replace`, `out` must not exist or be empty; with
    it, an existing `out` is swapped out and removed once the new one is in place."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise R1kitError(f"{out} exists and is not a directory; choose another --out")
    if not replace and out.exists() and any(out.iterdir()):
        raise R1kitError(f"{out} exists and is not empty; choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # (not mkdtemp: its 0700 mode would stick to the final directory)
    try:
        yield tmp
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish(staging: Path, out: Path) -> None:
    """Move a finished directory into place; rename() cannot replace a non-empty directory, so
    an older one is moved aside first and removed after."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)
