"""Hparams of `lottery_tf lmc` (the path settings are LotteryHparams fields,
shared with `find --lmc_every_level`)."""
import dataclasses

from lottery_tf.errors import UserError
from lottery_tf.hparams import Hparams, field

START_POINTS = ("init", "rewind", "ticket")


@dataclasses.dataclass(frozen=True)
class LMCHparams(Hparams):
  group = "lmc"
  lmc_from: str = field(
      "rewind", "lmc: where the two copies start: `init` (step 0), `rewind` "
      "(the dense network at --rewind, trained here, or the rewind point of "
      "the `find` experiment given as --ticket) or `ticket` (--ticket: a "
      "ticket directory, or a `find` experiment with --lmc_level).")
  lmc_level: int = field(
      -1, "lmc: with --lmc_from=ticket and an experiment directory as "
      "--ticket, the level whose ticket to use (-1 = the deepest one).")

  def validate(self) -> None:
    if self.lmc_from not in START_POINTS:
      raise UserError(f"--lmc_from: {self.lmc_from!r} is not one of: "
                      f"{', '.join(START_POINTS)}")
    if self.lmc_level < -1:
      raise UserError(f"--lmc_level: must be >= 0 or -1 (the deepest), got "
                      f"{self.lmc_level}")
