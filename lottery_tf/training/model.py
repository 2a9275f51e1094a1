"""A functional Keras model whose train step keeps pruned weights at exactly 0.

tfmot's wrappers zero a kernel *before* each forward pass (``kernel *= mask``)
and leave gradients unmasked, so between steps, and after the last step unless
a callback re-masks, kernels are not sparse, and momentum/Adam keep pushing
pruned weights (design.md). Here the mask is applied right after each
optimizer update, fused into the same compiled step, so a pruned weight is
exactly 0 whenever anyone can look at it. Gradients are not masked: the
optimizer's update of a pruned weight is undone by the re-mask, and skipping
that extra pass keeps small models at dense speed (benchmarks/). A
global-norm gradient clipping added here would have to mask first.
Dense models (no wrappers) train through the same step.
"""
from typing import List, Tuple

from lottery_tf._keras import keras, tf

from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

_PruneLowMagnitude = pruning_wrapper.PruneLowMagnitude


def is_pruning_wrapper(layer) -> bool:
  return isinstance(layer, _PruneLowMagnitude)


def pruned_weights(wrapper) -> List[Tuple[tf.Variable, tf.Variable]]:
  """(kernel, mask) of each weight a tfmot wrapper prunes: the one place that
  knows where tfmot keeps a layer's mask (``pruning_vars``)."""
  if not wrapper.built:
    raise ValueError(f"pruning wrapper {wrapper.name} is not built")
  return [(w, m) for w, m, _ in wrapper.pruning_vars]


def pruning_state(wrapper) -> List[tf.Variable]:
  """A wrapper's own variables (masks, thresholds, its step): pruning's
  state, not the network's weights (never rewound or transferred)."""
  if not wrapper.built:
    raise ValueError(f"pruning wrapper {wrapper.name} is not built")
  out = [v for _, m, t in wrapper.pruning_vars for v in (m, t)]
  return out + [wrapper.pruning_step]


def _layers(model: keras.Model):
  """``model``'s layers, those of nested models (a stacked model's copies)
  in their place."""
  for layer in model.layers:
    if isinstance(layer, keras.Model) and not is_pruning_wrapper(layer):
      yield from _layers(layer)
    else:
      yield layer


def mask_pairs(model: keras.Model) -> List[Tuple[tf.Variable, tf.Variable]]:
  """(kernel, mask) for every weight a tfmot wrapper prunes, in layer order."""
  pairs = []
  for layer in _layers(model):
    if is_pruning_wrapper(layer):
      pairs.extend(pruned_weights(layer))
  return pairs


def kernels(model: keras.Model) -> List[tf.Variable]:
  """Conv/Dense kernels (wrapped or not): what ``--weight_decay_on=kernels``
  decays."""
  out = []
  for layer in _layers(model):
    inner = layer.layer if is_pruning_wrapper(layer) else layer
    for attr in ("kernel", "depthwise_kernel"):
      var = getattr(inner, attr, None)
      if isinstance(var, tf.Variable) and var.trainable:
        out.append(var)
  return out


class TrainModel(keras.Model):
  """Shares the layers of a functional model; trains it with masks enforced.

  Build it with ``TrainModel(inputs=m.inputs, outputs=m.outputs)``: the
  layers, and so the weights, are those of ``m``.
  """

  def __init__(self, *args, weight_decay: float = 0.0,
               weight_decay_on: str = "kernels", **kwargs):
    super().__init__(*args, **kwargs)
    if weight_decay_on not in ("kernels", "all"):
      raise ValueError(f"weight_decay_on: {weight_decay_on!r} is not one of: "
                       "kernels, all")
    self.weight_decay = float(weight_decay)
    self.weight_decay_on = weight_decay_on

  def decayed_variables(self) -> List[tf.Variable]:
    """What weight decay applies to: conv/dense kernels, or every trainable
    weight (PyTorch's ``SGD(model.parameters(), weight_decay=...)``)."""
    if not self.weight_decay:
      return []
    if self.weight_decay_on == "all":
      return list(self.trainable_variables)
    return kernels(self)

  def train_step(self, data):
    x, y = data[0], data[1]
    pairs = mask_pairs(self)
    decayed = {v.ref() for v in self.decayed_variables()}
    scaled = isinstance(self.optimizer, keras.mixed_precision.LossScaleOptimizer)
    with tf.GradientTape() as tape:
      y_pred = self(x, training=True)
      loss = self.compute_loss(x, y, y_pred)
      # mixed_float16: scale the loss so small float16 gradients survive.
      target = self.optimizer.get_scaled_loss(loss) if scaled else loss
    variables = self.trainable_variables
    grads = tape.gradient(target, variables)
    if scaled:
      grads = self.optimizer.get_unscaled_gradients(grads)
    new_grads = []
    for var, grad in zip(variables, grads):
      if grad is not None:
        if var.ref() in decayed:
          # Coupled L2, as PyTorch's SGD/Adam weight_decay.
          grad = grad + self.weight_decay * var
      new_grads.append(grad)
    self.optimizer.apply_gradients(zip(new_grads, variables))
    # Momentum and Adam move a weight even when its gradient is 0: re-mask.
    for weight, mask in pairs:
      weight.assign(weight * tf.cast(mask, weight.dtype))
    return self.compute_metrics(x, y, y_pred, None)


class StackedTrainModel(TrainModel):
  """K independent copies of a network trained side by side in one step.

  Built on ``K`` functional models (each with its own weights and masks):
  one input per data stream, K logits outputs, one loss per output (Keras
  sums them, so each copy's gradient is its own loss's), one optimizer whose
  per-variable state (momentum, Adam's moments) is per copy, and every copy
  re-masked after each update. Copy k sees the batches of stream
  ``streams[k]``: the copies of one stream the same batch, as the runs they
  replace, trained one after another on that stream, each did. With one
  stream a batch is ``(x, y)``; with several, ``((x0, x1, ..), (y0, y1,
  ..))``. Logs ``copyK_loss`` and ``copyK_accuracy`` per copy.
  """

  def __init__(self, *args, copies: int, streams=None, **kwargs):
    super().__init__(*args, **kwargs)
    self.copies = int(copies)
    self.streams = tuple(streams) if streams else None

  def _targets(self, y):
    if self.streams is None:
      return [y] * self.copies
    return [y[s] for s in self.streams]

  def train_step(self, data):
    x, y = data[0], data[1]
    return super().train_step((x, self._targets(y)))

  def test_step(self, data):
    x, y = data[0], data[1]
    return super().test_step((x, self._targets(y)))
