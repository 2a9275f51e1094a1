"""Optimizers and learning-rate schedules built from TrainingHparams.

The lr schedule is a function of the optimizer's ``iterations``, so a rewind
that sets ``iterations = k`` resumes the schedule at step k for free.
"""
from typing import Sequence

from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.hparams import TrainingHparams
from lottery_tf.training import durations


@keras.utils.register_keras_serializable(package="lottery_tf")
class LotterySchedule(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up from 0 to ``lr``, then multiply by ``gamma`` at each milestone."""

  def __init__(self, lr: float, warmup_steps: int = 0,
               milestones: Sequence[int] = (), gamma: float = 0.1):
    self.lr = float(lr)
    self.warmup_steps = int(warmup_steps)
    self.milestones = [int(m) for m in milestones]
    self.gamma = float(gamma)

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    lr = tf.constant(self.lr, tf.float32)
    for milestone in self.milestones:
      lr = tf.where(step >= milestone, lr * self.gamma, lr)
    if self.warmup_steps > 0:
      lr = lr * tf.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
    return lr

  def get_config(self):
    return {"lr": self.lr, "warmup_steps": self.warmup_steps,
            "milestones": list(self.milestones), "gamma": self.gamma}


def validate(hp: TrainingHparams) -> None:
  """Raises UserError naming the flag for out-of-range training hparams."""
  if hp.optimizer not in ("sgd", "adam"):
    raise UserError(f"--optimizer: {hp.optimizer!r} is not one of: sgd, adam")
  if not hp.lr > 0:
    raise UserError(f"--lr: must be > 0, got {hp.lr}")
  if not 0 <= hp.momentum < 1:
    raise UserError(f"--momentum: must be in [0, 1), got {hp.momentum}")
  if hp.nesterov and (hp.optimizer != "sgd" or hp.momentum == 0):
    raise UserError("--nesterov: needs --optimizer=sgd and --momentum > 0")
  if hp.weight_decay < 0:
    raise UserError(f"--weight_decay: must be >= 0, got {hp.weight_decay}")
  if hp.batch_size < 1:
    raise UserError(f"--batch_size: must be >= 1, got {hp.batch_size}")
  if hp.lr_schedule not in ("constant", "step"):
    raise UserError(
        f"--lr_schedule: {hp.lr_schedule!r} is not one of: constant, step")
  if hp.lr_schedule == "step" and not hp.milestones.strip():
    raise UserError("--milestones: the step schedule needs at least one")
  if not 0 < hp.gamma <= 1:
    raise UserError(f"--gamma: must be in (0, 1], got {hp.gamma}")
  if not 0 <= hp.label_smoothing < 1:
    raise UserError(
        f"--label_smoothing: must be in [0, 1), got {hp.label_smoothing}")
  if hp.steps_per_execution < 0:
    raise UserError(
        f"--steps_per_execution: must be >= 0, got {hp.steps_per_execution}")
  if durations.parse(hp.training_steps).value < 1:
    raise UserError("--training_steps: must be at least 1 iteration")
  durations.parse(hp.warmup_steps, "--warmup_steps")
  durations.parse_list(hp.milestones, "--milestones")


def lr_schedule(hp: TrainingHparams, steps_per_epoch: int) -> LotterySchedule:
  milestones = []
  if hp.lr_schedule == "step":
    milestones = [d.to_steps(steps_per_epoch)
                  for d in durations.parse_list(hp.milestones, "--milestones")]
  warmup = durations.parse(hp.warmup_steps, "--warmup_steps")
  return LotterySchedule(hp.lr, warmup.to_steps(steps_per_epoch),
                         sorted(milestones), hp.gamma)


def build(hp: TrainingHparams, steps_per_epoch: int):
  """A fresh tf_keras optimizer (iterations = 0, no slots yet)."""
  validate(hp)
  schedule = lr_schedule(hp, steps_per_epoch)
  if hp.optimizer == "sgd":
    return keras.optimizers.SGD(
        learning_rate=schedule, momentum=hp.momentum, nesterov=hp.nesterov)
  return keras.optimizers.Adam(learning_rate=schedule)
