"""Where level 0 starts when it does not start from the initialisation.

A rewind-point provider (:class:`RewindPoint`; a pre-training phase on a
data diet is lottery_tf.diet.pretrain.PretrainPlan) is handed to the runner
by whoever builds it (lottery_tf.descriptions); the runner only asks it for
its step and, when it is a phase of its own, for its weights
(:func:`pretrained`), which are kept in ``pretrain/`` and not trained again.
"""
import os
from typing import Dict

import numpy as np

from lottery_tf import paths


class RewindPoint:
  """``steps``: the step the rewind point is taken at, at the earliest;
  ``separate``: whether it comes from a phase of its own (else it is the
  dense run's first ``steps`` steps). :meth:`train` runs that phase on the
  session model (weights as it gets them) and returns (weights, record).
  """
  steps: int = 0
  separate: bool = False

  def train(self, model, task, *, eval_data, quiet, ckpt):
    raise NotImplementedError

  def to_dict(self) -> dict:
    raise NotImplementedError


def pretrained(point: RewindPoint, session, files, masks, *,
               is_chief: bool = True) -> Dict[str, np.ndarray]:
  """The dense weights after ``point``'s phase, w_t, trained on the session
  model from the initialisation (resumable: read back once written).
  ``files``: the experiment's LevelFiles."""
  writer = files.writer
  d = paths.pretrain(files.exp_dir)
  weights_path = os.path.join(d, paths.WEIGHTS)
  if files.intact(paths.metrics(d)) and files.intact(weights_path):
    return writer.read_npz(weights_path)
  session.model()  # Built: its initialisation is known.
  model = session.load(session.init_weights, masks)
  weights, record = point.train(
      model, session.task, eval_data=session.eval_data, quiet=session.quiet,
      ckpt=session.checkpoint(d))
  writer.write_npz(weights_path, weights)
  if is_chief:
    writer.write_json(paths.metrics(d), record)
  session.clear_checkpoint(d)
  acc = record.get("metrics", {}).get("test_accuracy")
  files.log(f"pre-trained {record['steps']} steps on {record['subset']} "
            f"({record['num_examples']} examples)"
            + (f": test acc {100 * acc:.2f}%" if acc is not None else ""))
  return weights
