"""TensorBoard scalars of runs and of an experiment's level summary.

Written through ``tf.summary`` (TF's filesystem layer, so gs:// and ram://
work), once per finished run from its final history, so a resumed run gets
no duplicate steps. Scalars go through the core ``tf.summary.write`` with
the TensorBoard scalars plugin's metadata (what ``tf.summary.scalar``
writes), so writing needs no ``tensorboard`` package at import time; viewing
them does (``tensorboard --logdir runs/``).
"""
import os
from typing import Dict, List, Sequence

import tensorflow as tf

from lottery_tf import paths


def _metadata():
  meta = tf.compat.v1.SummaryMetadata()
  meta.plugin_data.plugin_name = "scalars"  # TensorBoard's scalars plugin.
  return meta


def _scalar(tag: str, value: float, step: int) -> None:
  tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step,
                   metadata=_metadata())


def _purge(logdir: str) -> None:
  """Deletes the event files already in ``logdir`` (rewrites replace them)."""
  if tf.io.gfile.isdir(logdir):
    for name in tf.io.gfile.listdir(logdir):
      if "tfevents" in name:
        tf.io.gfile.remove(os.path.join(logdir, name))


def write_run_scalars(logdir: str, history: Dict[str, Sequence[float]]
                      ) -> None:
  """One scalar per history key (``loss``, ``accuracy``, ``lr``, ``val_*``),
  step = epoch (1-based), replacing what ``logdir`` held."""
  _purge(logdir)
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    for tag, values in sorted(history.items()):
      for epoch, value in enumerate(values, start=1):
        if value is not None:
          _scalar(tag, value, epoch)
  writer.flush()
  writer.close()


_SKIP = ("level", "run", "experiment", "seed", "steps")


def write_level_summary(exp_dir: str, table: List[dict], writer=None) -> None:
  """The level summary (``report.rows``) as scalars keyed by level:
  ``<metric>/<run>`` (e.g. ``test_accuracy/ticket``) and ``density/<run>``,
  under ``tensorboard/summary/``. Idempotent: rewrites all rows each call.
  ``writer`` (a ``store.Writer``) redirects a non-chief's output."""
  logdir = paths.tensorboard_summary(exp_dir)
  if writer is not None:
    logdir = writer.path(logdir)
  _purge(logdir)
  tb = tf.summary.create_file_writer(logdir)
  with tb.as_default():
    for row in sorted(table, key=lambda r: (r["level"], r["run"])):
      for key, value in row.items():
        if key in _SKIP or not isinstance(value, (int, float)) or isinstance(
            value, bool):
          continue
        _scalar(f"{key}/{row['run']}", value, int(row["level"]))
  tb.flush()
  tb.close()
