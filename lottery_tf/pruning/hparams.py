"""PruningHparams: how masks are computed between IMP rounds."""
import dataclasses
from typing import Iterable, Optional, Tuple

from lottery_tf.errors import UserError
from lottery_tf.foundations.hparams import CLASSIFIER, Hparams, field, split_list

#: The classifier, whose rate --output_layer_fraction is.
OUTPUT_LAYER = CLASSIFIER
#: The pruning strategies (pruning.masks.STRATEGIES implements them).
STRATEGIES = ("global", "layerwise")
#: --prune_only: everything prunable, or the convolutions only.
PRUNE_ONLY = ("", "conv")


def output_rate_error(rate: float, layer: str, why: str) -> str:
  """The one message for an output-layer rate with no pruned layer to use."""
  return (f"--output_layer_fraction={rate:g} is the rate of the classifier "
          f"{layer!r}, and {why}; drop one of the two")


@dataclasses.dataclass(frozen=True)
class PruningHparams(Hparams):
  group = "pruning"
  pruning_strategy: str = field(
      "global", choices=STRATEGIES, help="`global` (one magnitude threshold over all pruned layers; "
      "Morcos et al., needed for VGG/ResNet) or `layerwise` (each layer loses "
      "--pruning_fraction of its own remaining weights).")
  pruning_fraction: float = field(
      0.2, "Fraction p of the remaining weights removed per IMP round, in "
      "(0, 1) (Frankle & Carbin: 0.2). Exactly round(p*R) (halves up) of the "
      "R alive weights of the pruned pool go, smallest |w| first, ties broken "
      "by layer order then position; layers in --layers_to_ignore and layers "
      "at their own rate are not in R. (open_lth counts R over all prunable "
      "layers, ignored ones included, and removes ceil(p*R)+1 plus ties.)",
      interval="(0, 1)")
  output_layer_fraction: float = field(
      -1.0, "Rate for the classifier (the layer named `logits`) only, pruned "
      "on its own outside the global pool, in [0, 1) (Frankle & Carbin: 0.1); "
      "-1 prunes it like the other layers. Refused when `logits` is not "
      "pruned (--layers_to_ignore=logits, --prune_only=conv).",
      interval="[0, 1)", also=(-1.0,))
  conv_layer_fraction: float = field(
      -1.0, "Rate for every convolutional layer, each pruned on its own "
      "outside the global pool, in [0, 1) (Frankle & Carbin: 0.1 for Conv-2 "
      "and Conv-4, 0.15 for Conv-6); -1 prunes them like the other layers. "
      "Refused when no conv layer is pruned.", interval="[0, 1)",
      also=(-1.0,))
  layers_to_ignore: str = field(
      "", "Comma-separated names of layers never pruned (left unwrapped) and "
      "not counted in the pool --pruning_fraction applies to, e.g. `logits` "
      "(open_lth leaves it unpruned for LeNet and VGG, but counts it; see "
      "--pruning_fraction).", many=True)
  prune_only: str = field(
      "", choices=PRUNE_ONLY, help="`conv` prunes only convolutional layers (Mehta 2019); empty prunes "
      "convolutional and dense layers.")

  def ignored_layers(self) -> Tuple[str, ...]:
    """``layers_to_ignore`` as a tuple of names."""
    return tuple(split_list(self.layers_to_ignore))

  def output_fraction(self) -> Optional[float]:
    """The output layer's own rate, or None to prune it like the others."""
    return None if self.output_layer_fraction < 0 else self.output_layer_fraction

  def conv_fraction(self) -> Optional[float]:
    """The conv layers' own rate, or None to prune them like the others."""
    return None if self.conv_layer_fraction < 0 else self.conv_layer_fraction

  def check_output_rate(self, pruned: Optional[Iterable[str]] = None,
                        model_name: str = "") -> None:
    """UserError naming both flags when the classifier's rate has no layer.

    The rate of ``--output_layer_fraction`` is the classifier's (``logits``)
    only and is never moved to another layer. From the flags alone
    (``pruned`` None) or also from the layers a model prunes.
    """
    if self.output_fraction() is None:
      return
    ignored = self.ignored_layers()
    if OUTPUT_LAYER in ignored:
      why = f"--layers_to_ignore={self.layers_to_ignore} leaves it unpruned"
    elif self.prune_only:
      why = f"--prune_only={self.prune_only} leaves it unpruned"
    elif pruned is not None and OUTPUT_LAYER not in set(pruned):
      why = f"model {model_name!r} prunes no layer named {OUTPUT_LAYER!r}"
    else:
      return
    raise UserError(output_rate_error(self.output_layer_fraction,
                                      OUTPUT_LAYER, why))

  def validate(self) -> None:
    """Raises UserError naming the flag for an out-of-range value."""
    self.check()
    self.check_output_rate()
    parts = [s.strip() for s in self.layers_to_ignore.split(",")]
    if self.layers_to_ignore.strip() and not all(parts):
      raise UserError(f"--layers_to_ignore: {self.layers_to_ignore!r} has an "
                      "empty name; write comma-separated layer names")
