"""Masks on a wrapped Keras model: read, assign, prune, measure.

All dicts are keyed by the inner layer's name (``"fc1"``).
"""
from typing import Dict, Iterable, Mapping, Optional, Union

import numpy as np

from lottery_tf._keras import keras
from lottery_tf.errors import UserError
from lottery_tf.pruning import masks as masks_lib
from lottery_tf.pruning.hparams import OUTPUT_LAYER
from lottery_tf.pruning.hparams import output_rate_error
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.pruning.wrap import wrappers
from lottery_tf.training.model import pruned_weights


def _pairs(model):
  """{layer: (kernel, mask)}: each wrapper prunes its one kernel."""
  return {name: pruned_weights(w)[0] for name, w in wrappers(model).items()}


def get_masks(model: keras.Model) -> Dict[str, np.ndarray]:
  """``{layer: float32 0/1 mask}`` of every wrapped layer ({} if none)."""
  return {name: mask.numpy() for name, (_, mask) in _pairs(model).items()}


def get_kernels(model: keras.Model) -> Dict[str, np.ndarray]:
  """``{layer: kernel}`` of every wrapped layer."""
  return {name: kernel.numpy() for name, (kernel, _) in _pairs(model).items()}


def set_masks(model: keras.Model, masks: Mapping[str, np.ndarray]) -> None:
  """Assigns every wrapped layer's mask and multiplies its kernel by it.

  ``masks`` must name exactly the wrapped layers. Multiplying the kernels is
  what makes the masks take effect: our wrappers do not mask in the forward
  pass (see ``OneShotPruneLowMagnitude``).

  Trap this fixes: ``model.set_weights(w)`` / ``load_weights`` also assign
  the wrappers' mask variables (tfmot exposes them as weights), so
  ``set_weights`` with weights taken before masking silently restores the
  old (e.g. all-ones) masks and dense kernels. Call ``set_masks`` after it.

  Raises:
    UserError naming the layer: unknown or missing layer, wrong shape, values
    other than 0/1.
  """
  pairs = _pairs(model)
  unknown = sorted(set(masks) - set(pairs))
  if unknown:
    raise UserError(f"masks name layer(s) {', '.join(map(repr, unknown))} "
                    f"that model {model.name!r} does not prune (it prunes: "
                    f"{', '.join(pairs) or 'nothing'})")
  missing = [n for n in pairs if n not in masks]
  if missing:
    raise UserError(f"no mask for pruned layer(s) "
                    f"{', '.join(map(repr, missing))} of model {model.name!r}")
  values = {}
  for name, (kernel, mask_var) in pairs.items():
    value = np.asarray(masks[name])
    if tuple(value.shape) != tuple(kernel.shape):
      raise UserError(f"mask for layer {name!r} has shape {tuple(value.shape)}"
                      f" but its kernel has shape {tuple(kernel.shape)}")
    if not np.all((value == 0) | (value == 1)):
      raise UserError(f"mask for layer {name!r} holds values other than 0 "
                      "and 1")
    values[name] = value.astype(mask_var.dtype.as_numpy_dtype)
  for name, (kernel, mask_var) in pairs.items():
    mask_var.assign(values[name])
    kernel.assign(kernel.numpy() * values[name].astype(
        kernel.dtype.as_numpy_dtype))


def densities(model: keras.Model) -> Dict[str, float]:
  """``{layer: density, ..., "overall": density over all pruned layers}``."""
  current = get_masks(model)
  out = masks_lib.layer_densities(current)
  out["overall"] = masks_lib.density(current)
  return out


def check_rates(model: keras.Model, hp: PruningHparams) -> None:
  """UserError naming the flags when a layer rate has no layer to act on.

  ``--output_layer_fraction`` is the classifier's (``logits``) rate only, so
  it needs ``logits`` pruned; ``--conv_layer_fraction`` needs a pruned conv
  layer. Called before training, so a run does not fail after its first
  level.
  """
  # Shapes only: works on a model built in a throwaway graph.
  ndims = {name: len(kernel.shape) for name, (kernel, _) in
           _pairs(model).items()}
  hp.check_output_rate(ndims, model.name)
  ignored = set(hp.ignored_layers())
  if hp.conv_fraction() is not None and not any(
      d >= 3 for n, d in ndims.items() if n not in ignored):
    extra = (f" (--layers_to_ignore={hp.layers_to_ignore})"
             if hp.layers_to_ignore else "")
    raise UserError(
        f"--conv_layer_fraction={hp.conv_layer_fraction}: model "
        f"{model.name!r} prunes no convolutional layer{extra}; drop the flag")


def prune(model: keras.Model,
          masks: Union[Mapping[str, np.ndarray], PruningHparams, str,
                       None] = None,
          hp: Union[PruningHparams, str, None] = None, *,
          strategy: Optional[str] = None, fraction: Optional[float] = None,
          output_layer: Optional[str] = None,
          output_fraction: Optional[float] = None,
          ignore: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
  """The next round's masks from the model's kernels; assigns nothing.

  Forms::

      prune(model, hp)                  # current masks, PruningHparams
      prune(model, masks, hp)           # the masks the model trained under
      prune(model, "global", fraction=0.2, output_fraction=0.1)

  ``hp`` (a :class:`PruningHparams`) gives strategy, fraction, the output
  layer's own rate and the ignored layers; keyword arguments override it.
  The output layer's own rate applies to ``output_layer`` (default
  ``logits``, the classifier) and nothing else: a rate for a layer that is
  not pruned is a UserError, never moved to another layer.
  ``masks`` defaults to the model's current masks.
  """
  if isinstance(masks, (PruningHparams, str)):
    masks, hp = None, masks
  if isinstance(hp, str):
    strategy = strategy or hp
    hp = None
  if hp is not None:
    strategy = strategy or hp.pruning_strategy
    fraction = hp.pruning_fraction if fraction is None else fraction
    if output_fraction is None:
      output_fraction = hp.output_fraction()
    if ignore is None:
      ignore = hp.ignored_layers()
  if strategy is None:
    strategy = "global"
  if fraction is None:
    raise UserError("--pruning_fraction: prune() needs a fraction")
  ignore = tuple(ignore or ())
  layer_names = {l.name for l in model.layers} | set(wrappers(model))
  unknown = [n for n in ignore if n not in layer_names]
  if unknown:
    raise UserError(f"--layers_to_ignore: model {model.name!r} has no layer "
                    f"named {', '.join(map(repr, unknown))}")
  kernels = get_kernels(model)
  current = get_masks(model) if masks is None else dict(masks)
  if hp is not None:
    check_rates(model, hp)
  if output_layer is None:
    output_layer = OUTPUT_LAYER
  if output_fraction is not None and (output_layer not in kernels
                                      or output_layer in ignore):
    why = (f"ignore={list(ignore)} leaves it unpruned"
           if output_layer in ignore else
           f"model {model.name!r} prunes no layer named {output_layer!r}")
    raise UserError(output_rate_error(output_fraction, output_layer, why))
  own_fractions = None
  if hp is not None and hp.conv_fraction() is not None:
    # Frankle & Carbin prune Conv-2/4/6's conv layers at their own rate.
    own_fractions = {n: hp.conv_fraction() for n, k in kernels.items()
                     if k.ndim >= 3 and n not in ignore}
  return masks_lib.get_strategy(strategy)(
      kernels, current, fraction, output_layer=output_layer,
      output_fraction=output_fraction,
      ignore=[n for n in ignore if n in kernels], own_fractions=own_fractions)
