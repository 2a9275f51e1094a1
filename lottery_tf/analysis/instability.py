"""``lottery_tf lmc``: instability analysis from one starting point, resumably.

Starting points (``--lmc_from``):

* ``init``: the network at initialisation (step 0);
* ``rewind``: the dense network at step k = --rewind, trained here from init
  on --seed's data order, or read from a ``find`` experiment's rewind.npz;
* ``ticket``: a ticket's rewind-point weights under its mask, from its
  rewind step (the mask stays fixed while the copies train).

From there two copies train to the end of --training_steps with the data
orders of --seed and --seed + ``lmc.COPY_SEED_OFFSET``, with a fresh
optimizer whose step (and so lr schedule) starts at the starting step; then
``lmc.evaluate_path`` walks the linear path between them.

Layout:

  lmc_<model>_<dataset>-<hash>/
    start.npz            the starting weights (trained here for rewind)
    copy_1.npz, copy_2.npz, copy_1.json, copy_2.json
    per_example.npz      per-example losses at both ends and the midpoint
    path.png             error and loss along the path
    summary.json         instability, barriers, one row per alpha (last)
"""
import dataclasses
import os
import time
from typing import Callable, Dict, Optional

import numpy as np

from lottery_tf import fs
from lottery_tf import artifacts, pruning, tickets, training
from lottery_tf.analysis import lmc
from lottery_tf.errors import UserError
from lottery_tf.training import optimizers
from lottery_tf.training.rewind import load_weights, snapshot


@dataclasses.dataclass
class StartPoint:
  """Where the two copies start."""
  kind: str
  step: int
  build: Callable  # () -> the model to train (wrapped, masks set, if a ticket)
  weights: Optional[Dict[str, np.ndarray]] = None  # None: train to step here
  masks: Optional[Dict[str, np.ndarray]] = None
  source: dict = dataclasses.field(default_factory=dict)


def from_init(task) -> StartPoint:
  return StartPoint("init", 0, lambda: task.build_model(),
                    source={"seed": task.thp.seed})


def from_rewind(task, rewind_step: int) -> StartPoint:
  """Dense training from init to ``rewind_step``, done by :func:`run`."""
  if rewind_step >= task.total_steps:
    raise UserError(f"--rewind: step {rewind_step} is not before the end of "
                    f"training ({task.total_steps} steps)")
  weights = None
  if rewind_step == 0:
    weights = snapshot(task.build_model())
  return StartPoint("rewind", rewind_step, lambda: task.build_model(),
                    weights=weights, source={"seed": task.thp.seed})


def from_experiment(task, exp_dir: str, flag: str = "--ticket") -> StartPoint:
  """The rewind point of a ``find`` experiment (its rewind.npz)."""
  path = os.path.join(exp_dir, "rewind.npz")
  level0 = os.path.join(exp_dir, "level_00", "metrics.json")
  if not (fs.exists(path) and fs.exists(level0)):
    raise UserError(f"{flag}: {exp_dir} has no finished level 0 with a "
                    "rewind.npz; run `lottery_tf find` there first")
  try:
    weights = artifacts.read_npz(path)
    step = int(artifacts.read_json(level0)["rewind_step"])
  except (OSError, ValueError, KeyError) as e:
    raise UserError(f"{flag}: {path} is unreadable ({e})") from e
  return StartPoint("rewind", step, lambda: task.build_model(),
                    weights=weights,
                    source={"experiment": fs.abspath(exp_dir),
                            "rewind_sha256": artifacts.sha256_file(path)})


def from_ticket(ticket: tickets.Ticket) -> StartPoint:
  step = int(ticket.meta.get("rewind_step", 0))
  return StartPoint(
      "ticket", step, ticket.build, weights=dict(ticket.weights),
      masks=dict(ticket.masks),
      source={"ticket": fs.abspath(ticket.path),
              "level": ticket.meta.get("level"),
              "density": ticket.meta.get("density"),
              "ticket_sha256": artifacts.sha256_file(
                  os.path.join(ticket.path, tickets.TICKET_JSON))})


def run(exp_dir: str, task, start: StartPoint, *, points: int = 11,
        threshold: float = 0.1, quiet: bool = False,
        log: Callable[[str], None] = print) -> str:
  """Trains the copies (skipping saved ones), evaluates the path."""
  summary_path = os.path.join(exp_dir, "summary.json")
  if fs.exists(summary_path):
    log(f"already finished: {summary_path}")
    return summary_path
  if start.step >= task.total_steps:
    raise UserError(f"--training_steps: the copies would start at step "
                    f"{start.step}, at or after the end of training "
                    f"({task.total_steps} steps)")
  began = time.time()
  thp = task.thp
  training.set_seed(thp.seed)
  with task.scope():
    model = start.build()
    train_model = training.compile_model(model, thp, task.steps_per_epoch)
  masks = start.masks
  if masks is None and any(pruning.is_wrapper(l) for l in model.layers):
    masks = pruning.get_masks(model)

  def train(weights, begin: int, end: int, data_seed: int):
    training.set_seed(data_seed)
    load_weights(model, weights)
    if masks is not None:
      pruning.set_masks(model, masks)
    optimizers.start_run(train_model.optimizer, begin)
    train_model.reset_metrics()
    return training.fit(train_model, task.train_data(data_seed),
                        steps_per_epoch=task.steps_per_epoch,
                        start_step=begin, end_step=end,
                        verbose=training.verbosity(quiet))

  start_path = os.path.join(exp_dir, "start.npz")
  weights = start.weights
  if weights is None:
    if fs.exists(start_path):
      weights = artifacts.read_npz(start_path)
    else:
      # Dense training from init to the rewind step, on --seed's data order.
      train(snapshot(model), 0, start.step, thp.seed)
      weights = snapshot(model)
      log(f"trained the dense network to step {start.step}")
  if not fs.exists(start_path):
    artifacts.write_npz(start_path, weights)
  eval_data = task.eval_data()
  seeds = [thp.seed, thp.seed + lmc.COPY_SEED_OFFSET]
  copies, copy_metrics = [], []
  for i, seed in enumerate(seeds, 1):
    path = os.path.join(exp_dir, f"copy_{i}.npz")
    record_path = os.path.join(exp_dir, f"copy_{i}.json")
    if fs.exists(record_path):
      copies.append(artifacts.read_npz(path))
      copy_metrics.append(artifacts.read_json(record_path))
      continue
    result = train(weights, start.step, task.total_steps, seed)
    record = {"data_seed": seed, "start_step": start.step,
              "end_step": task.total_steps, "ms_per_step": result.ms_per_step,
              "metrics": training.evaluate(train_model, eval_data)}
    copies.append(snapshot(model))
    artifacts.write_npz(path, copies[-1])
    artifacts.write_json(record_path, record)
    copy_metrics.append(record)
    log(f"copy {i} (data seed {seed}): test acc "
        f"{100 * record['metrics']['test_accuracy']:.2f}%")
  summary, arrays = lmc.evaluate_path(
      model, copies[0], copies[1], lmc.datasets_for(task.dhp, task.info),
      points=points, threshold=threshold)
  summary.update({
      "command": "lmc", "lmc_from": start.kind, "start_step": start.step,
      "source": start.source, "data_seeds": seeds, "copies": copy_metrics,
      "density": (pruning.density(masks) if masks else 1.0),
      "hparams": {"dataset": task.dhp.to_dict(), "model": task.mhp.to_dict(),
                  "training": thp.to_dict()},
      "versions": artifacts.library_versions(),
      "wall_seconds": time.time() - began,
  })
  lmc.save(exp_dir, summary, arrays, name="summary.json",
           title=f"{task.mhp.model} on {task.dhp.dataset} from "
                 f"{start.kind} (step {start.step})")
  log(f"lmc from {start.kind} (step {start.step}): "
      + lmc.instability_line(summary)
      + f", train error barrier {100 * summary['train_error_barrier']:.2f}%")
  return summary_path
