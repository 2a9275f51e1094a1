"""Pruning for lottery tickets: wrappers, a one-shot schedule, global masks.

    from lottery_tf import pruning
    model = pruning.wrap(model, layers_to_ignore=("logits",))  # masks all 1
    ... train with training.compile_model(model, ...) + training.fit ...
    masks = pruning.prune(model, pruning.PruningHparams())     # 20% global
    pruning.set_masks(model, masks)   # after rewinding the weights
    plain = pruning.strip(model)      # no wrappers, kernels * masks

Design (design.md): tfmot's ``PruneLowMagnitude`` wrappers own the mask
variables, but their schedule (:class:`OneShotSchedule`) never fires inside
training. Masks are computed between IMP rounds from the trained kernels by
:mod:`lottery_tf.pruning.masks` (global or layerwise magnitude pruning of the
still-alive weights; tfmot has no global pruning) and assigned with
:func:`set_masks`. ``training.TrainModel`` keeps pruned weights at exactly 0
during training, so the wrappers' forward pass does no masking and masked
training runs at dense speed. Every dict is keyed by the inner layer's name.
"""
from lottery_tf.pruning import masks
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.pruning.masks import (density, layer_densities, prune_global,
                                      prune_layerwise, random_masks)
from lottery_tf.pruning.model import (check_rates, densities, get_kernels,
                                      get_masks, prune, set_masks)
from lottery_tf.pruning.schedule import OneShotSchedule
from lottery_tf.pruning.wrap import (OneShotPruneLowMagnitude, candidate_layers,
                                     is_wrapper, prunable_layers, strip, wrap)

__all__ = [
    "OneShotPruneLowMagnitude", "OneShotSchedule", "PruningHparams",
    "candidate_layers", "check_rates", "densities", "density", "get_kernels",
    "get_masks", "is_wrapper", "layer_densities", "masks", "prunable_layers",
    "prune", "prune_global", "prune_layerwise", "random_masks", "set_masks",
    "strip", "wrap",
]
