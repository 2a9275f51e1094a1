"""Training lengths as strings: ``160ep`` (epochs) or ``500it`` (iterations)."""
import dataclasses
import re

from lottery_tf.errors import UserError

_PATTERN = re.compile(r"^\s*(\d+)\s*(ep|it)\s*$")


@dataclasses.dataclass(frozen=True)
class Duration:
  value: int
  unit: str  # "ep" or "it"

  def to_steps(self, steps_per_epoch: int) -> int:
    if self.unit == "it":
      return self.value
    return self.value * steps_per_epoch

  def __str__(self):
    return f"{self.value}{self.unit}"


#: Larger counts are typos (a 90-epoch ImageNet run is 450,000 steps), and
#: would overflow the int64 step counter or the per-epoch bookkeeping.
MAX_VALUE = 10**9


def parse(text: str, flag: str = "--training_steps") -> Duration:
  """Parses ``'160ep'`` / ``'500it'``; a bare ``0`` means zero iterations."""
  if isinstance(text, Duration):
    return text
  text = str(text)
  if text.strip() == "0":
    return Duration(0, "it")
  match = _PATTERN.match(text)
  if not match:
    raise UserError(
        f"{flag}: {text!r} is not a duration; write e.g. '160ep' for epochs "
        "or '500it' for iterations")
  value = int(match.group(1))
  if value > MAX_VALUE:
    raise UserError(f"{flag}: {text!r} is more than {MAX_VALUE:,} "
                    f"{'epochs' if match.group(2) == 'ep' else 'iterations'}")
  return Duration(value, match.group(2))


def parse_list(text: str, flag: str) -> list:
  """Comma-separated durations, e.g. ``'80ep,120ep'``; empty gives []."""
  return [parse(part, flag) for part in str(text).split(",") if part.strip()]
