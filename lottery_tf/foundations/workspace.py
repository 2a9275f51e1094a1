"""The directories flags name (--output_dir, --export_dir, --data_dir):
whether they can be used, and one process per experiment in them."""
import contextlib
import hashlib
import os
import platform
import tempfile
from typing import Any, Dict

from lottery_tf._keras import tf
from lottery_tf.errors import UserError
from lottery_tf.foundations import fs


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:200] if text else ""


def prepare_dir(path: str, flag: str) -> str:
  """Makes the local directory ``path`` (and its parents) if missing.

  UserError naming ``flag`` if ``path`` is a file or cannot be made: every
  directory flag (--output_dir, --export_dir, --data_dir) fails in one line
  before any work, with the same words. A URL (gs://, ram://) is returned
  as it is: an object store has no directories to make, and whether one can
  be used shows only by using it (:func:`prepare_output_dir` writes to it).
  """
  if fs.is_url(path):
    return path
  try:
    if fs.exists(path) and not fs.isdir(path):
      raise UserError(f"{flag}: {path} is a file, not a directory")
    fs.makedirs(path)
  except tf.errors.OpError as e:  # "afile/sub", a parent without rights
    raise UserError(f"{flag}: cannot create {path} ({_first_line(e)})") from e
  return path


def prepare_output_dir(output_dir: str, flag: str = "--output_dir") -> str:
  """Creates ``output_dir`` if needed; UserError naming the flag if unusable."""
  if not output_dir:
    raise UserError(f"{flag}: must not be empty")
  if fs.is_url(output_dir):
    # gs://, s3://, ram://: the store says whether it can be written.
    probe = f"{output_dir.rstrip('/')}/.lottery_tf_write_test"
    try:
      fs.makedirs(output_dir)
      with fs.open(probe, "w") as f:
        f.write("ok")
      fs.remove(probe)
    except Exception as e:  # pylint: disable=broad-except  (tf.errors, OSError)
      raise UserError(f"{flag}: cannot write to {output_dir} "
                      f"({type(e).__name__}: {_first_line(e)})") from e
    return output_dir
  prepare_dir(output_dir, flag)
  if not os.access(output_dir, os.W_OK | os.X_OK):
    raise UserError(f"{flag}: {output_dir} is not writable")
  probe = fs.join(output_dir, ".lottery_tf_write_test")
  try:
    with fs.open(probe, "w") as f:
      f.write("ok")
    fs.remove(probe)
  except (OSError, tf.errors.OpError) as e:  # A full disk, a read-only mount.
    raise UserError(
        f"{flag}: {output_dir} is not writable ({_first_line(e)})") from e
  return output_dir


# Experiment directories this process holds locked: {abspath: lock file}.
_LOCKS: Dict[str, Any] = {}


@contextlib.contextmanager
def experiment_lock(exp_dir: str):
  """Exclusive use of an experiment directory while the block runs.

  Two processes started on the same experiment would both train every
  level. The lock is an ``flock`` on a file in the temporary directory named
  by the experiment's path (the file names its holder: host and pid): the
  kernel releases it when the holder exits or dies, so a crashed run's lock
  is simply taken over. The second process gets a
  UserError naming the holder. Re-entrant within a process (a transfer runs
  its target's own find). On URLs (gs://, ram://) there is no file lock:
  nothing is taken.
  """
  key = fs.abspath(exp_dir)
  if key in _LOCKS or fs.is_url(exp_dir):
    yield
    return
  try:
    import fcntl  # pylint: disable=g-import-not-at-top
  except ImportError:  # Windows
    yield
    return
  # Beside, not inside, the experiment: its listing stays the results.
  # (One machine's processes; a lock over NFS would not be reliable.)
  lock_dir = os.path.join(tempfile.gettempdir(), "lottery_tf-locks")
  os.makedirs(lock_dir, exist_ok=True)
  path = os.path.join(lock_dir, hashlib.sha256(
      key.encode()).hexdigest()[:20] + ".lock")
  f = open(path, "a+")  # pylint: disable=consider-using-with
  try:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      f.seek(0)
      holder = f.read().strip() or "another process"
      raise UserError(
          f"{exp_dir} is in use by {holder} (the same experiment, started "
          "twice); wait for it to finish, or stop it and run the command "
          "again: it resumes") from e
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {platform.node()}\n")
    f.flush()
    _LOCKS[key] = f
    try:
      yield
    finally:
      del _LOCKS[key]
      fcntl.flock(f, fcntl.LOCK_UN)
  finally:
    f.close()
