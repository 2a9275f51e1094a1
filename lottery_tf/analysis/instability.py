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
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from lottery_tf import paths
from lottery_tf.foundations import fs
from lottery_tf import pruning, tickets, training
from lottery_tf.foundations import provenance, store
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
  path = paths.rewind(exp_dir)
  level0 = paths.metrics(paths.level(exp_dir, 0))
  if not (fs.exists(path) and fs.exists(level0)):
    raise UserError(f"{flag}: {exp_dir} has no finished level 0 with a "
                    "rewind.npz; run `lottery_tf find` there first")
  try:
    weights = store.read_npz(path)
    step = int(store.read_json(level0)["rewind_step"])
  except (OSError, ValueError, KeyError) as e:
    raise UserError(f"{flag}: {path} is unreadable ({e})") from e
  return StartPoint("rewind", step, lambda: task.build_model(),
                    weights=weights,
                    source={"experiment": fs.abspath(exp_dir),
                            "rewind_sha256": store.sha256_file(path)})


def from_ticket(ticket: tickets.Ticket) -> StartPoint:
  step = int(ticket.meta.get("rewind_step", 0))
  return StartPoint(
      "ticket", step, ticket.build, weights=dict(ticket.weights),
      masks=dict(ticket.masks),
      source={"ticket": fs.abspath(ticket.path),
              "level": ticket.meta.get("level"),
              "density": ticket.meta.get("density"),
              "ticket_sha256": store.sha256_file(
                  os.path.join(ticket.path, tickets.TICKET_JSON))})


def run(exp_dir: str, task, start: StartPoint, *, points: int = 11,
        threshold: float = 0.1, quiet: bool = False,
        log: Callable[[str], None] = print,
        writer: store.Writer = store.LOCAL) -> str:
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
  trainer = _trainer(task, start, quiet)
  weights = _start_weights(exp_dir, start, trainer, log, writer)
  seeds = [task.thp.seed, task.thp.seed + lmc.COPY_SEED_OFFSET]
  copies, copy_metrics = _copies(exp_dir, trainer, start, weights, seeds, log,
                                 writer)
  summary, arrays = lmc.evaluate_path(
      trainer.model, copies[0], copies[1],
      lmc.datasets_for(task.dhp, task.info), points=points,
      threshold=threshold)
  summary.update(_run_fields(task, start, trainer.masks, seeds, copy_metrics,
                             began))
  lmc.save(exp_dir, summary, arrays, name="summary.json",
           title=_title(task, start), writer=writer)
  log(f"lmc from {start.kind} (step {start.step}): "
      + lmc.instability_line(summary)
      + f", train error barrier {100 * summary['train_error_barrier']:.2f}%")
  return summary_path


def _title(task, start) -> str:
  from lottery_tf.lottery import report  # pylint: disable=g-import-not-at-top
  where = {"init": "initialisation", "rewind": "the rewind point",
           "ticket": "a ticket's rewind point"}.get(start.kind, start.kind)
  return (f"{report.model_name(task.mhp.model)} on "
          f"{report.dataset_name(task.dhp.dataset)}: two copies from "
          f"{where} (step {start.step})")


@dataclasses.dataclass(frozen=True)
class _Trainer:
  """The one compiled model that every stretch of training here reuses."""
  task: Any
  model: Any
  train_model: Any  # `model` compiled.
  masks: Optional[Dict[str, np.ndarray]]  # Set again before every stretch.
  quiet: bool

  def train(self, weights, begin: int, end: int, data_seed: int):
    """`weights` trained from step `begin` to `end` in `data_seed`'s order,
    with a fresh optimizer."""
    training.set_seed(data_seed)
    load_weights(self.model, weights)
    if self.masks is not None:
      pruning.set_masks(self.model, self.masks)
    optimizers.start_run(self.train_model.optimizer, begin)
    self.train_model.reset_metrics()
    return training.fit(self.train_model, self.task.train_data(data_seed),
                        steps_per_epoch=self.task.steps_per_epoch,
                        start_step=begin, end_step=end,
                        verbose=training.verbosity(self.quiet))


def _trainer(task, start: StartPoint, quiet: bool) -> _Trainer:
  thp = task.thp
  training.set_seed(thp.seed)
  with task.scope():
    model = start.build()
    train_model = training.compile_model(model, thp, task.steps_per_epoch)
  masks = start.masks
  if masks is None and any(pruning.is_wrapper(l) for l in model.layers):
    masks = pruning.get_masks(model)
  return _Trainer(task, model, train_model, masks, quiet)


def _start_weights(exp_dir: str, start: StartPoint, trainer: _Trainer,
                   log: Callable[[str], None], writer: store.Writer
                   ) -> Dict[str, np.ndarray]:
  """The copies' starting weights, saved as start.npz (trained if need be)."""
  start_path = os.path.join(exp_dir, "start.npz")
  weights = start.weights
  if weights is None:
    if fs.exists(start_path):
      weights = writer.read_npz(start_path)
    else:
      # Dense training from init to the rewind step, on --seed's data order.
      trainer.train(snapshot(trainer.model), 0, start.step,
                    trainer.task.thp.seed)
      weights = snapshot(trainer.model)
      log(f"trained the dense network to step {start.step}")
  if not fs.exists(start_path):
    writer.write_npz(start_path, weights)
  return weights


def _copies(exp_dir: str, trainer: _Trainer, start: StartPoint, weights,
            seeds, log: Callable[[str], None], writer: store.Writer
            ) -> Tuple[list, list]:
  """Each copy's final weights and record: read if saved, else trained to
  the end of training and saved."""
  task = trainer.task
  eval_data = task.eval_data()
  records = [os.path.join(exp_dir, f"copy_{i}.json")
             for i in range(1, len(seeds) + 1)]
  trained = {}  # copy number -> (weights, FitResult)
  if (not any(fs.exists(r) for r in records) and
      training.can_stack(trainer.model, len(seeds), task.thp)):
    trained = dict(enumerate(_train_side_by_side(trainer, start, weights,
                                                 seeds), 1))
  copies, copy_metrics = [], []
  for i, seed in enumerate(seeds, 1):
    path, record_path = os.path.join(exp_dir, f"copy_{i}.npz"), records[i - 1]
    if fs.exists(record_path):
      copies.append(writer.read_npz(path))
      copy_metrics.append(writer.read_json(record_path))
      continue
    if i in trained:
      copy, result = trained[i]
      load_weights(trainer.model, copy)
    else:
      result = trainer.train(weights, start.step, task.total_steps, seed)
      copy = snapshot(trainer.model)
    record = {"data_seed": seed, "start_step": start.step,
              "end_step": task.total_steps, "ms_per_step": result.ms_per_step,
              "metrics": training.evaluate(trainer.train_model, eval_data)}
    if i in trained:
      record["stacked_runs"] = len(trained)
    copies.append(copy)
    writer.write_npz(path, copy)
    writer.write_json(record_path, record)
    copy_metrics.append(record)
    log(f"copy {i} (data seed {seed}): test acc "
        f"{100 * record['metrics']['test_accuracy']:.2f}%")
  return copies, copy_metrics


def _train_side_by_side(trainer: _Trainer, start: StartPoint, weights,
                        seeds) -> list:
  """The copies trained as one model (``training.compile_stacked``), each
  on its own seed's data order, as :meth:`_Trainer.train` would one by one:
  each copy's (weights, the shared FitResult)."""
  task = trainer.task
  with task.scope():
    models = [start.build() for _ in seeds]
    stacked = training.compile_stacked(models, task.thp, task.steps_per_epoch,
                                       streams=tuple(range(len(seeds))))
  for model in models:
    load_weights(model, weights)
    if trainer.masks is not None:
      pruning.set_masks(model, trainer.masks)
  training.set_seed(seeds[0])
  optimizers.start_run(stacked.optimizer, start.step)
  result = training.fit(stacked, task.train_streams(seeds),
                        steps_per_epoch=task.steps_per_epoch,
                        start_step=start.step, end_step=task.total_steps,
                        verbose=training.verbosity(trainer.quiet))
  return [(snapshot(model), result) for model in models]


def _run_fields(task, start: StartPoint, masks, seeds, copy_metrics,
                began: float) -> dict:
  """What summary.json adds to the path's: where from, how, by what."""
  return {
      "command": "lmc", "lmc_from": start.kind, "start_step": start.step,
      "source": start.source, "data_seeds": seeds, "copies": copy_metrics,
      "density": (pruning.density(masks) if masks else 1.0),
      "hparams": {"dataset": task.dhp.to_dict(), "model": task.mhp.to_dict(),
                  "training": task.thp.to_dict()},
      "versions": provenance.library_versions(),
      "wall_seconds": time.time() - began,
  }
