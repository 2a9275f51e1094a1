"""Subsets of the training set for the pre-training phase (Paul et al. 2022).

A subset is written ``KIND:N``: ``random:3200``, ``easy:3200`` (the examples
with the lowest scores, e.g. EL2N), ``hard:0.1`` (the highest tenth). N is a
count, or a fraction of the training set when it has a decimal point.
A subset is a sorted array of example indices (positions in the train split,
see ``data.load``), which ``data.load(..., indices=...)`` takes back.

``class_balanced`` picks per class, as evenly as the classes allow: every
class gets the same quota, and the examples a small class lacks go to the
others (water filling), so the subset always has the size asked for.
"""
import dataclasses
import re
from typing import Optional

import numpy as np

from lottery_tf.errors import UserError

KINDS = ("random", "easy", "hard")
_PATTERN = re.compile(r"^\s*(\w+)\s*:\s*([0-9]*\.?[0-9]+(?:[eE]-?[0-9]+)?)\s*$")


@dataclasses.dataclass(frozen=True)
class SubsetSpec:
  kind: str  # "random", "easy" or "hard"
  count: int = 0  # examples, when given as a count
  fraction: float = 0.0  # of the training set, when given as a fraction

  @property
  def needs_scores(self) -> bool:
    return self.kind in ("easy", "hard")

  def size(self, num_examples: int, flag: str = "--pretrain_subset") -> int:
    """The number of examples this spec asks for out of ``num_examples``."""
    if self.count:
      n = self.count
    else:
      n = max(1, int(round(self.fraction * num_examples)))
    if n > num_examples:
      raise UserError(f"{flag}: {self} asks for {n} examples but the training "
                      f"set has only {num_examples}")
    return n

  def __str__(self):
    return f"{self.kind}:{self.count or self.fraction}"


def parse(text: str, flag: str = "--pretrain_subset",
          strict: bool = True) -> Optional[SubsetSpec]:
  """``'easy:3200'`` -> SubsetSpec; empty or ``full`` -> None (all the data).

  With ``strict=False`` a malformed spec gives None instead of a UserError
  (for hashing, before validation reports it).
  """
  text = (text or "").strip()
  if not text or text == "full":
    return None
  match = _PATTERN.match(text)
  try:
    if not match or match.group(1) not in KINDS:
      raise UserError(
          f"{flag}: {text!r} is not a subset; write random:N, easy:N or "
          "hard:N with N a count (3200) or a fraction (0.1), or leave it "
          "empty for the full training set")
    kind, number = match.group(1), match.group(2)
    is_fraction = any(c in number for c in ".eE")
    value = float(number)
    if is_fraction:
      if not 0 < value <= 1:
        raise UserError(f"{flag}: the fraction in {text!r} must be in (0, 1]")
      return SubsetSpec(kind, fraction=value)
    if int(number) < 1:
      raise UserError(f"{flag}: the size in {text!r} must be at least 1")
    return SubsetSpec(kind, count=int(number))
  except UserError:
    if strict:
      raise
    return None


def _quotas(counts: np.ndarray, size: int) -> np.ndarray:
  """Per-class quotas summing to ``size``, as equal as ``counts`` allow.

  Water filling: the largest q with sum(min(counts, q)) <= size, then the
  leftover examples, one each, to the classes (in class order) that still
  have some.
  """
  counts = np.asarray(counts, np.int64)
  lo, hi = 0, int(counts.max(initial=0))
  while lo < hi:  # largest q with sum(min(counts, q)) <= size
    mid = (lo + hi + 1) // 2
    if np.minimum(counts, mid).sum() <= size:
      lo = mid
    else:
      hi = mid - 1
  quotas = np.minimum(counts, lo)
  left = size - int(quotas.sum())
  for c in np.flatnonzero(counts > quotas):
    if left == 0:
      break
    quotas[c] += 1
    left -= 1
  return quotas


def select(spec: SubsetSpec, num_examples: int, *, labels=None, scores=None,
           class_balanced: bool = False, seed: int = 0,
           flag: str = "--pretrain_subset") -> np.ndarray:
  """The subset's example indices, sorted, as int64.

  Args:
    spec: what to pick.
    num_examples: size of the training set (indices are 0..n-1).
    labels: int labels by index (needed when ``class_balanced``).
    scores: per-example scores by index (needed for easy/hard); ties are
      broken by index, so the choice is deterministic.
    class_balanced: pick per class (see the module docstring).
    seed: for ``random``.
  """
  size = spec.size(num_examples, flag)
  if spec.needs_scores:
    if scores is None:
      raise UserError(f"--scores: {spec} needs per-example scores; run "
                      "`lottery_tf score` and pass its scores.npz")
    scores = np.asarray(scores, np.float64)
    if scores.shape != (num_examples,):
      raise UserError(f"--scores: {scores.shape[0]} scores for "
                      f"{num_examples} training examples")
  rng = np.random.default_rng(seed)

  def order(candidates: np.ndarray) -> np.ndarray:
    """``candidates`` in the order this kind picks them."""
    if spec.kind == "random":
      return rng.permutation(candidates)
    key = scores[candidates] if spec.kind == "easy" else -scores[candidates]
    return candidates[np.lexsort((candidates, key))]

  everything = np.arange(num_examples, dtype=np.int64)
  if not class_balanced:
    chosen = order(everything)[:size]
  else:
    if labels is None:
      raise ValueError("class_balanced needs labels")
    labels = np.asarray(labels)
    classes = np.unique(labels)
    counts = np.array([(labels == c).sum() for c in classes])
    quotas = _quotas(counts, size)
    chosen = np.concatenate([
        order(everything[labels == c])[:q] for c, q in zip(classes, quotas)])
  return np.sort(chosen.astype(np.int64))
