"""Result files: atomic writes and whole reads, wherever they live.

Every result file is written to a temporary name in the same directory and
renamed into place, so a run killed at any moment leaves either the old file
or the new one, never a half-written file that looks valid. Paths may be
local or URLs (``gs://``, ``s3://``, ``ram://``): all I/O goes through
:mod:`lottery_tf.foundations.fs` (``tf.io.gfile``); on an object store the
"rename" is the store's own atomic object write. A file damaged from outside
reads as :class:`~lottery_tf.errors.DamagedFile` (``intact``, ``set_aside``).
"""
import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
import uuid
import zipfile
from typing import Any, Dict, List

import numpy as np

from lottery_tf.errors import DamagedFile
from lottery_tf.foundations import fs


@contextlib.contextmanager
def atomic_path(path: str):
  """Yields a temporary path beside ``path``; renames it into place on success.

  Write the temporary file with :func:`lottery_tf.fs.open` (or any writer
  that takes a URL); a local one is fsynced and gets the usual umask
  permissions.
  """
  if fs.is_url(path):
    directory, base = path.rsplit("/", 1)
    fs.makedirs(directory)
    tmp = f"{directory}/.tmp-{uuid.uuid4().hex}-{base}"
    try:
      yield tmp
      fs.rename(tmp, path, overwrite=True)
    finally:
      if fs.exists(tmp):
        fs.remove(tmp)
    return
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path),
                             dir=directory)
  os.close(fd)
  try:
    yield tmp
    # mkstemp creates 0600; results are meant to be shared like any file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
  with atomic_path(path) as tmp:
    if fs.is_url(tmp):
      with fs.open(tmp, "wb") as f:
        f.write(data)
      return
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())


def write_json(path: str, obj: Any) -> None:
  text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
  write_bytes(path, (text + "\n").encode())


def _json_default(obj):
  if isinstance(obj, (np.integer,)):
    return int(obj)
  if isinstance(obj, (np.floating,)):
    return float(obj)
  if isinstance(obj, np.ndarray):
    return obj.tolist()
  return str(obj)


def write_csv(path: str, rows: List[Dict[str, Any]], first=()) -> None:
  """Rows as CSV: the columns in ``first`` lead, the others follow sorted."""
  fields = sorted({k for r in rows for k in r},
                  key=lambda k: (k not in first,
                                 first.index(k) if k in first else 0, k))
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=fields)
  writer.writeheader()
  writer.writerows(rows)
  write_bytes(path, buf.getvalue().encode())


def read_json(path: str) -> Any:
  """The JSON in ``path``; DamagedFile (a UserError) if it does not parse."""
  data = fs.read_bytes(path)
  if not data.strip():
    raise DamagedFile(path, "empty")
  try:
    return json.loads(data.decode("utf-8"))
  except (ValueError, UnicodeDecodeError) as e:
    raise DamagedFile(path, f"not whole JSON: {e}") from e


def write_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
  buf = io.BytesIO()
  np.savez_compressed(buf, **arrays)
  write_bytes(path, buf.getvalue())


def read_npz(path: str) -> Dict[str, np.ndarray]:
  """The arrays in ``path``: numbers (and strings), never pickled objects.

  DamagedFile (a UserError) if it is truncated, not an npz, or holds object
  (or other non-numeric) arrays.
  """
  data = fs.read_bytes(path)
  if not data:
    raise DamagedFile(path, "empty")
  try:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
      out = {k: z[k] for k in z.files}
  except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile,
          zipfile.LargeZipFile) as e:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if "allow_pickle" in reason or "Object arrays" in reason:
      reason = "holds object arrays"
    raise DamagedFile(path, reason or type(e).__name__) from e
  # Numbers and strings (a scores file's meta); np.load already refused
  # pickled objects.
  bad = [k for k, v in out.items() if v.dtype.kind not in "biufUS"]
  if bad:
    raise DamagedFile(path, f"array {bad[0]!r} is {out[bad[0]].dtype}, not "
                      "numbers")
  return out


def intact(path: str, read=None, log=None, mine: bool = True) -> bool:
  """Whether ``path`` is there and reads back whole.

  A damaged file is renamed to ``NAME.damaged`` (kept, not deleted: nothing
  is lost) and reported through ``log``; the caller recomputes it. ``read``:
  :func:`read_json` (the default for ``.json``) or :func:`read_npz`.
  ``mine``: this process wrote it (else a damaged file is left alone).
  """
  if not fs.exists(path):
    return False
  if read is None:
    read = read_npz if path.endswith(".npz") else read_json
  try:
    read(path)
    return True
  except DamagedFile as e:
    if not mine:
      return False  # Another process's file (the chief's): not ours to move.
    aside = set_aside(path)
    if log is not None:
      log(f"{e.path} is damaged ({e.reason}): kept as "
          f"{os.path.basename(aside)}, recomputing")
    return False


def set_aside(path: str) -> str:
  """Renames a damaged file to ``NAME.damaged`` (``.damaged.2``, ...)."""
  own = path
  target = own + ".damaged"
  n = 1
  while fs.exists(target):
    n += 1
    target = f"{own}.damaged.{n}"
  fs.rename(own, target)
  return target


def sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with fs.open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


class Writer:
  """Where this process writes its results, and which copy it reads back.

  Every process writes where it is told (:data:`LOCAL`), except the workers
  of a multi-worker run other than the chief: they run the same code as the
  chief (training, evaluation and saving are collective) but must not write
  its results, so a ``Writer(root, scratch)`` sends what they write under
  ``root`` to ``scratch``; what they read back prefers their own copy, and
  whether something is done is read from ``root``, the chief's files.
  Runners are handed one (the CLI makes it); nothing here is global.
  """

  def __init__(self, root: str = "", scratch: str = ""):
    self.root = fs.abspath(root).rstrip("/") if root else ""
    self.scratch = fs.abspath(scratch).rstrip("/") if scratch else ""

  @property
  def redirected(self) -> bool:
    return bool(self.root)

  def path(self, path: str) -> str:
    """Where this process writes ``path`` (itself, unless redirected)."""
    if not self.root:
      return path
    full = fs.abspath(path)
    if full == self.scratch or full.startswith(self.scratch + "/"):
      return path
    if full == self.root or full.startswith(self.root + "/"):
      return self.scratch + full[len(self.root):]
    return path

  def readable(self, path: str) -> str:
    """This process's own copy of ``path`` if it wrote one, else ``path``."""
    own = self.path(path)
    return own if own != path and fs.exists(own) else path

  def write_bytes(self, path: str, data: bytes) -> None:
    write_bytes(self.path(path), data)

  def write_json(self, path: str, obj: Any) -> None:
    write_json(self.path(path), obj)

  def write_csv(self, path: str, rows, first=()) -> None:
    write_csv(self.path(path), rows, first=first)

  def write_npz(self, path: str, arrays: Dict[str, np.ndarray]) -> None:
    write_npz(self.path(path), arrays)

  def read_json(self, path: str) -> Any:
    return read_json(self.readable(path))

  def read_npz(self, path: str) -> Dict[str, np.ndarray]:
    return read_npz(self.readable(path))

  def exists(self, path: str) -> bool:
    return fs.exists(self.readable(path))

  def intact(self, path: str, log=None) -> bool:
    own = self.readable(path)
    return intact(own, log=log, mine=own == self.path(path))

  def set_aside(self, path: str) -> str:
    return set_aside(self.readable(path))


#: The writer of every process but a multi-worker run's non-chief workers.
LOCAL = Writer()
