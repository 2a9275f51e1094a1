"""The layout of an experiment directory, in one place (design.md).

  <name>-<hash>/
    hparams.json           every hparam, seed and library version
    rewind.npz             the weights at the rewind step (level 0 writes it)
    pretrain/              a separate pre-training phase (--pretrain_*):
      weights.npz, metrics.json
    level_00/              dense; level_01/ ... pruned
      mask.npz             the level's mask (layer name -> 0/1)
      next_mask.npz        the next level's mask, pruned from this level's
                           trained weights
      metrics.json         the ticket's; written last, marks the ticket done
      ticket/              SavedModel: rewind weights x mask, and the masks
      trained/             the trained sparse network
      <branch>/            a branch of the level (lottery.branch): reinit/,
                           random_mask/, lmc/ ..., each with its metrics.json
    summary.json, summary.csv, accuracy_vs_density.png

A single run (`train`, a transfer run, a score member) keeps its
``metrics.json`` in its own directory. Every module reads and writes these
names through this one, so the layout is stated once.
"""
import os
from typing import List

from lottery_tf.foundations import fs

HPARAMS = "hparams.json"
METRICS = "metrics.json"
SUMMARY = "summary.json"
SUMMARY_CSV = "summary.csv"
PLOT = "accuracy_vs_density.png"
REWIND = "rewind.npz"
MASK = "mask.npz"
NEXT_MASK = "next_mask.npz"
WEIGHTS = "weights.npz"
TICKET = "ticket"
TRAINED = "trained"
PRETRAIN = "pretrain"
#: The run a level's own files belong to (its metrics.json is the level's).
TICKET_RUN = "ticket"

_LEVEL_PREFIX = "level_"


def hparams(exp_dir: str) -> str:
  return os.path.join(exp_dir, HPARAMS)


def summary(exp_dir: str) -> str:
  return os.path.join(exp_dir, SUMMARY)


def rewind(exp_dir: str) -> str:
  return os.path.join(exp_dir, REWIND)


def pretrain(exp_dir: str) -> str:
  return os.path.join(exp_dir, PRETRAIN)


def metrics(run_dir: str) -> str:
  return os.path.join(run_dir, METRICS)


def level(exp_dir: str, number: int) -> str:
  return os.path.join(exp_dir, f"{_LEVEL_PREFIX}{number:02d}")


def level_number(name: str):
  """The level a directory name (``level_07``) stands for, else None."""
  if name.startswith(_LEVEL_PREFIX) and name[len(_LEVEL_PREFIX):].isdigit():
    return int(name[len(_LEVEL_PREFIX):])
  return None


def run(exp_dir: str, number: int, name: str) -> str:
  """The directory of run ``name`` at a level: the level's own for the
  ticket, ``level_NN/<name>/`` for a branch."""
  d = level(exp_dir, number)
  return d if name == TICKET_RUN else os.path.join(d, name)


def mask(run_dir: str) -> str:
  return os.path.join(run_dir, MASK)


def next_mask(exp_dir: str, number: int) -> str:
  return os.path.join(level(exp_dir, number), NEXT_MASK)


def ticket(exp_dir: str, number: int) -> str:
  return os.path.join(level(exp_dir, number), TICKET)


def trained(exp_dir: str, number: int) -> str:
  return os.path.join(level(exp_dir, number), TRAINED)


def levels_with(exp_dir: str, what: str) -> List[int]:
  """The levels of an experiment holding ``what`` (e.g. ``ticket/...``)."""
  found = []
  for name in fs.listdir(exp_dir):
    n = level_number(name)
    if n is not None and fs.exists(os.path.join(exp_dir, name, what)):
      found.append(n)
  return sorted(found)


def ticket_levels(exp_dir: str) -> List[int]:
  """The levels of a ``find`` experiment that have a ticket."""
  from lottery_tf.tickets.format import TICKET_JSON  # pylint: disable=g-import-not-at-top
  return levels_with(exp_dir, os.path.join(TICKET, TICKET_JSON))


TENSORBOARD = "tensorboard"


def tensorboard(exp_dir: str) -> str:
  """The experiment's TensorBoard root (``tensorboard --logdir``)."""
  return os.path.join(exp_dir, TENSORBOARD)


def tensorboard_run(exp_dir: str, number: int, name: str) -> str:
  """TensorBoard scalars of run ``name`` at a level:
  ``tensorboard/level_NN/<name>/``."""
  return os.path.join(tensorboard(exp_dir), f"{_LEVEL_PREFIX}{number:02d}",
                      name)


def tensorboard_of_run_dir(run_dir: str) -> str:
  """:func:`tensorboard_run` for a run directory made by :func:`run`."""
  run_dir = run_dir.rstrip("/")
  base = os.path.basename(run_dir)
  if level_number(base) is not None:
    return tensorboard_run(os.path.dirname(run_dir), level_number(base),
                           TICKET_RUN)
  level_dir = os.path.dirname(run_dir)
  return tensorboard_run(os.path.dirname(level_dir),
                         level_number(os.path.basename(level_dir)) or 0, base)


def tensorboard_summary(exp_dir: str) -> str:
  """The experiment's level summary scalars (step = level)."""
  return os.path.join(tensorboard(exp_dir), "summary")
