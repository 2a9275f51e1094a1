"""Errors the user can fix: the CLI turns them into exit status 2 and one line."""


class UserError(ValueError):
  """Bad input: an unknown name, an out-of-range number, a missing file...

  The message is one line that names the flag or the file at fault.
  """

  def __init__(self, message: str):
    super().__init__(" ".join(str(message).split()))


class DamagedFile(UserError):
  """A result file that is there but does not read back whole (truncated,
  empty, not what lottery_tf writes). Writes are atomic, so the damage came
  from outside: a copy cut short, a full disk of another tool, a hand edit.
  """

  def __init__(self, path: str, reason: str, fix: str = ""):
    self.path = path
    self.reason = reason
    super().__init__(
        f"{path} is damaged ({reason}); "
        + (fix or "move it away and run the same command again to recompute "
           "it"))


class RunFailed(Exception):
  """Some of a command's runs failed (each reported as it failed) while the
  others finished: exit status 1 and this one line; running the same
  command again retries what is unfinished."""

  def __init__(self, message: str):
    super().__init__(" ".join(str(message).split()))
