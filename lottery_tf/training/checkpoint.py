"""Mid-run checkpoints: a killed run resumes inside a level, not at its start.

A level of ImageNet training is hours; ``--checkpoint_every=N`` saves the
model's variables (weights, BatchNorm statistics and the pruning masks),
the optimizer (slots, its own step count, loss scale) and the step the run
started at (its lr schedule's ``start_step``) every N optimizer steps with a
``tf.train.CheckpointManager``; restoring puts the optimizer's step count
back as it was, not reset. Rerunning the same command restores the
latest checkpoint of the run that was cut off and trains on from its step;
the data stream is keyed by the step (``data.load(start_batch=...)``), so
the resumed run sees the same batches and ends with the same numbers as an
uninterrupted one. The checkpoint is deleted once the run's results are
written.

Under MultiWorkerMirroredStrategy every worker saves (saving reads
synchronised variables, a collective), the chief into the run's directory and
the others into a scratch directory they delete; every worker restores from
the chief's.
"""
import os
from typing import Optional

from lottery_tf.foundations import fs
from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.training import optimizers

CHECKPOINT_DIR = "checkpoint"


class MidRunCheckpoint(keras.callbacks.Callback):
  """Saves every ``every`` steps; :meth:`restore` puts the latest back."""

  def __init__(self, directory: str, every: int, *,
               write_directory: Optional[str] = None):
    super().__init__()
    self.directory = directory
    self.write_directory = write_directory or directory
    self.every = int(every)
    self._manager = None
    self._last_saved = None

  def _manager_for(self, model) -> tf.train.CheckpointManager:
    if self._manager is None:
      ckpt = tf.train.Checkpoint(
          model=model, optimizer=model.optimizer,
          start_step=optimizers.schedule_of(model.optimizer).start_step)
      self._manager = tf.train.CheckpointManager(
          ckpt, self.write_directory, max_to_keep=1)
    return self._manager

  def latest(self) -> Optional[str]:
    return tf.train.latest_checkpoint(self.directory)

  def restore(self, model, start_step: Optional[int] = None) -> Optional[int]:
    """Restores the latest checkpoint into ``model``; its step, or None.

    ``start_step``: the step the run starts at; a checkpoint of a run that
    started elsewhere, or that does not fit the model, is refused with a
    UserError naming the directory to delete.
    """
    path = self.latest()
    if path is None:
      return None
    manager = self._manager_for(model)
    # The optimizer's slots (momentum, Adam moments) exist only after its
    # first update; restored before that, they stay a pending restore that
    # reads the checkpoint files when they are created, which may be a later
    # run's first step, after this run deleted its checkpoint (a run cut
    # right after its last checkpoint trains 0 steps here). Build them now,
    # so everything is restored at once.
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    if hasattr(inner, "build"):
      with model.distribute_strategy.scope():
        inner.build(model.trainable_variables)
    try:
      manager.checkpoint.restore(path).assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
      # E.g. written before the optimizer's step count and the schedule's
      # start were saved apart (lottery_tf < 0.2), or for another model.
      raise UserError(
          f"checkpoint {path} does not fit this run ({str(e).splitlines()[0]});"
          f" delete {self.directory} to train the run from its start") from None
    begun = int(optimizers.schedule_of(model.optimizer).start_step.numpy())
    if start_step is not None and begun != int(start_step):
      raise UserError(
          f"checkpoint {path} is of a run that started at step {begun}, not "
          f"{start_step}; delete {self.directory} to train the run from its "
          "start")
    step = optimizers.global_step(model.optimizer)
    self._last_saved = step
    return step

  def save(self) -> None:
    step = optimizers.global_step(self.model.optimizer)
    if step == self._last_saved:
      return
    self._manager_for(self.model).save(checkpoint_number=step)
    self._last_saved = step

  def on_train_begin(self, logs=None):
    if self._last_saved is None:
      self._last_saved = optimizers.global_step(self.model.optimizer)

  def on_train_batch_end(self, batch, logs=None):
    step = optimizers.global_step(self.model.optimizer)
    if self.every and step - self._last_saved >= self.every:
      self.save()

  def clear(self) -> None:
    """Deletes the checkpoints (the run's results are written)."""
    for d in {self.directory, self.write_directory}:
      fs.rmtree(d)
    self._manager = None


def directory_of(run_dir: str) -> str:
  return os.path.join(run_dir, CHECKPOINT_DIR)
