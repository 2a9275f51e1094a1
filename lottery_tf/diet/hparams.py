"""Hparams of `lottery_tf score` and of the data-diet study (`lottery_tf diet`).

The pre-training hparams used by `find` (--pretrain_steps, --pretrain_subset,
--scores, ...) are LotteryHparams fields: they change the rewind point.
"""
import dataclasses

from lottery_tf.errors import UserError
from lottery_tf.foundations.hparams import Hparams, field, split_list

SCORES = ("el2n", "grand")
#: Arms of the diet study that are not subsets.
ARMS = ("init", "full")


@dataclasses.dataclass(frozen=True)
class ScoreHparams(Hparams):
  group = "score"
  score: str = field(
      "el2n", choices=SCORES, help="Per-example score: `el2n` (||softmax(f(x)) - onehot(y)||_2 on "
      "the un-augmented train set) or `grand` (norm of the loss gradient "
      "over all trainable weights), averaged over the ensemble (Paul et al. "
      "2021).")
  ensemble_size: int = field(
      10, "Networks trained from different seeds (initialisation and data "
      "order) whose scores are averaged.", interval="[1, 1000]")
  score_steps: str = field(
      "1600it", "Training of each ensemble member before scoring (`0it` "
      "scores at initialisation, as GraNd at init).")

  def validate(self) -> None:
    from lottery_tf.training import durations  # pylint: disable=g-import-not-at-top
    self.check()
    durations.parse(self.score_steps, "--score_steps")


@dataclasses.dataclass(frozen=True)
class DietHparams(Hparams):
  group = "diet"
  # More arms extend the same study (each arm is its own IMP experiment).
  diet_arms: str = field(
      "init,full,random:0.1,easy:0.1", "diet: the rewind points compared, "
      "comma-separated: `init` (no pre-training: IMP rewinds to step 0), "
      "`full` (pre-training on all the data) and --pretrain_subset specs "
      "(`random:N`, `easy:N`, `hard:N`); each arm is an IMP run of its own.",
      affects_results=False, many=True)

  def arm_list(self):
    return split_list(self.diet_arms)

  def validate(self) -> None:
    from lottery_tf.diet import subsets  # pylint: disable=g-import-not-at-top
    self.check()
    arms = self.arm_list()
    if not arms:
      raise UserError("--diet_arms: name at least one arm, e.g. full,easy:0.1")
    if len(set(arms)) != len(arms):
      raise UserError(f"--diet_arms: {self.diet_arms!r} repeats an arm")
    for arm in arms:
      if arm not in ARMS:
        subsets.parse(arm, "--diet_arms")
