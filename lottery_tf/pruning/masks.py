"""Mask computation between IMP rounds: pure NumPy on ``{layer name: array}``.

A mask is an array of 0/1 (float32 here; any dtype is read as ``!= 0``) of its
kernel's shape; 1 = the weight is alive. Every function returns new float32
masks and never modifies its arguments.

Pruning removes p of the *remaining* weights (Frankle & Carbin 2019), chosen
by smallest |w| among the still-alive entries only: already-pruned entries
never count, so masks are nested round to round and after r rounds the
density is (1-p)^r up to rounding (each round rounds to the nearest
weight, so after r rounds a count is within 0.5 * sum_{i<r} (1-p)^i < 0.5/p
weights of N(1-p)^r: at most 2.5 weights for p = 0.2). Exactly ``round(p * remaining)`` entries
are removed (round half up): ties at the threshold are broken by position
(layer order, then flat index), never by removing every tied entry, and a
mask only ever loses ones - it can neither regain ones (tfmot's top-k has
reset masks to all ones on ties) nor go below zero remaining. The threshold
comes from ``np.partition`` over one float32 array of the alive magnitudes
(linear time), so global pruning over ResNet-50's 25.6M weights takes well
under a second.
"""
import math
import zlib
from typing import Callable, Dict, Iterable, Mapping, Optional

import numpy as np

from lottery_tf.errors import UserError

Masks = Dict[str, np.ndarray]


def _round_half_up(x: float) -> int:
  return int(math.floor(x + 0.5))


def count_to_remove(fraction: float, remaining: int) -> int:
  """``round(fraction * remaining)`` (half up), within [0, remaining]."""
  return min(int(remaining), max(0, _round_half_up(fraction * remaining)))


def _check_fraction(fraction, name: str) -> float:
  fraction = float(fraction)
  if not 0.0 <= fraction <= 1.0 or math.isnan(fraction):
    raise UserError(f"{name}: must be in [0, 1], got {fraction}")
  return fraction


def _check(weights: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]):
  if set(weights) != set(masks):
    missing = sorted(set(masks) - set(weights))
    extra = sorted(set(weights) - set(masks))
    raise UserError(f"weights and masks name different layers (no weights for "
                    f"{missing}, no masks for {extra})")
  for name in masks:
    if np.shape(weights[name]) != np.shape(masks[name]):
      raise UserError(f"layer {name!r}: weights of shape "
                      f"{np.shape(weights[name])} but mask of shape "
                      f"{np.shape(masks[name])}")


def _alive(mask) -> np.ndarray:
  return np.asarray(mask).reshape(-1) != 0


def _flat32(weight) -> np.ndarray:
  return np.asarray(weight, dtype=np.float32).reshape(-1)


def _dense_mask(mask) -> np.ndarray:
  return _alive(mask).astype(np.float32).reshape(np.shape(mask))


def _threshold(names, weights, masks, k: int):
  """(t, n_ties) such that removing every alive |w| < t, plus the first
  ``n_ties`` alive |w| == t in (layer, flat index) order, removes exactly k.

  The alive magnitudes of all layers go into ONE float32 scratch buffer that
  is partitioned in place (linear time, no sort); the layers' own arrays are
  not copied beyond that, which matters on ResNet-50 where every 100 MB of
  freshly touched memory costs noticeable time.
  """
  counts = [int(np.count_nonzero(masks[n])) for n in names]
  buf = np.empty(sum(counts), dtype=np.float32)
  offset = 0
  for name, count in zip(names, counts):
    view = buf[offset:offset + count]
    flat, alive = _flat32(weights[name]), _alive(masks[name])
    if count == flat.size:
      np.abs(flat, out=view)
    else:
      np.compress(alive, flat, out=view)
      np.abs(view, out=view)
    # One float64 sum instead of an isfinite temporary of every entry.
    if not np.isfinite(np.sum(view, dtype=np.float64)):
      raise UserError(f"layer {name!r}: weights are NaN or infinite (training "
                      "diverged); lower --lr")
    offset += count
  buf.partition(k - 1)
  t = buf[k - 1]
  # Partitioned: every entry < t is among the first k - 1.
  return t, k - int(np.count_nonzero(buf[:k - 1] < t))


def _apply(weight, mask, t, n_ties: int):
  """(new float32 mask, ties taken): alive entries with |w| < t go, and the
  first ``n_ties`` alive entries with |w| == t."""
  alive = _alive(mask)
  mags = np.abs(_flat32(weight))
  keep = mags >= t
  keep &= alive
  taken = 0
  if n_ties > 0:
    ties = np.flatnonzero((mags == t) & alive)[:n_ties]
    keep[ties] = False
    taken = len(ties)
  return keep.astype(np.float32).reshape(np.shape(mask)), taken


def _prune_one(name, weight, mask, fraction: float) -> np.ndarray:
  k = count_to_remove(fraction, int(np.count_nonzero(mask)))
  if k == 0:
    return _dense_mask(mask)
  t, n_ties = _threshold([name], {name: weight}, {name: mask}, k)
  return _apply(weight, mask, t, n_ties)[0]


def _split(masks, output_layer, output_fraction, ignore, own_fractions=None):
  """(layers pruned at ``fraction``, {layer: its own fraction})."""
  ignore = set(ignore or ())
  own = {}
  for name, frac in (own_fractions or {}).items():
    if name not in masks:
      raise UserError(f"--conv_layer_fraction: no prunable layer named {name!r}")
    if name not in ignore:
      own[name] = _check_fraction(frac, "--conv_layer_fraction")
  if output_fraction is not None:
    output_fraction = _check_fraction(output_fraction, "--output_layer_fraction")
    if output_layer is None:
      raise UserError("--output_layer_fraction: no output layer was named")
    if output_layer not in masks and output_layer not in ignore:
      raise UserError(f"--output_layer_fraction: no prunable layer named "
                      f"{output_layer!r}")
    if output_layer in masks and output_layer not in ignore:
      own[output_layer] = output_fraction
  pool = [n for n in masks if n not in ignore and n not in own]
  return pool, own


def prune_global(weights: Mapping[str, np.ndarray],
                 masks: Mapping[str, np.ndarray], fraction: float, *,
                 output_layer: Optional[str] = None,
                 output_fraction: Optional[float] = None,
                 ignore: Iterable[str] = (),
                 own_fractions: Optional[Mapping[str, float]] = None) -> Masks:
  """One magnitude threshold across all layers' alive entries.

  Removes exactly ``round(fraction * R)`` of the R alive entries of the
  pooled layers, the smallest |w| (ties: earlier layer in ``masks`` order,
  then lower flat index). With ``output_fraction``, ``output_layer`` is pruned
  on its own at that rate, outside the pool (Frankle & Carbin prune the
  output layer at 10%); so is each layer of ``own_fractions`` at its rate.
  Layers in ``ignore`` keep their masks.
  """
  _check(weights, masks)
  fraction = _check_fraction(fraction, "--pruning_fraction")
  pool, own = _split(masks, output_layer, output_fraction, ignore,
                     own_fractions)
  out = {n: None for n in masks}  # Keeps the input's layer order.
  for name, frac in own.items():
    out[name] = _prune_one(name, weights[name], masks[name], frac)
  remaining = sum(int(np.count_nonzero(masks[n])) for n in pool)
  k = count_to_remove(fraction, remaining)
  if k:
    t, n_ties = _threshold(pool, weights, masks, k)
    for name in pool:
      out[name], taken = _apply(weights[name], masks[name], t, n_ties)
      n_ties -= taken
  for name, mask in masks.items():
    if out[name] is None:
      out[name] = _dense_mask(mask)
  return out


def prune_layerwise(weights: Mapping[str, np.ndarray],
                    masks: Mapping[str, np.ndarray], fraction: float, *,
                    output_layer: Optional[str] = None,
                    output_fraction: Optional[float] = None,
                    ignore: Iterable[str] = (),
                    own_fractions: Optional[Mapping[str, float]] = None
                    ) -> Masks:
  """Each layer loses ``round(fraction * its remaining)`` smallest |w|.

  ``output_layer`` at ``output_fraction`` and the layers of
  ``own_fractions`` at theirs, if given; ``ignore`` keeps masks.
  """
  _check(weights, masks)
  fraction = _check_fraction(fraction, "--pruning_fraction")
  pool, own = _split(masks, output_layer, output_fraction, ignore,
                     own_fractions)
  rates = {**{n: fraction for n in pool}, **own}
  return {n: (_prune_one(n, weights[n], m, rates[n]) if n in rates
              else _dense_mask(m))
          for n, m in masks.items()}


#: ``--pruning_strategy`` -> function; a new strategy is one function + one
#: line here (same signature as :func:`prune_global`).
STRATEGIES: Dict[str, Callable[..., Masks]] = {
    "global": prune_global,
    "layerwise": prune_layerwise,
}


def get_strategy(name: str) -> Callable[..., Masks]:
  try:
    return STRATEGIES[name]
  except (KeyError, TypeError):
    raise UserError(f"--pruning_strategy: {name!r} is not one of: "
                    f"{', '.join(STRATEGIES)}") from None


def _layer_rng(seed: int, name: str) -> np.random.Generator:
  # Seeded per layer by name, so a layer's mask does not depend on which
  # other layers are in the dict or their order.
  return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def _random_keep(keys: np.ndarray, n: int) -> np.ndarray:
  """Bool array with exactly n Trues: the n smallest random keys."""
  if n >= keys.size:
    return np.ones(keys.size, dtype=bool)
  if n <= 0:
    return np.zeros(keys.size, dtype=bool)
  scratch = keys.copy()
  scratch.partition(n - 1)
  t = scratch[n - 1]
  n_ties = n - int(np.count_nonzero(scratch[:n - 1] < t))
  keep = keys < t
  keep[np.flatnonzero(keys == t)[:n_ties]] = True
  return keep


def random_masks(masks: Mapping[str, np.ndarray], seed: int, *,
                 per_layer: bool = True) -> Masks:
  """Random masks with exactly the same number of ones as ``masks``.

  ``per_layer=True`` (default): each layer keeps its own count (same
  per-layer density, the random-pruning control of Frankle & Carbin and
  Morcos's random tickets). ``per_layer=False``: only the total count is
  kept, spread uniformly over all layers (same overall density).
  """
  seed = int(seed)
  if per_layer:
    out = {}
    for name, mask in masks.items():
      size = int(np.size(mask))
      keys = _layer_rng(seed, name).random(size, dtype=np.float32)
      keep = _random_keep(keys, int(np.count_nonzero(mask)))
      out[name] = keep.astype(np.float32).reshape(np.shape(mask))
    return out
  names = sorted(masks)
  rng = np.random.default_rng(seed)
  keys = rng.random(sum(int(np.size(masks[n])) for n in names),
                    dtype=np.float32)
  keep = _random_keep(keys, sum(int(np.count_nonzero(masks[n]))
                                for n in names))
  out, offset = {}, 0
  for name in names:
    size = int(np.size(masks[name]))
    out[name] = keep[offset:offset + size].astype(np.float32).reshape(
        np.shape(masks[name]))
    offset += size
  return {n: out[n] for n in masks}


def ones_like(weights: Mapping[str, np.ndarray]) -> Masks:
  """Dense masks (level 0) for the given kernels."""
  return {n: np.ones(np.shape(w), dtype=np.float32) for n, w in weights.items()}


def counts(masks: Mapping[str, np.ndarray]) -> Dict[str, int]:
  """Alive entries per layer."""
  return {n: int(np.count_nonzero(m)) for n, m in masks.items()}


def layer_densities(masks: Mapping[str, np.ndarray]) -> Dict[str, float]:
  """Fraction of alive entries per layer."""
  return {n: (int(np.count_nonzero(m)) / np.size(m) if np.size(m) else 1.0)
          for n, m in masks.items()}


def density(masks: Mapping[str, np.ndarray]) -> float:
  """Fraction of alive entries over all layers (1.0 for no layers)."""
  total = sum(int(np.size(m)) for m in masks.values())
  if not total:
    return 1.0
  return sum(int(np.count_nonzero(m)) for m in masks.values()) / total
