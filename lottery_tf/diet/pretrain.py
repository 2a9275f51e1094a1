"""Pre-training for the rewind point (Paul et al. 2022, "data diet").

The dense network trains ``t`` steps on ``--pretrain_subset`` (with its own
batch size and peak lr if asked); those weights are the rewind point w_t, and
IMP (level 0 included) trains on the full data from step t, the lr schedule
resuming there. :func:`plan` makes the rewind-point provider the runner
(``lottery.runner``) is handed (``descriptions.Find.runner`` does this);
nothing here knows about levels.

Pre-training on the full data at --batch_size and --lr is exactly the first
t steps of the ordinary dense run, so no separate phase runs then: the
rewind point is step t of level 0 (``PretrainPlan.separate`` is False).
"""
import dataclasses
import math
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from lottery_tf import training
from lottery_tf.diet import scores as scores_lib, subsets
from lottery_tf.errors import UserError
from lottery_tf.training import durations, optimizers
from lottery_tf.training.rewind import snapshot


def validate(lhp) -> None:
  """Flag-only checks of the pre-training hparams (no data read)."""
  steps = durations.parse(lhp.pretrain_steps, "--pretrain_steps")
  spec = subsets.parse(lhp.pretrain_subset)
  if lhp.pretrain_batch_size < 0:
    raise UserError(f"--pretrain_batch_size: must be >= 0 (0 = --batch_size),"
                    f" got {lhp.pretrain_batch_size}")
  if lhp.pretrain_lr < 0:
    raise UserError(f"--pretrain_lr: must be >= 0 (0 = --lr), got "
                    f"{lhp.pretrain_lr}")
  if steps.value == 0:
    for name, on in (("pretrain_subset", spec is not None),
                     ("pretrain_batch_size", lhp.pretrain_batch_size),
                     ("pretrain_lr", lhp.pretrain_lr),
                     ("class_balanced", lhp.class_balanced)):
      if on:
        raise UserError(f"--pretrain_steps: must be positive with --{name} "
                        f"(it is the length of the pre-training), got "
                        f"{lhp.pretrain_steps!r}")
  if lhp.class_balanced and spec is None:
    raise UserError("--class_balanced: needs a --pretrain_subset to balance")
  if spec is not None and spec.needs_scores and not lhp.scores:
    raise UserError(f"--scores: --pretrain_subset={lhp.pretrain_subset} needs "
                    "per-example scores; run `lottery_tf score` and pass its "
                    "scores.npz (or use `lottery_tf diet`, which scores first)")


@dataclasses.dataclass
class PretrainPlan:
  """What the pre-training phase does, resolved against the data."""
  steps: int
  batch_size: int
  lr: float
  seed: int
  subset: Optional[subsets.SubsetSpec] = None
  indices: Optional[np.ndarray] = None  # None: the full training set
  class_balanced: bool = False
  scores_file: str = ""
  num_train: int = 0
  separate: bool = True  # False: it is the dense run's first t steps

  def train(self, model, task, *, eval_data=None, quiet: bool = False,
            ckpt=None) -> Tuple[Dict[str, np.ndarray], dict]:
    """The phase itself (``lottery.rewind_point.RewindPoint``): :func:`pretrain`."""
    return pretrain(model, task, self, eval_data=eval_data, quiet=quiet,
                    ckpt=ckpt)

  @property
  def num_examples(self) -> int:
    return self.num_train if self.indices is None else len(self.indices)

  def to_dict(self) -> dict:
    out = {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
           "seed": self.seed, "subset": str(self.subset or "full"),
           "class_balanced": self.class_balanced,
           "num_examples": self.num_examples, "separate_phase": self.separate}
    if self.scores_file:
      out["scores"] = self.scores_file
    return out


def plan(task, lhp) -> Optional[PretrainPlan]:
  """The pre-training of ``lhp`` for ``task``, or None if there is none.

  Reads the scores file and the train labels when the subset needs them, so
  that every bad input is reported before any training.
  """
  validate(lhp)
  steps = task.steps(lhp.pretrain_steps, "--pretrain_steps")
  if steps == 0:
    return None
  if steps >= task.total_steps:
    raise UserError(
        f"--pretrain_steps: {lhp.pretrain_steps} ({steps} steps) is not "
        f"before the end of training ({task.total_steps} steps)")
  thp = task.thp
  n = task.info.num_examples["train"]
  spec = subsets.parse(lhp.pretrain_subset)
  result = PretrainPlan(
      steps=steps, batch_size=lhp.pretrain_batch_size or thp.batch_size,
      lr=lhp.pretrain_lr or thp.lr, seed=thp.seed, subset=spec,
      class_balanced=lhp.class_balanced, num_train=n)
  if spec is not None:
    labels = scores = None
    if spec.needs_scores or lhp.class_balanced:
      labels = scores_lib.train_labels(task.dhp, n)
    if spec.needs_scores:
      loaded = scores_lib.load(lhp.scores, task.dhp, n, labels)
      scores, result.scores_file = loaded.scores, loaded.path
    result.indices = subsets.select(
        spec, n, labels=labels, scores=scores,
        class_balanced=lhp.class_balanced, seed=thp.seed)
  result.separate = (spec is not None or result.batch_size != thp.batch_size
                     or result.lr != thp.lr)
  return result


def train_data(task, p: PretrainPlan) -> Callable:
  """The pre-training data stream (subset, batch size, seed) for fit."""
  return task.train_data(p.seed, batch_size=p.batch_size, indices=p.indices)


def pretrain(model, task, p: PretrainPlan, *, eval_data=None,
             quiet: bool = False, ckpt=None
             ) -> Tuple[Dict[str, np.ndarray], dict]:
  """Trains ``model`` (as it is) steps 0..t on the plan's data.

  The lr schedule is the task's, on the task's clock (milestones in epochs
  of the full data), with the plan's peak lr. A second compiled model shares
  ``model``'s layers, so the weights end up in ``model``; it is used once per
  experiment. With ``ckpt`` (a ``training.checkpoint.MidRunCheckpoint``), a
  phase cut off resumes from its latest checkpoint. Returns (weights at t,
  record).
  """
  thp = task.thp.replace(batch_size=p.batch_size, lr=p.lr)
  with model.distribute_strategy.scope():
    optimizer = optimizers.build(thp, task.steps_per_epoch)
  epoch = max(1, math.ceil(p.num_examples / p.batch_size))
  train_model = training.compile_model(model, thp, epoch, optimizer=optimizer)
  training.set_seed(p.seed)
  resumed = ckpt.restore(train_model, 0) if ckpt is not None else None
  result = training.fit(train_model, train_data(task, p),
                        steps_per_epoch=epoch, start_step=resumed or 0,
                        end_step=p.steps,
                        callbacks=[ckpt] if ckpt is not None else [],
                        verbose=training.verbosity(quiet))
  record = {**p.to_dict(), "train_seconds": result.seconds,
            "ms_per_step": result.ms_per_step,
            "epochs_of_subset": p.steps / epoch}
  if eval_data is not None:
    began = time.time()
    record["metrics"] = training.evaluate(train_model, eval_data)
    record["eval_seconds"] = time.time() - began
  return snapshot(model), record
