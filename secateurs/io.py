"""File I/O shared by every stage: atomic outputs, Parquet tables and JSON.

Every output is written to a temporary sibling and renamed into place only when the
writer finishes, so a killed or failed job never leaves a half-written file that a later
run (or Snakemake's mtime check) would take for a finished one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    With `directory=True` the temporary path is created as an empty directory. An existing
    `path` is replaced whole, never merged into.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except OSError as error:
        written = _size(tmp)
        _remove(tmp)
        if error.errno == errno.ENOSPC:
            free = shutil.disk_usage(final.parent).free
            raise DiskFullError(
                f"no space left on the disk of {final.parent} while writing {final.name}: "
                f"{_gib(written)} were written before it filled ({_gib(free)} free now). "
                f"Fix: free space there, or point the workflow at a larger disk "
                f"(snakemake --directory)") from error
        raise
    except BaseException:
        _remove(tmp)
        raise
    if final.exists() or final.is_symlink():
        _remove(final)
    os.replace(tmp, final)


class DiskFullError(OSError):
    """An output did not fit on its disk; the message names the place and the sizes."""


def remove_stale_temporaries(final: Path) -> None:
    """Remove `.name.tmp-*` siblings that a killed job left behind (a finished job never
    leaves one), so a rerun does not pile them up next to its output."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        _remove(stale)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` as indented UTF-8 JSON (non-ASCII kept readable), atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(rows: Iterable[dict] | pa.Table, path: str | os.PathLike,
                  schema: pa.Schema | None = None) -> int:
    """Write rows (dicts with the same keys) or a table to Parquet atomically; return row count."""
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=schema)
    if table.num_rows == 0 and schema is not None:
        table = schema.empty_table()
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return table.num_rows


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> list[dict]:
    """Read a Parquet file into a list of dicts (the data stages' tables are small enough)."""
    return pq.read_table(path, columns=columns).to_pylist()
