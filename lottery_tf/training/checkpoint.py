"""Mid-run checkpoints: a killed run resumes inside a level, not at its start.

A level of ImageNet training is hours; ``--checkpoint_every=N`` saves the
model's variables (weights, BatchNorm statistics and the pruning masks) and
the optimizer (slots, iterations, loss scale) every N optimizer steps with a
``tf.train.CheckpointManager``. Rerunning the same command restores the
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
import shutil
from typing import Optional

from lottery_tf._keras import keras, tf

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
      ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
      self._manager = tf.train.CheckpointManager(
          ckpt, self.write_directory, max_to_keep=1)
    return self._manager

  def latest(self) -> Optional[str]:
    return tf.train.latest_checkpoint(self.directory)

  def restore(self, model) -> Optional[int]:
    """Restores the latest checkpoint into ``model``; its step, or None."""
    path = self.latest()
    if path is None:
      return None
    manager = self._manager_for(model)
    manager.checkpoint.restore(path).assert_existing_objects_matched()
    step = int(model.optimizer.iterations.numpy())
    self._last_saved = step
    return step

  def save(self) -> None:
    step = int(self.model.optimizer.iterations.numpy())
    if step == self._last_saved:
      return
    self._manager_for(self.model).save(checkpoint_number=step)
    self._last_saved = step

  def on_train_begin(self, logs=None):
    if self._last_saved is None:
      self._last_saved = int(self.model.optimizer.iterations.numpy())

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.optimizer.iterations.numpy())
    if self.every and step - self._last_saved >= self.every:
      self.save()

  def clear(self) -> None:
    """Deletes the checkpoints (the run's results are written)."""
    for d in {self.directory, self.write_directory}:
      shutil.rmtree(d, ignore_errors=True)
    self._manager = None


def directory_of(run_dir: str) -> str:
  return os.path.join(run_dir, CHECKPOINT_DIR)
