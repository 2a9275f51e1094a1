"""What an experiment's level directories hold, and whether it is whole.

Every write is atomic, so a file that does not read back whole (truncated,
empty, object arrays) was damaged from outside: it is kept as NAME.damaged
and what it held is recomputed from the last good state; nothing outside its
level changes. The layout itself is :mod:`lottery_tf.paths`.
"""
import os
from typing import Dict, Iterable

import numpy as np

from lottery_tf import paths
from lottery_tf.errors import DamagedFile
from lottery_tf.foundations import fs, store

Weights = Dict[str, np.ndarray]


class LevelFiles:
  """The level files of the experiment in ``exp_dir``, through ``writer``
  (a worker other than the chief reads the chief's files and keeps its own
  masks and rewind weights in its scratch)."""

  def __init__(self, exp_dir: str, writer: store.Writer = store.LOCAL,
               log=print):
    self.exp_dir = exp_dir
    self.writer = writer
    self.log = log

  def intact(self, path: str) -> bool:
    return self.writer.intact(path, log=self.log)

  def run_done(self, level: int, run: str) -> bool:
    return self.intact(paths.metrics(paths.run(self.exp_dir, level, run)))

  def level_done(self, level: int, runs: Iterable[str]) -> bool:
    """The ticket and each of ``runs`` (branch names) finished."""
    return self.ticket_done(level) and all(
        self.run_done(level, run) for run in runs)

  def ticket_done(self, level: int) -> bool:
    """The level's ticket trained: its metrics.json, its next_mask.npz and
    (level 0) rewind.npz all read back whole. Otherwise the ticket is
    retrained from the rewind point (same seed, same numbers on CPU), which
    rewrites all three."""
    d = paths.level(self.exp_dir, level)
    done = self.intact(paths.metrics(d))
    next_mask = paths.next_mask(self.exp_dir, level)
    if self.writer.exists(next_mask):
      done = self.intact(next_mask) and done
    elif self.writer.exists(next_mask + ".damaged"):
      done = False  # Set aside just now (by level_done).
    else:
      # Experiments from before next_mask.npz: the next level's mask.npz.
      done = done and self.writer.exists(
          paths.mask(paths.level(self.exp_dir, level + 1)))
    if level == 0:
      done = self.intact(paths.rewind(self.exp_dir)) and done
    return done

  def rewind_weights(self) -> Weights:
    return self.writer.read_npz(paths.rewind(self.exp_dir))

  def mask(self, level: int, model_masks: Weights) -> Weights:
    """The level's mask: its own mask.npz once the level has started, else
    the previous level's next_mask.npz (written into the level as it
    starts); at level 0, all ones. ``model_masks``: the model's masks, which
    a mask read back must match (pruned layers, shapes).

    Experiments written before next_mask.npz existed hold the next level's
    mask as ``level_{N+1}/mask.npz``: read as the level's own.
    """
    if level == 0:
      return {k: np.ones_like(v) for k, v in model_masks.items()}
    own = paths.mask(paths.level(self.exp_dir, level))
    # Where this process writes it: a worker other than the chief keeps its
    # own copy (from its own next_mask.npz) whether or not the chief, which
    # may be ahead, has written the level's already.
    if fs.exists(self.writer.path(own)):
      try:
        masks = self.writer.read_npz(own)
        check_masks(own, masks, model_masks)
        return masks
      except DamagedFile as e:
        aside = self.writer.set_aside(own)
        self.log(f"{own} is damaged ({e.reason}): kept as "
                 f"{os.path.basename(aside)}, taking the mask again from "
                 f"level {level - 1:02d}")
    masks = self.writer.read_npz(paths.next_mask(self.exp_dir, level - 1))
    self.writer.write_npz(own, masks)
    return masks


def check_masks(path: str, masks: Weights, want: Weights) -> None:
  """DamagedFile unless ``masks`` are 0/1 masks of exactly the layers of
  ``want``, in their shapes."""
  if set(masks) != set(want):
    raise DamagedFile(path, f"masks for {sorted(masks)}, but the model "
                      f"prunes {sorted(want)}")
  for name, mask in masks.items():
    if mask.shape != want[name].shape:
      raise DamagedFile(path, f"mask {name!r} has shape {mask.shape}, its "
                        f"layer {want[name].shape}")
    if not np.all((mask == 0) | (mask == 1)):
      raise DamagedFile(path, f"mask {name!r} holds values other than 0 "
                        "and 1")
