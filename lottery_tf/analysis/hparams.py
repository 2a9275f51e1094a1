"""Hparams of `lottery_tf lmc` (the path settings are LotteryHparams fields,
shared with `find --lmc_every_level`)."""
import dataclasses

from lottery_tf.foundations.hparams import Hparams, field

START_POINTS = ("init", "rewind", "ticket")


@dataclasses.dataclass(frozen=True)
class LMCHparams(Hparams):
  group = "lmc"
  lmc_from: str = field(
      "rewind", choices=START_POINTS, help="lmc: where the two copies start: `init` (step 0), `rewind` "
      "(the dense network at --rewind, trained here, or the rewind point of "
      "the `find` experiment given as --ticket) or `ticket` (--ticket: a "
      "ticket directory, or a `find` experiment with --lmc_level).")
  lmc_level: int = field(
      -1, "lmc: with --lmc_from=ticket and an experiment directory as "
      "--ticket, the level whose ticket to use (-1 = the deepest one).",
      interval="[0, inf)", also=(-1,))

  def validate(self) -> None:
    self.check()
