"""Hparams of an IMP run that are not dataset/model/training/pruning."""
import dataclasses

from lottery_tf.foundations.hparams import Hparams, field, split_list

#: The branches ``--controls`` runs by default (any registered branch may be
#: named: ``lottery_tf list`` shows them).
CONTROLS = ("reinit", "random_mask")


@dataclasses.dataclass(frozen=True)
class LotteryHparams(Hparams):
  group = "lottery"
  # More levels extend the same experiment, so this is not in the hash.
  levels: int = field(
      10, "Prune this many rounds; level 0 is the dense network (at most 60: "
      "fewer than one weight in a million would be left).",
      affects_results=False, interval="[0, 60]")
  rewind: str = field(
      "0it", "Rewind point: `0it` (original LTH), `500it`, `1ep` (late "
      "resetting).")
  controls: str = field(
      "reinit,random_mask", "Branches run at every level beside the "
      "ticket, comma-separated: `reinit` (same mask, fresh init), "
      "`random_mask` (random mask at the same per-layer density, rewind "
      "weights), `lmc` (the instability, as --lmc_every_level), or any "
      "branch registered in lottery_tf.lottery.branch (`lottery_tf list`); "
      "empty for none.",
      affects_results=False, many=True)
  # Tickets on a data diet (Paul et al. 2022): the rewind point is the dense
  # network pre-trained t steps on a subset of the data.
  pretrain_steps: str = field(
      "0it", "Pre-train the dense network this long (`800it`; `ep` counts "
      "full-data epochs at --batch_size) on --pretrain_subset and take it as "
      "the rewind point; IMP then trains on the full data with the lr "
      "schedule resuming there (Paul et al. 2022). `0it`: no pre-training "
      "phase.")
  pretrain_subset: str = field(
      "", "Data of the pre-training: `random:N`, `easy:N` (lowest --scores) "
      "or `hard:N` (highest), N a count or a fraction (`easy:0.1`); empty: "
      "the full training set.")
  class_balanced: bool = field(
      False, "Pick the --pretrain_subset class by class, as evenly as the "
      "classes allow.")
  scores: str = field(
      "", "Per-example scores for `easy:`/`hard:` subsets: a scores.npz "
      "written by `lottery_tf score`, or its experiment directory. "
      "Experiments are named by the file's content, not its path.")
  pretrain_batch_size: int = field(
      0, "Batch size of the pre-training (0 = --batch_size).")
  pretrain_lr: float = field(
      0.0, "Peak learning rate of the pre-training (0 = --lr); the shape of "
      "the lr schedule (warm-up, milestones) is kept.")
  # Instability analysis (Frankle et al. 2020): measurements beside the
  # tickets, which they do not change.
  lmc_every_level: bool = field(
      False, "At every level, train a second copy of the ticket from the "
      "rewind point with another data order and record the instability "
      "(error barrier on the linear path between the copies) and the "
      "per-example loss barriers.", affects_results=False)
  interpolation_points: int = field(
      11, "Points on the linear path between two trained copies, ends "
      "included (lmc and --lmc_every_level).", interval="[3, 201]")
  barrier_threshold: float = field(
      0.1, "An example is linearly connected when its loss barrier at "
      "alpha=0.5 is below this (nats, in [0, 10]).", interval="[0, 10]")

  def control_list(self):
    return split_list(self.controls)

  def branch_list(self):
    """The branches to run at each level: --controls, then the instability
    analysis if --lmc_every_level asks for it."""
    out = list(dict.fromkeys(self.control_list()))
    if self.lmc_every_level and "lmc" not in out:
      out.append("lmc")
    return out

  def measures_lmc(self) -> bool:
    return "lmc" in self.branch_list()

  def result_fields(self):
    """Like every group's, but the interpolation settings only enter while
    an instability analysis runs. (``--scores`` enters as the digest of the
    file's content: the description of the experiment substitutes it.)"""
    out = super().result_fields()
    if not self.measures_lmc():
      out.pop("interpolation_points", None)
      out.pop("barrier_threshold", None)
    return out

  def validate(self):
    self.check()
    # The branches are a registry (a user may add one), not a fixed list.
    from lottery_tf.lottery import branch  # pylint: disable=g-import-not-at-top
    branch.check(self.control_list())
