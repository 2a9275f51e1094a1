"""The rewind callback: late resetting (Frankle et al. 2019) as a Keras callback.

During the dense run it snapshots every weight of the model at iteration k
(kernels, biases and BatchNorm's moving statistics alike; never the pruning
masks, thresholds or steps). At the start of each later level ``restore``
puts the snapshot back under the level's masks and makes the optimizer a
fresh one (slots and its own step count at 0, as PyTorch and open_lth do)
whose lr schedule resumes at step k (``optimizers.start_run``).

A naive ``model.set_weights(snapshot)`` would also overwrite the masks
(tfmot's wrappers expose them as weights): ``restore`` never touches them.
"""
from typing import Dict, Optional

import numpy as np

from lottery_tf.foundations import store
from lottery_tf._keras import keras, tf
from lottery_tf.training import optimizers
from lottery_tf.training.model import is_pruning_wrapper, pruning_state


def named_weights(model: keras.Model) -> Dict[str, tf.Variable]:
  """Every weight except tfmot's pruning variables, keyed ``layer/weight``.

  Keys use the inner layer's name, so a wrapped and an unwrapped model of the
  same architecture have the same keys.
  """
  out = {}
  for layer in model.layers:
    inner = layer.layer if is_pruning_wrapper(layer) else layer
    state = ({id(v) for v in pruning_state(layer)}
             if is_pruning_wrapper(layer) else set())
    for var in layer.weights:
      if id(var) in state:
        continue
      short = var.name.split("/")[-1].split(":")[0]
      key = f"{inner.name}/{short}"
      if key in out:
        raise ValueError(f"two weights named {key} in {model.name}")
      out[key] = var
  return out


def snapshot(model: keras.Model) -> Dict[str, np.ndarray]:
  return {k: v.numpy() for k, v in named_weights(model).items()}


def load_weights(model: keras.Model, weights: Dict[str, np.ndarray],
                 skip=()) -> None:
  """Assigns a snapshot by name; every weight not in ``skip`` must be there."""
  for key, var in named_weights(model).items():
    if key.split("/")[0] in skip:
      continue
    if key not in weights:
      raise KeyError(f"snapshot has no weight {key}")
    value = weights[key]
    if tuple(value.shape) != tuple(var.shape):
      raise ValueError(f"weight {key}: snapshot shape {value.shape} != model "
                       f"shape {tuple(var.shape)}")
    var.assign(value)


class RewindCallback(keras.callbacks.Callback):
  """Snapshots the weights at iteration ``rewind_step`` of the dense run."""

  def __init__(self, rewind_step: int, path: Optional[str] = None):
    super().__init__()
    self.rewind_step = int(rewind_step)
    self.path = path
    self.weights: Optional[Dict[str, np.ndarray]] = None

  def _maybe_take(self):
    if self.weights is None and optimizers.global_step(
        self.model.optimizer) == self.rewind_step:
      self.weights = snapshot(self.model)
      if self.path:
        store.write_npz(self.path, self.weights)

  def on_train_begin(self, logs=None):
    self._maybe_take()

  def on_train_batch_end(self, batch, logs=None):
    self._maybe_take()

  @classmethod
  def from_file(cls, rewind_step: int, path: str) -> "RewindCallback":
    cb = cls(rewind_step, path)
    cb.weights = store.read_npz(path)
    return cb

  def restore(self, model: keras.Model, masks=None, optimizer=None,
              skip=()) -> None:
    """Rewinds ``model`` to the snapshot under ``masks`` (kernel = w_k * m)."""
    from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
    if self.weights is None:
      raise RuntimeError("no rewind snapshot has been taken")
    load_weights(model, self.weights, skip=skip)
    if masks is not None:
      pruning.set_masks(model, masks)
    if optimizer is not None:
      optimizers.start_run(optimizer, self.rewind_step)
