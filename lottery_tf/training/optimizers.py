"""Optimizers and learning-rate schedules built from TrainingHparams.

A run that starts at step k > 0 (an IMP level rewound to k, its controls, an
LMC copy, level 0 after a data-diet pre-training) gets a *fresh* optimizer
and only the lr schedule continues at k, as in PyTorch and open_lth: the
optimizer's own ``iterations`` count its steps from 0 (Adam's bias
correction reads them: an Adam whose ``iterations`` were set to k would take
first steps 2-4x too large), and :class:`LotterySchedule` adds the run's
``start_step`` to them. :func:`start_run` sets both; :func:`global_step` is
the step on the run's clock, ``start_step + iterations``.
"""
from typing import Sequence

from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.training import durations


@keras.utils.register_keras_serializable(package="lottery_tf")
class LotterySchedule(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up from 0 to ``lr``, then multiply by ``gamma`` at each milestone.

  Evaluated at ``start_step + step``: ``step`` is the optimizer's own
  iteration count, ``start_step`` (a variable, so compiled train steps need
  no retracing) the step the run started at.
  """

  def __init__(self, lr: float, warmup_steps: int = 0,
               milestones: Sequence[int] = (), gamma: float = 0.1):
    self.lr = float(lr)
    self.warmup_steps = int(warmup_steps)
    self.milestones = [int(m) for m in milestones]
    self.gamma = float(gamma)
    # Created where the optimizer is (under the strategy's scope).
    self.start_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                  name="schedule_start_step")

  def __call__(self, step):
    step = tf.cast(tf.cast(step, tf.int64) + self.start_step, tf.float32)
    lr = tf.constant(self.lr, tf.float32)
    for milestone in self.milestones:
      lr = tf.where(step >= milestone, lr * self.gamma, lr)
    if self.warmup_steps > 0:
      lr = lr * tf.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
    return lr

  def get_config(self):
    return {"lr": self.lr, "warmup_steps": self.warmup_steps,
            "milestones": list(self.milestones), "gamma": self.gamma}


def _inner(optimizer):
  # mixed_float16 wraps the optimizer in a LossScaleOptimizer.
  return getattr(optimizer, "inner_optimizer", optimizer)


def schedule_of(optimizer) -> LotterySchedule:
  schedule = getattr(_inner(optimizer), "_learning_rate", None)
  if not isinstance(schedule, LotterySchedule):
    raise TypeError(f"optimizer {optimizer.name!r} has no LotterySchedule; "
                    "build it with lottery_tf.training.optimizers.build")
  return schedule


def global_step(optimizer) -> int:
  """The step on the run's clock: its start step plus the steps taken."""
  return int(schedule_of(optimizer).start_step.numpy()) + int(
      optimizer.iterations.numpy())


def zero_state(optimizer) -> None:
  """Gives any Keras 2 optimizer the state of a newly built one: slots
  (momentum, Adam's moments) and ``iterations`` zeroed; a
  LossScaleOptimizer (mixed_float16) also gets its initial loss scale
  back."""
  variables = optimizer.variables
  for var in (variables() if callable(variables) else variables):
    var.assign(tf.zeros_like(var))
  state = getattr(optimizer, "_loss_scale", None)
  if hasattr(state, "initial_loss_scale"):
    state._current_loss_scale.assign(state.initial_loss_scale)  # pylint: disable=protected-access
    state._counter.assign(0)  # pylint: disable=protected-access


def start_run(optimizer, step: int) -> None:
  """Makes ``optimizer`` a fresh one whose lr schedule starts at ``step``.

  :func:`zero_state` (its own ``iterations`` at 0, as a newly built
  optimizer), then the schedule's ``start_step`` at ``step``.
  """
  zero_state(optimizer)
  schedule = schedule_of(optimizer)
  schedule.start_step.assign(int(step))
  inner = _inner(optimizer)
  if hasattr(inner, "_current_learning_rate"):
    # What ``optimizer.learning_rate`` reports before the first update.
    inner._current_learning_rate.assign(  # pylint: disable=protected-access
        schedule(inner.iterations))


def validate(hp: TrainingHparams) -> None:
  """Raises UserError naming the flag for out-of-range training hparams.

  The fields' declared choices and intervals first (hparams.field), then
  what spans fields.
  """
  hp.check()
  if hp.steps_per_execution > durations.MAX_VALUE:
    raise UserError(f"--steps_per_execution: {hp.steps_per_execution} is "
                    f"more than {durations.MAX_VALUE:,}")
  if hp.nesterov and (hp.optimizer != "sgd" or hp.momentum == 0):
    raise UserError("--nesterov: needs --optimizer=sgd and --momentum > 0")
  if hp.lr_schedule == "step" and not hp.milestones.strip():
    raise UserError("--milestones: the step schedule needs at least one")
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
  """A fresh tf_keras optimizer (iterations = 0, no slots yet).

  Build it under the strategy scope the model trains in.
  """
  validate(hp)
  schedule = lr_schedule(hp, steps_per_epoch)
  if hp.optimizer == "sgd":
    return keras.optimizers.SGD(
        learning_rate=schedule, momentum=hp.momentum, nesterov=hp.nesterov)
  return keras.optimizers.Adam(learning_rate=schedule)
