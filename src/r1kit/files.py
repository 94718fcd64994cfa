"""The one atomic writer: a reader (or a resumed run) never sees half a file or half a directory.

Everything is written beside its target and renamed into place (same filesystem, so the rename
is atomic). `durable=True` also fsyncs the data before the rename, for what must survive a power
cut or a kill of the machine, not only of the process (trace collection's records).
"""

from __future__ import annotations

import codecs
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
    check_out_file(path)
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
    check_out_dir(out, empty=not replace)
    out.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(out)
    # The pid in the name tells a later build whether the writer is still alive (see sweep_stale).
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # (not mkdtemp: its 0700 mode would stick to the final directory)
    try:
        yield tmp
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sweep_stale(out: Path) -> None:
    """Remove the temporary siblings of `out` that a killed writer left (kill -9 runs no cleanup):
    those whose pid is not a live process, and those of older versions, which named no pid."""
    if os.name != "posix":  # os.kill(pid, 0) is no liveness test elsewhere
        return
    prefix = f".{out.name}.tmp-"
    for entry in out.parent.iterdir():
        if entry.name.startswith(prefix) and entry.is_dir():
            pid = entry.name[len(prefix):].partition("-")[0]
            if not (pid.isdigit() and _alive(int(pid))):
                shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


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


# ---------------------------------------------------------------- preflight: fail before any work


def check_out_dir(out: str | Path, *, empty: bool = True, option: str = "--out") -> None:
    """`out` can become a directory we write: it is one (empty, if asked) or can be made."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise R1kitError(f"{out} exists and is not a directory; choose another {option}")
    if empty and out.is_dir() and any(out.iterdir()):
        raise R1kitError(f"{out} exists and is not empty; choose another {option} or remove it")
    _check_parents(out, option)


def check_out_file(path: str | Path, *, option: str = "--out") -> None:
    """`path` can become a file we write: it is not a directory and its parents can be made."""
    path = Path(path)
    if path.is_dir():
        raise R1kitError(f"{path} is a directory; {option} names a file, e.g. {path / 'results.json'}")
    _check_parents(path, option)


def _check_parents(path: Path, option: str) -> None:
    # The nearest existing ancestor decides: mkdir(parents=True) fails on a file, rename on no write access.
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise R1kitError(f"{option} {path}: {parent} is a file, not a directory; choose another {option}")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise R1kitError(f"{option} {path}: no permission to write in {parent}; choose another {option}")
            return


def check_utf8(path: str | Path, what: str = "file") -> None:
    """A text file r1kit reads must be readable UTF-8: say so now, not as a UnicodeDecodeError
    mid-run. Streams the file, so a large JSONL file costs no memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    done = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
                done += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise R1kitError(f"{what} {path} is not UTF-8 text ({error.reason} near byte {done + error.start}); "
                         "save it as UTF-8") from None
    except OSError as error:
        raise R1kitError(f"cannot read {what} {path}: {error.strerror or error}") from None
