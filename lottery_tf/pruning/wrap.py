"""Wrap a functional model's Conv/Dense layers in tfmot pruning wrappers, and back.

The wrappers are tfmot's ``PruneLowMagnitude`` (they own the ``mask``,
``threshold`` and ``pruning_step`` variables, ``strip_pruning`` and
``UpdatePruningStep`` recognise them, and ``training.TrainModel`` finds their
``pruning_vars``) in a subclass, :class:`OneShotPruneLowMagnitude`, whose
forward pass is just the inner layer's (see its ``call`` for why).

Masks, kernels and densities are keyed by the INNER layer's name everywhere
(``"fc1"``, not ``"prune_low_magnitude_fc1"``), so a wrapped and an unwrapped
model of the same architecture, a ticket and its transfer share keys.
"""
import inspect
from typing import Dict, Iterable, List, Optional

from lottery_tf._keras import keras
from lottery_tf.errors import UserError
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.pruning.schedule import OneShotSchedule
from lottery_tf.training.model import pruned_weights

from tensorflow_model_optimization.python.core.sparsity.keras import (
    prune_registry, pruning_wrapper)

#: Layer classes the wrapper prunes (exact classes, as tfmot's registry
#: matches them); each has exactly one prunable weight, its ``kernel``. Biases,
#: BatchNorm, depthwise kernels (which tfmot does not prune either) never are.
CONV_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
               keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
DENSE_LAYERS = (keras.layers.Dense,)


def is_wrapper(layer) -> bool:
  """True for tfmot's ``PruneLowMagnitude`` and our subclass of it."""
  return isinstance(layer, pruning_wrapper.PruneLowMagnitude)


@keras.utils.register_keras_serializable(package="lottery_tf")
class OneShotPruneLowMagnitude(pruning_wrapper.PruneLowMagnitude):
  """tfmot's ``PruneLowMagnitude`` with a fixed mask and a plain forward pass.

  The stock wrapper's ``call`` (on every forward pass) increments
  ``pruning_step``, runs a ``tf.cond`` on the schedule (a cross-replica
  ``merge_call`` under a distribution strategy) and assigns
  ``kernel = kernel * mask`` before the inner layer runs. That costs ~1.2x a
  dense step on CPU (design.md), and none of it is needed here:

  * the schedule is :class:`OneShotSchedule`, which never fires, so there is
    no mask update to condition on and no step to count;
  * ``training.TrainModel`` re-applies
    ``kernel *= mask`` right after every optimizer step, and
    :func:`lottery_tf.pruning.set_masks` multiplies the kernels when it
    assigns masks, so the kernels are already exactly sparse whenever a
    forward pass runs.

  So ``call`` only runs the inner layer, and masked training costs what dense
  training costs. The price: the invariant ``kernel == kernel * mask`` is
  kept by ``TrainModel`` and ``set_masks``, not by the forward pass. Training
  a wrapped model with a plain ``keras.Model.fit`` (not ``TrainModel``), or
  ``model.set_weights`` with dense kernels, breaks it; ``set_masks`` restores
  it.
  """

  def __init__(self, layer, pruning_schedule=None, **kwargs):
    if pruning_schedule is None:
      pruning_schedule = OneShotSchedule()
    if not isinstance(pruning_schedule, OneShotSchedule):
      # Our call never consults the schedule: any other would silently do
      # nothing. Use tfmot's own PruneLowMagnitude for in-training pruning.
      raise ValueError(
          f"{type(self).__name__} only takes a OneShotSchedule, got "
          f"{pruning_schedule!r}")
    super().__init__(layer, pruning_schedule=pruning_schedule, **kwargs)
    # tfmot names the wrapper after its class; keep tfmot's own prefix so the
    # variables are named as with the stock wrapper.
    self._name = f"prune_low_magnitude_{layer.name}"
    self._inner_takes_training = (
        "training" in inspect.getfullargspec(self.layer.call).args)

  def call(self, inputs, training=None, **kwargs):
    # Why no mask op here: see the class docstring.
    if self._inner_takes_training:
      return self.layer.call(inputs, training=training, **kwargs)
    return self.layer.call(inputs, **kwargs)


def _is_prunable(layer, prune_only: Optional[str]) -> bool:
  kinds = CONV_LAYERS if prune_only == "conv" else CONV_LAYERS + DENSE_LAYERS
  return (type(layer) in kinds  # pylint: disable=unidiomatic-typecheck
          and prune_registry.PruneRegistry.supports(layer))


def _check_prune_only(prune_only):
  """The library entry points take --prune_only's value as given: checked
  against PruningHparams' one declaration of it."""
  PruningHparams(prune_only=prune_only or "").check()


def _check_functional(model, what: str):
  if not isinstance(model, keras.Model) or not (
      getattr(model, "_is_graph_network", False)):
    raise UserError(f"{what}: needs a functional or Sequential Keras model "
                    f"(tfmot's strip_pruning supports no other), got "
                    f"{type(model).__name__}")
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      raise UserError(
          f"{what}: model {model.name!r} nests model {layer.name!r}; build "
          "it as one flat functional model (masks are keyed by layer name)")


def candidate_layers(model: keras.Model, prune_only: Optional[str] = None
                     ) -> List[str]:
  """Names of the layers :func:`wrap` would wrap (before ``layers_to_ignore``)."""
  _check_prune_only(prune_only)
  return [layer.name for layer in model.layers
          if _is_prunable(layer, prune_only or None)]


def wrappers(model: keras.Model) -> Dict[str, pruning_wrapper.PruneLowMagnitude]:
  """``{inner layer name: wrapper}`` in layer order."""
  out = {}
  for layer in model.layers:
    if is_wrapper(layer):
      name = layer.layer.name
      if name in out:
        raise UserError(f"two pruned layers are named {name!r} in model "
                        f"{model.name!r}")
      if len(pruned_weights(layer)) != 1:
        raise UserError(
            f"layer {name!r} has {len(pruned_weights(layer))} prunable "
            "weights; lottery_tf keys one mask per layer")
      out[name] = layer
  return out


def prunable_layers(model: keras.Model) -> List[str]:
  """Inner names of the wrapped (pruned) layers of ``model``, in layer order."""
  return list(wrappers(model))


def _copy_layer(layer):
  return layer.__class__.from_config(layer.get_config())


def wrap(model: keras.Model, *, layers_to_ignore: Iterable[str] = (),
         prune_only: Optional[str] = None) -> keras.Model:
  """A clone of ``model`` with its Conv/Dense layers in pruning wrappers.

  Args:
    model: a functional (or Sequential) ``keras.Model``, not yet wrapped.
    layers_to_ignore: names of layers left unwrapped (never pruned), e.g.
      ``("logits",)`` as open_lth does for LeNet and VGG.
    prune_only: ``"conv"`` wraps only convolutions (Mehta 2019 prunes the
      convolutional layers only); ``None``/``""`` wraps conv and dense layers.

  Returns:
    A new functional model with the same layer order, input/output names and
    weights; every mask is all ones. BatchNorm, pooling, normalisation and
    augmentation layers stay unwrapped.

  Raises:
    UserError: an unknown name in ``layers_to_ignore``, a bad ``prune_only``,
      a model that is not functional, nests models, or is already wrapped.
  """
  _check_prune_only(prune_only)
  _check_functional(model, "wrap")
  names = {layer.name for layer in model.layers}
  ignore = set(layers_to_ignore or ())
  unknown = sorted(ignore - names)
  if unknown:
    raise UserError(f"--layers_to_ignore: model {model.name!r} has no layer "
                    f"named {', '.join(map(repr, unknown))}")
  if any(is_wrapper(layer) for layer in model.layers):
    raise UserError(f"wrap: model {model.name!r} is already wrapped; "
                    "strip it first")
  to_wrap = set(candidate_layers(model, prune_only)) - ignore
  if not to_wrap:
    # IMP on it would write tickets at 100% density that look valid.
    why = ", ".join(f for f in (
        f"--prune_only={prune_only}" if prune_only else "",
        f"--layers_to_ignore={','.join(sorted(ignore))}" if ignore else "")
        if f) or "it has no conv or dense layer"
    raise UserError(f"{why}: model {model.name!r} has nothing left to prune")

  def clone(layer):
    if layer.name in to_wrap:
      return OneShotPruneLowMagnitude(_copy_layer(layer))
    return _copy_layer(layer)

  wrapped = keras.models.clone_model(model, clone_function=clone)
  by_name = {(l.layer.name if is_wrapper(l) else l.name): l
             for l in wrapped.layers}
  for layer in model.layers:
    if layer.weights:
      # A wrapper's set_weights sets its inner layer's weights, so masks,
      # thresholds and steps keep their fresh values (1, 0, -1).
      by_name[layer.name].set_weights(layer.get_weights())
  return wrapped


def strip(model: keras.Model) -> keras.Model:
  """A plain functional copy of ``model`` without wrappers, kernels masked.

  Layer names (the inner names), order and every other weight (biases,
  BatchNorm statistics) are those of ``model``; each pruned kernel is
  ``kernel * mask``. Unlike tfmot's ``strip_pruning``, which returns a model
  sharing the wrapped model's inner layers (and variables), the copy is
  independent: training or rewinding ``model`` afterwards leaves it alone.
  """
  _check_functional(model, "strip")

  def clone(layer):
    return _copy_layer(layer.layer if is_wrapper(layer) else layer)

  plain = keras.models.clone_model(model, clone_function=clone)
  by_name = {l.name: l for l in plain.layers}
  for layer in model.layers:
    if not layer.weights:
      continue
    if is_wrapper(layer):
      inner = layer.layer
      values = [v.numpy() for v in inner.weights]
      for weight, mask in pruned_weights(layer):
        i = next(i for i, v in enumerate(inner.weights) if v is weight)
        values[i] = values[i] * mask.numpy().astype(values[i].dtype)
      by_name[inner.name].set_weights(values)
    else:
      by_name[layer.name].set_weights(layer.get_weights())
  return plain
