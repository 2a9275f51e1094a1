"""Hparams of an IMP run that are not dataset/model/training/pruning."""
import dataclasses

from lottery_tf.errors import UserError
from lottery_tf.hparams import Hparams, field

CONTROLS = ("reinit", "random_mask")


@dataclasses.dataclass(frozen=True)
class LotteryHparams(Hparams):
  group = "lottery"
  # More levels extend the same experiment, so this is not in the hash.
  levels: int = field(
      10, "Prune this many rounds; level 0 is the dense network.",
      affects_results=False)
  rewind: str = field(
      "0it", "Rewind point: `0it` (original LTH), `500it`, `1ep` (late "
      "resetting).")
  controls: str = field(
      "reinit,random_mask", "Controls trained at every level beside the "
      "ticket: `reinit` (same mask, fresh init), `random_mask` (random mask "
      "at the same per-layer density, rewind weights); empty for none.",
      affects_results=False)

  def control_list(self):
    return [c.strip() for c in self.controls.split(",") if c.strip()]

  def validate(self):
    if self.levels < 0:
      raise UserError(f"--levels: must be >= 0, got {self.levels}")
    if self.levels > 60:
      raise UserError(f"--levels: {self.levels} rounds would leave fewer than "
                      "one weight in a million; use at most 60")
    unknown = set(self.control_list()) - set(CONTROLS)
    if unknown:
      raise UserError(f"--controls: unknown control(s) {sorted(unknown)}; "
                      f"choose from: {', '.join(CONTROLS)}")
