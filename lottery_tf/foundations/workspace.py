"""The directories flags name (--output_dir, --export_dir, --data_dir):
whether they can be used, and one process per experiment in them."""
import contextlib
import hashlib
import json
import os
import platform
import tempfile
import threading
import time
import uuid
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


# -- claims: one holder per experiment across machines ----------------------
#
# The flock above is one machine's. Runs on several machines (Ray workers on
# a shared filesystem or gs://) also claim the directory with a file beside
# it, ``<parent>/.claims/<name>.json`` ({holder, host, pid, token,
# heartbeat}), which its holder rewrites every HEARTBEAT_SECONDS while it
# runs and deletes when done. A claim is stale, and is taken over, when its
# holder is a dead process on this host, or when its heartbeat is older than
# LEASE_SECONDS (a holder on another machine that died or lost the
# filesystem). On a local or NFS path a claim is created exclusively
# (O_EXCL) and a stale one renamed away first, so two takers cannot both
# win; on an object store (gs://) the claim is written, then read back after
# CONFIRM_SECONDS, and the taker whose token is there holds it.

HEARTBEAT_SECONDS = 20.0
LEASE_SECONDS = 90.0
CONFIRM_SECONDS = 0.5
#: How long a run waits for someone else's claim to be released or to go
#: stale before it gives up (UserError). 0 in a CLI run (a second command on
#: the same experiment is told at once); a Ray task retried after its worker
#: died waits out the dead worker's lease (ray_grid sets it).
claim_wait_seconds = 0.0


def claim_path(exp_dir: str) -> str:
  exp_dir = exp_dir.rstrip("/")
  parent, name = (exp_dir.rsplit("/", 1) if fs.is_url(exp_dir)
                  else os.path.split(fs.abspath(exp_dir)))
  return fs.join(parent, ".claims", name + ".json")


def _read_claim(path: str):
  try:
    claim = json.loads(fs.read_bytes(path).decode())
    return claim if isinstance(claim, dict) else {}
  except (OSError, tf.errors.OpError, ValueError, UnicodeDecodeError):
    # Missing (NotFound), or unreadable: written whole each time (local:
    # renamed into place), so unreadable means damaged: stale.
    return None if not fs.exists(path) else {}


def _stale(claim: dict) -> bool:
  if not claim:
    return True
  if claim.get("host") == platform.node():
    try:
      os.kill(int(claim.get("pid", -1)), 0)
    except ProcessLookupError:
      return True
    except (OSError, ValueError, TypeError):
      pass  # Alive but not ours to signal, or unreadable: the heartbeat says.
  try:
    return time.time() - float(claim.get("heartbeat", 0)) > LEASE_SECONDS
  except (TypeError, ValueError):
    return True


def _claim_text(token: str) -> str:
  return json.dumps({"holder": f"pid {os.getpid()} on {platform.node()}",
                     "host": platform.node(), "pid": os.getpid(),
                     "token": token, "heartbeat": time.time()})


def _write_claim(path: str, token: str) -> None:
  tmp = f"{path}.{token}.tmp"
  with fs.open(tmp, "w") as f:
    f.write(_claim_text(token))
  fs.rename(tmp, path, overwrite=True)


def _try_take(path: str, claim, token: str) -> bool:
  """One attempt to take a free or stale claim; True if it is ours."""
  if fs.is_url(path):
    _write_claim(path, token)
    time.sleep(CONFIRM_SECONDS)
    return (_read_claim(path) or {}).get("token") == token
  if claim is None:
    return _create(path, token)
  # Stale: one taker at a time (an exclusive takeover file), and only if
  # the claim is still the stale one it saw (another may have taken it).
  takeover = path + ".takeover"
  try:
    if time.time() - os.path.getmtime(takeover) > LEASE_SECONDS:
      os.remove(takeover)  # A taker that died mid-takeover.
  except OSError:
    pass
  if not _create(takeover, token):
    return False
  try:
    now = _read_claim(path)
    if now is not None and (now or {}).get("token") != claim.get("token"):
      return False
    if now is not None:
      os.remove(path)
    return _create(path, token)
  finally:
    os.remove(takeover)


def _create(path: str, token: str) -> bool:
  try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w") as f:
    f.write(_claim_text(token))
  return True


class _Claim:
  """A held claim and the thread that keeps its heartbeat."""

  def __init__(self, exp_dir: str):
    self.exp_dir = exp_dir
    self.path = claim_path(exp_dir)
    self.token = uuid.uuid4().hex
    self._stop = threading.Event()
    self._thread = None

  def acquire(self, wait_seconds: float) -> None:
    fs.makedirs(self.path.rsplit("/", 1)[0] if fs.is_url(self.path)
                else os.path.dirname(self.path))
    deadline = time.time() + wait_seconds
    while True:
      claim = _read_claim(self.path)
      if (claim is None or _stale(claim)) and self._try(claim):
        break
      if time.time() >= deadline:
        claim = claim or {}  # None: another taker won the race just now.
        age = time.time() - float(claim.get("heartbeat", 0) or 0)
        raise UserError(
            f"{self.exp_dir} is in use by {claim.get('holder', 'another run')}"
            f" (its claim {self.path}, alive {age:.0f} s ago): the same "
            "experiment, started twice; wait for it to finish, or stop it "
            "and run the command again: it resumes")
      time.sleep(min(2.0, max(0.1, deadline - time.time())))
    self._thread = threading.Thread(target=self._beat, daemon=True,
                                    name="lottery_tf-claim")
    self._thread.start()

  def _try(self, claim) -> bool:
    try:
      return _try_take(self.path, claim, self.token)
    except (OSError, tf.errors.OpError):
      return False

  def _beat(self) -> None:
    while not self._stop.wait(HEARTBEAT_SECONDS):
      try:
        if (_read_claim(self.path) or {}).get("token") == self.token:
          _write_claim(self.path, self.token)
      except (OSError, tf.errors.OpError):
        pass  # The next beat tries again; the lease outlasts a few misses.

  def release(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    try:
      if (_read_claim(self.path) or {}).get("token") == self.token:
        fs.remove(self.path)
      if not fs.is_url(self.path):
        # The output directory lists only results when nothing runs.
        os.rmdir(os.path.dirname(self.path))
    except (OSError, tf.errors.OpError):
      pass  # Left behind, it goes stale: the next run takes it over (and
      # a .claims/ that other runs' claims still fill stays).


@contextlib.contextmanager
def experiment_lock(exp_dir: str):
  """Exclusive use of an experiment directory while the block runs.

  Two processes started on the same experiment would both train every
  level. The lock is an ``flock`` on a file in the temporary directory named
  by the experiment's path (the file names its holder: host and pid): the
  kernel releases it when the holder exits or dies, so a crashed run's lock
  is simply taken over. The second process gets a
  UserError naming the holder. Re-entrant within a process (a transfer runs
  its target's own find). Across machines (and on URLs, gs:// or ram://,
  where there is no file lock) the directory is also claimed with a
  heartbeat file beside it (see "claims" above).
  """
  key = fs.abspath(exp_dir)
  if key in _LOCKS:
    yield
    return
  if fs.is_url(exp_dir):
    with _claimed(key, exp_dir):
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
    try:
      with _claimed(key, exp_dir):
        yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)
  finally:
    f.close()


@contextlib.contextmanager
def _claimed(key: str, exp_dir: str):
  claim = _Claim(exp_dir)
  claim.acquire(claim_wait_seconds)
  _LOCKS[key] = claim
  try:
    yield
  finally:
    del _LOCKS[key]
    claim.release()
