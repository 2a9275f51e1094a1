"""Lottery tickets for your own Keras model and ``fit`` loop.

    import lottery_tf as lt
    keras = lt.keras                      # Keras 2 (tf_keras): lt.keras.layers...

    model = lt.keras.wrap(my_functional_model)      # masks all ones
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), ...)
    lottery = lt.keras.LotteryCallback(rewind_step=100)
    for round in range(3):
        model.fit(x, y, epochs=2, callbacks=[lottery])
        lt.keras.prune(model, 0.2)                  # 20% of what is left
        lt.keras.rewind(model, lottery.snapshot)    # weights of step 100

The callback re-applies every mask right after each optimizer step, so a
pruned weight is exactly 0 whenever the next forward pass (or you) reads it,
whatever the optimizer (momentum and Adam's moments keep moving a weight
whose gradient is 0). It needs ``steps_per_execution=1`` (the default): with
several steps per call, Keras runs callbacks only once per call.

Every other attribute is Keras 2's (``lt.keras.layers.Dense`` is
``tf_keras.layers.Dense``), the Keras the pruning wrappers work with.
"""
import dataclasses
from typing import Dict, Iterable, Optional, Union

import numpy as np

from lottery_tf._keras import keras as _keras
from lottery_tf._keras import tf as _tf

__all__ = ["LotteryCallback", "Snapshot", "wrap", "prune", "rewind", "masks",
           "density"]


def __getattr__(name):
  # lt.keras.layers, lt.keras.Model, ...: Keras 2 itself.
  return getattr(_keras, name)


def __dir__():
  return sorted(set(globals()) | set(dir(_keras)))


@dataclasses.dataclass
class Snapshot:
  """The weights (not the masks) at optimizer step ``step``, by name
  (``layer/weight``, the inner layer's name)."""
  step: int
  weights: Dict[str, np.ndarray]


def wrap(model, *, layers_to_ignore: Iterable[str] = (),
         prune_only: Optional[str] = None):
  """A copy of the functional ``model`` (same weights) with its Conv and
  Dense layers in pruning wrappers, every mask all ones. Compile the copy.

  ``layers_to_ignore``: names never pruned; ``prune_only="conv"``: only the
  convolutions."""
  from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
  return pruning.wrap(model, layers_to_ignore=layers_to_ignore,
                      prune_only=prune_only)


def masks(model) -> Dict[str, np.ndarray]:
  """``{layer: 0/1 mask}`` of every pruned layer."""
  from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
  return pruning.get_masks(model)


def density(model) -> float:
  """The fraction of the prunable weights still alive."""
  from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
  return pruning.density(pruning.get_masks(model))


def _pairs(model):
  from lottery_tf.training.model import mask_pairs  # pylint: disable=g-import-not-at-top
  pairs = mask_pairs(model)
  if not pairs:
    raise ValueError(f"model {model.name!r} has no pruning wrappers; "
                     "pass it through lt.keras.wrap(model) first")
  return pairs


class LotteryCallback(_keras.callbacks.Callback):
  """Keeps pruned weights at exactly 0 and snapshots the rewind point.

  After every optimizer step (``on_train_batch_end``) every kernel is
  multiplied by its mask; the first time the optimizer's step count is
  ``rewind_step`` (0: before the first step) the weights are kept in
  :attr:`snapshot`, for :func:`rewind`. One callback serves every round.
  """

  def __init__(self, rewind_step: int = 0):
    super().__init__()
    if int(rewind_step) < 0:
      raise ValueError(f"rewind_step: must be >= 0, got {rewind_step}")
    self.rewind_step = int(rewind_step)
    self.snapshot: Optional[Snapshot] = None
    self._remask = None

  def _step(self) -> int:
    return int(self.model.optimizer.iterations.numpy())

  def _maybe_snapshot(self):
    if self.snapshot is None and self._step() == self.rewind_step:
      from lottery_tf.training.rewind import snapshot  # pylint: disable=g-import-not-at-top
      self.snapshot = Snapshot(self.rewind_step, snapshot(self.model))

  def on_train_begin(self, logs=None):
    per_call = getattr(self.model, "_steps_per_execution", None)
    if per_call is not None and int(per_call.numpy()) != 1:
      raise ValueError(
          f"LotteryCallback: model {self.model.name!r} is compiled with "
          f"steps_per_execution={int(per_call.numpy())}; callbacks then run "
          "once per call, not after every step: compile with "
          "steps_per_execution=1")
    pairs = _pairs(self.model)

    @_tf.function
    def remask():
      for kernel, mask in pairs:
        kernel.assign(kernel * _tf.cast(mask, kernel.dtype))

    self._remask = remask
    remask()
    if (self.snapshot is None and self.rewind_step > 0
        and self._step() > self.rewind_step):
      raise ValueError(
          f"LotteryCallback: the optimizer is at step {self._step()}, past "
          f"rewind_step={self.rewind_step}; the rewind point is never seen")
    self._maybe_snapshot()

  def on_train_batch_end(self, batch, logs=None):
    self._remask()
    self._maybe_snapshot()


def prune(model, fraction: float = 0.2, strategy: str = "global", *,
          output_fraction: Optional[float] = None,
          ignore: Iterable[str] = ()) -> Dict[str, np.ndarray]:
  """Removes ``fraction`` of the weights still alive, by magnitude, and
  applies the new masks (pruned kernels set to 0); returns them.

  ``strategy``: ``"global"`` (one threshold over every pruned layer) or
  ``"layerwise"``; ``output_fraction``: the classifier's (``logits``) own
  rate, outside the global pool; ``ignore``: layers left as they are. The
  same rule as ``lottery_tf find`` (--pruning_fraction, --pruning_strategy,
  --output_layer_fraction)."""
  from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
  if not 0 < float(fraction) < 1:
    raise ValueError(f"fraction: must be in (0, 1), got {fraction}")
  _pairs(model)
  new = pruning.prune(model, strategy=strategy, fraction=float(fraction),
                      output_fraction=output_fraction, ignore=tuple(ignore))
  pruning.set_masks(model, new)
  return new


def rewind(model, snapshot: Union[Snapshot, Dict[str, np.ndarray]], *,
           reset_optimizer: bool = True) -> None:
  """Sets the weights back to ``snapshot`` under the current masks
  (kernel = w_k * mask) and, with ``reset_optimizer``, gives the model's
  optimizer a fresh start at the snapshot's step: momentum and Adam's
  moments zeroed, ``iterations`` at the step (so an lr schedule resumes
  where the rewind point was taken, as late resetting does)."""
  from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
  from lottery_tf.training import optimizers  # pylint: disable=g-import-not-at-top
  from lottery_tf.training.rewind import load_weights  # pylint: disable=g-import-not-at-top
  if snapshot is None:
    raise ValueError("rewind: no snapshot (the callback has not reached its "
                     "rewind_step yet)")
  step, weights = ((snapshot.step, snapshot.weights)
                   if isinstance(snapshot, Snapshot) else (0, snapshot))
  _pairs(model)
  current = pruning.get_masks(model)
  load_weights(model, weights)
  pruning.set_masks(model, current)
  optimizer = getattr(model, "optimizer", None)
  if reset_optimizer and optimizer is not None:
    # The user's own lr schedule reads ``iterations``: at the step, it
    # resumes there (lottery_tf's runs shift their schedule instead:
    # optimizers.start_run).
    optimizers.zero_state(optimizer)
    optimizer.iterations.assign(step)
