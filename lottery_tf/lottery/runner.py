"""Iterative magnitude pruning with rewinding, level by level, resumably.

Layout of an experiment directory (design.md):

  <name>-<hash>/
    hparams.json           every hparam, seed and library version
    rewind.npz             the weights at the rewind step (level 0 writes it)
    pretrain/              with a separate pre-training phase (--pretrain_*):
      weights.npz          the dense weights after it, at step t
      metrics.json         its subset, steps, accuracy (written last)
    level_00/              dense
      mask.npz             layer name -> 0/1 mask, allow_pickle=False
      metrics.json         written last: its presence marks the level done
      ticket/              SavedModel: rewind weights x mask, and the masks
      trained/             the trained sparse network, wrappers stripped
      reinit/metrics.json  control: same mask, fresh initialisation
      random_mask/         control: random mask, same per-layer density
      lmc/                 --lmc_every_level: a second copy, the linear path
    level_01/ ...
    summary.json, summary.csv, accuracy_vs_density.png

Every training run seeds itself, so a level re-run after a crash gives the
same numbers as an uninterrupted run, whatever ran before it in the process.
"""
import os
import time
from typing import Dict, Optional

import numpy as np

from lottery_tf import artifacts, hparams as hp_lib, pruning, training
from lottery_tf.analysis import lmc
from lottery_tf.diet import pretrain as pretrain_lib
from lottery_tf.lottery import report
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery.task import Task
from lottery_tf.errors import UserError
from lottery_tf import tickets
from lottery_tf.training.rewind import (RewindCallback, load_weights,
                                        reset_optimizer, snapshot)

# Seed offsets of the runs that must not share an initialisation or mask with
# the ticket.
_REINIT_SEED_OFFSET = 10_007
_RANDOM_MASK_SEED_OFFSET = 20_011


def level_dir(exp_dir: str, level: int) -> str:
  return os.path.join(exp_dir, f"level_{level:02d}")


class LotteryRunner:
  """Runs levels 0..N of IMP for one task, skipping finished work."""

  def __init__(self, exp_dir: str, task: Task, php, lhp: LotteryHparams, *,
               quiet: bool = False, log=print, save_tickets: bool = True):
    php.validate()
    lhp.validate()
    self.exp_dir = exp_dir
    self.task = task
    self.php = php
    self.lhp = lhp
    self.quiet = quiet
    self.log = log
    self.save_tickets = save_tickets
    self._model = None
    self._train_model = None
    self._init_weights = None
    self._eval_data = None
    self.rewind_step = task.steps(lhp.rewind, "--rewind")
    # Tickets on a data diet: the rewind point comes after a pre-training of
    # t steps (on a subset), at t unless --rewind asks for a later step.
    self.pretraining = pretrain_lib.plan(task, lhp)
    self.pretrain_step = self.pretraining.steps if self.pretraining else 0
    if self.pretrain_step:
      if 0 < self.rewind_step < self.pretrain_step:
        raise UserError(
            f"--rewind: {lhp.rewind} comes before the end of the "
            f"pre-training (--pretrain_steps={lhp.pretrain_steps}); use 0it "
            "(rewind to the pre-trained weights) or a later step")
      self.rewind_step = max(self.rewind_step, self.pretrain_step)
    self._lmc_data = None
    if self.rewind_step >= task.total_steps:
      raise UserError(
          f"--rewind: {lhp.rewind} ({self.rewind_step} steps) is not before the "
          f"end of training ({task.total_steps} steps)")

  # -- bookkeeping -----------------------------------------------------------

  def hparams_dict(self) -> dict:
    t = self.task
    return hp_lib.to_json_dict(t.dhp, t.mhp, t.thp, self.php, self.lhp)

  def provenance(self) -> dict:
    return {"hparams": self.hparams_dict(), "seed": self.task.thp.seed,
            "versions": artifacts.library_versions(),
            "data": self.task.info.to_dict()}

  def _level_done(self, level: int) -> bool:
    d = level_dir(self.exp_dir, level)
    if not os.path.exists(os.path.join(d, "metrics.json")):
      return False
    if self.lhp.lmc_every_level and not os.path.exists(
        os.path.join(d, "lmc", "metrics.json")):
      return False
    if level == 0:
      return True
    return all(os.path.exists(os.path.join(d, c, "metrics.json"))
               for c in self.lhp.control_list())

  # -- one training run -----------------------------------------------------

  def _wrapped(self, seed: int):
    model = self.task.build_model(seed=seed)
    return pruning.wrap(model, layers_to_ignore=self.php.ignored_layers(),
                        prune_only=self.php.prune_only or None)

  def _session(self):
    """The one wrapped model every run of this process trains.

    Building, compiling and tracing a model costs more than training LeNet
    for an epoch, so the ticket and both controls of every level reuse one
    compiled model: each run assigns its weights, masks and optimizer state
    (slots zeroed, iterations = its start step) explicitly, which makes it
    independent of what ran before it, and a resumed process reproduces an
    uninterrupted one exactly.
    """
    if self._model is None:
      training.set_seed(self.task.thp.seed)
      self._model = self._wrapped(self.task.thp.seed)
      self._init_weights = snapshot(self._model)
      self._train_model = training.compile_model(
          self._model, self.task.thp, self.task.steps_per_epoch)
      self._eval_data = self.task.eval_data()
    return self._model, self._train_model

  def _fresh_weights(self, seed: int) -> Dict[str, np.ndarray]:
    return snapshot(self.task.build_model(seed=seed))

  def _train(self, weights: Dict[str, np.ndarray], masks, *, start: int,
             seed: int, rewind_cb: Optional[RewindCallback] = None,
             data_seed: Optional[int] = None) -> dict:
    """Trains the session model from ``weights`` under ``masks``."""
    task = self.task
    model, train_model = self._session()
    # The global seed feeds the data order and augmentation: the same for the
    # ticket and its controls, which differ only in weights or mask.
    data_seed = task.thp.seed if data_seed is None else data_seed
    training.set_seed(data_seed)
    load_weights(model, weights)
    pruning.set_masks(model, masks)
    reset_optimizer(train_model.optimizer, start)
    train_model.reset_metrics()
    callbacks = [rewind_cb] if rewind_cb is not None else []
    result = training.fit(
        train_model, task.train_data(data_seed),
        steps_per_epoch=task.steps_per_epoch,
        start_step=start, end_step=task.total_steps,
        boundaries=[self.rewind_step], callbacks=callbacks,
        verbose=training.verbosity(self.quiet))
    metrics = training.evaluate(train_model, self._eval_data)
    densities = pruning.densities(model)
    return {
        "metrics": metrics,
        "density": densities.pop("overall"),
        "density_per_layer": densities,
        "steps": result.steps,
        "start_step": start,
        "train_seconds": result.seconds,
        "ms_per_step": result.ms_per_step,
        "seed": seed,
        "data_seed": data_seed,
    }

  # -- levels ----------------------------------------------------------------

  def _masks_for(self, level: int) -> Dict[str, np.ndarray]:
    if level == 0:
      model, _ = self._session()
      return {k: np.ones_like(v) for k, v in pruning.get_masks(model).items()}
    path = os.path.join(level_dir(self.exp_dir, level), "mask.npz")
    return artifacts.read_npz(path)

  def run_level(self, level: int) -> dict:
    """Trains the level's ticket (unless done), then its missing controls."""
    d = level_dir(self.exp_dir, level)
    seed = self.task.thp.seed
    rewind_path = os.path.join(self.exp_dir, "rewind.npz")
    began = time.time()
    row = None
    trained = None
    if not os.path.exists(os.path.join(d, "metrics.json")):
      model, _ = self._session()
      masks = self._masks_for(level)
      if level == 0:
        start, weights = 0, self._init_weights
        if self.pretraining is not None and self.pretraining.separate:
          start, weights = self.pretrain_step, self._pretrain(masks)
        cb = RewindCallback(self.rewind_step, rewind_path)
        out = self._train(weights, masks, start=start, seed=seed,
                          rewind_cb=cb)
        rewind_weights = cb.weights
        artifacts.write_npz(os.path.join(d, "mask.npz"), masks)
      else:
        start = self.rewind_step
        rewind_weights = artifacts.read_npz(rewind_path)
        out = self._train(rewind_weights, masks, start=start, seed=seed)
      if self.lhp.lmc_every_level and start == self.rewind_step:
        # Trained from the rewind point with a fresh optimizer: this ticket
        # is the first of the two copies instability analysis compares.
        trained = snapshot(model)
      if self.save_tickets:
        tickets.save_trained(os.path.join(d, "trained"), model)
      # Always, even at the last level asked for: a later run with a larger
      # --levels (levels are not in the hash) extends this experiment.
      next_masks = pruning.prune(model, masks, self.php)
      artifacts.write_npz(
          os.path.join(level_dir(self.exp_dir, level + 1), "mask.npz"),
          next_masks)
      if self.save_tickets:
        self._save_ticket(os.path.join(d, "ticket"), level, masks,
                          rewind_weights, out)
      out.update(level=level, run="ticket", wall_seconds=time.time() - began,
                 rewind_step=self.rewind_step, **self.provenance())
      if self.pretraining is not None:
        out["pretraining"] = self.pretraining.to_dict()
      # Written last: its presence marks the ticket of this level done.
      artifacts.write_json(os.path.join(d, "metrics.json"), out)
      row = out
    if self.lhp.lmc_every_level:
      row = self._run_lmc(level, trained) or row
    if level > 0:
      for control in self.lhp.control_list():
        self._run_control(level, control)
    return row or artifacts.read_json(os.path.join(d, "metrics.json"))

  def _pretrain(self, masks) -> Dict[str, np.ndarray]:
    """The dense weights after the pre-training phase, w_t (resumable)."""
    d = os.path.join(self.exp_dir, "pretrain")
    weights_path = os.path.join(d, "weights.npz")
    if os.path.exists(os.path.join(d, "metrics.json")):
      return artifacts.read_npz(weights_path)
    model, _ = self._session()
    load_weights(model, self._init_weights)
    pruning.set_masks(model, masks)
    weights, record = pretrain_lib.pretrain(
        model, self.task, self.pretraining, eval_data=self._eval_data,
        quiet=self.quiet)
    artifacts.write_npz(weights_path, weights)
    artifacts.write_json(os.path.join(d, "metrics.json"), record)
    acc = record.get("metrics", {}).get("test_accuracy")
    self.log(f"pre-trained {record['steps']} steps on {record['subset']} "
             f"({record['num_examples']} examples)"
             + (f": test acc {100 * acc:.2f}%" if acc is not None else ""))
    return weights

  def _run_lmc(self, level: int, trained=None) -> Optional[dict]:
    """Instability of the level's ticket (Frankle et al. 2020), resumable.

    Two copies train from the rewind point under the level's mask with
    different data orders: the ticket itself (data seed --seed) when it
    started there, and one with another data seed. Adds the summary to the
    level's metrics.json; returns that, or None if it was there already.
    """
    d = level_dir(self.exp_dir, level)
    path = os.path.join(d, "lmc", "metrics.json")
    if os.path.exists(path):
      return None
    began = time.time()
    model, _ = self._session()
    masks = self._masks_for(level)
    weights = artifacts.read_npz(os.path.join(self.exp_dir, "rewind.npz"))
    seed = self.task.thp.seed
    if trained is None:
      self._train(weights, masks, start=self.rewind_step, seed=seed)
      trained = snapshot(model)
    other = self._train(weights, masks, start=self.rewind_step, seed=seed,
                        data_seed=seed + lmc.COPY_SEED_OFFSET)
    if self._lmc_data is None:
      self._lmc_data = lmc.datasets_for(self.task.dhp, self.task.info)
    summary, arrays = lmc.evaluate_path(
        model, trained, snapshot(model), self._lmc_data,
        points=self.lhp.interpolation_points,
        threshold=self.lhp.barrier_threshold)
    summary.update(level=level, density=other["density"],
                   rewind_step=self.rewind_step,
                   data_seeds=[seed, seed + lmc.COPY_SEED_OFFSET],
                   second_copy=other["metrics"],
                   wall_seconds=time.time() - began)
    lmc.save(os.path.dirname(path), summary, arrays,
             title=f"level {level}, density {100 * other['density']:.2f}%")
    metrics_path = os.path.join(d, "metrics.json")
    row = artifacts.read_json(metrics_path)
    row["lmc"] = {k: summary[k] for k in (
        "instability", "connected_fraction", "per_example_barrier_mean",
        "train_error_barrier", "test_error_barrier", "barrier_threshold")}
    artifacts.write_json(metrics_path, row)
    return row

  def _run_control(self, level: int, control: str) -> dict:
    d = os.path.join(level_dir(self.exp_dir, level), control)
    path = os.path.join(d, "metrics.json")
    if os.path.exists(path):
      return artifacts.read_json(path)
    began = time.time()
    masks = artifacts.read_npz(
        os.path.join(level_dir(self.exp_dir, level), "mask.npz"))
    if control == "reinit":
      # Frankle & Carbin's control: the ticket's mask on a fresh
      # initialisation, trained from the rewind step like the ticket.
      seed = self.task.thp.seed + _REINIT_SEED_OFFSET
      out = self._train(self._fresh_weights(seed), masks,
                        start=self.rewind_step, seed=seed)
    else:
      # A random mask with the ticket's per-layer density on the rewind
      # weights.
      seed = self.task.thp.seed + _RANDOM_MASK_SEED_OFFSET + level
      masks = pruning.random_masks(masks, seed=seed)
      artifacts.write_npz(os.path.join(d, "mask.npz"), masks)
      rewind_weights = artifacts.read_npz(
          os.path.join(self.exp_dir, "rewind.npz"))
      out = self._train(rewind_weights, masks, start=self.rewind_step,
                        seed=seed)
    out.update(level=level, run=control, wall_seconds=time.time() - began,
               rewind_step=self.rewind_step, **self.provenance())
    artifacts.write_json(path, out)
    return out

  def _save_ticket(self, path, level, masks, rewind_weights, out):
    model, _ = self._session()
    load_weights(model, rewind_weights)
    pruning.set_masks(model, masks)
    meta = {
        "model": self.task.mhp.model,
        "dataset": self.task.dhp.dataset,
        "optimizer": self.task.thp.optimizer,
        "level": level,
        "density": out["density"],
        "density_per_layer": out["density_per_layer"],
        "rewind": self.lhp.rewind,
        "rewind_step": self.rewind_step,
        "input_shape": list(self.task.info.input_shape),
        "num_classes": self.task.info.num_classes,
        "pruning": self.php.to_dict(),
        **self.provenance(),
    }
    tickets.save(path, model, meta)

  def run(self) -> str:
    artifacts.write_json(os.path.join(self.exp_dir, "hparams.json"),
                         self.provenance())
    for level in range(self.lhp.levels + 1):
      done = self._level_done(level)
      self.run_level(level)
      line = report.level_line(self.exp_dir, level, self.lhp.control_list())
      self.log(("(done) " if done else "") + line)
      report.write_summary(self.exp_dir, self.lhp.levels,
                           self.lhp.control_list())
    return os.path.join(self.exp_dir, "summary.json")
