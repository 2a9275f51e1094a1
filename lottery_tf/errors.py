"""Errors the user can fix: the CLI turns them into exit status 2 and one line."""


class UserError(ValueError):
  """Bad input: an unknown name, an out-of-range number, a missing file...

  The message is one line that names the flag or the file at fault.
  """

  def __init__(self, message: str):
    super().__init__(" ".join(str(message).split()))
