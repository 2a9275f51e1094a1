"""Iterative magnitude pruning with rewinding: the level loop, resumably.

Each level trains its ticket (the mask on the rewind weights), prunes the
next level's mask from the trained weights, then runs the level's branches
(controls and measurements, :mod:`lottery_tf.lottery.branch`). Where level 0
starts comes from a rewind-point provider (a pre-training phase on a data
diet, :mod:`lottery_tf.diet.pretrain`), handed in by whoever builds the
runner (:mod:`lottery_tf.descriptions`). The directory layout lives in
:mod:`lottery_tf.paths`.

Every training run seeds itself, so a level re-run after a crash gives the
same numbers as an uninterrupted run, whatever ran before it in the process.
With --checkpoint_every, a run cut off mid-level resumes from its latest
checkpoint (``<run dir>/checkpoint/``, deleted when the run is done).

Under --strategy=multi_worker every worker runs this same code in lockstep
(training, evaluation and saving are collective); only the chief writes the
experiment directory. The other workers decide what is done from the
chief's files and write their own masks and rewind weights, and their
checkpoints and SavedModels (which must be saved by every worker), to a
scratch directory (the runner's ``store.Writer``: ``OUTPUT_DIR/.worker_<i>/``
from the CLI, else ``.worker_<i>/`` inside the experiment); the SavedModels
are deleted at once, and no metrics are written there.
"""
import os
import time
from typing import Dict, List, Optional

import numpy as np

from lottery_tf import paths, pruning, tickets, training
from lottery_tf.foundations import fs, provenance, store, workspace
from lottery_tf.foundations import hparams as hp_lib
from lottery_tf._keras import tf
from lottery_tf.errors import DamagedFile, UserError
from lottery_tf.lottery import branch as branch_lib
from lottery_tf.lottery import report
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery.task import Task
from lottery_tf.training import checkpoint as checkpoint_lib, distribute
from lottery_tf.training import durations, optimizers
from lottery_tf.training.rewind import RewindCallback, load_weights, snapshot


class RewindPoint:
  """Where level 0 starts when it does not start from the initialisation.

  ``steps``: the step the rewind point is taken at, at the earliest;
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


class LotteryRunner(branch_lib.Trainer):
  """Runs levels 0..N of IMP for one task, skipping finished work."""

  def __init__(self, exp_dir: str, task: Task, php, lhp: LotteryHparams, *,
               rewind_point: Optional[RewindPoint] = None,
               writer: Optional[store.Writer] = None,
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
    self.branches = [branch_lib.get(name)() for name in lhp.branch_list()]
    self._model = None
    self._train_model = None
    self._init_weights = None
    self._eval_data = None
    self._rewind_weights = None
    self.rewind_step = task.steps(lhp.rewind, "--rewind")
    # Tickets on a data diet: the rewind point comes after a pre-training of
    # t steps (on a subset), at t unless --rewind asks for a later step.
    if rewind_point is None and durations.parse(lhp.pretrain_steps).value:
      # Pre-training asked for but no phase handed in: it would silently
      # not happen.
      raise ValueError(
          "--pretrain_steps needs its rewind point: build the runner with "
          "descriptions.Find(...).runner() or pass "
          "rewind_point=diet.pretrain.plan(task, lhp)")
    self.pretraining = rewind_point
    self.pretrain_step = rewind_point.steps if rewind_point else 0
    if self.pretrain_step:
      if 0 < self.rewind_step < self.pretrain_step:
        raise UserError(
            f"--rewind: {lhp.rewind} comes before the end of the "
            f"pre-training (--pretrain_steps={lhp.pretrain_steps}); use 0it "
            "(rewind to the pre-trained weights) or a later step")
      self.rewind_step = max(self.rewind_step, self.pretrain_step)
    strategy = distribute.setup(task.thp)
    self.is_chief = distribute.is_chief(strategy)
    self.writer = writer or store.LOCAL
    if not self.is_chief and not self.writer.redirected:
      # (The CLI hands in one for the whole output directory.)
      self.writer = store.Writer(exp_dir, os.path.join(
          exp_dir, f".worker_{distribute.worker_index(strategy)}"))
    if php.output_fraction() is not None or php.conv_fraction() is not None:
      # A layer rate with no layer to act on, before anything is written. In
      # a throwaway graph (no weights are allocated), in float32: Keras'
      # TF1-style layers there do not cast. (A model left with nothing to
      # prune is refused by pruning.wrap when the first run starts.)
      with tf.Graph().as_default():
        pruning.check_rates(self._wrapped(task.thp.seed, float32=True), php)
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
            "versions": provenance.library_versions(),
            "data": self.task.info.to_dict()}

  def _accuracy_runs(self) -> List[str]:
    """The branches whose runs are rows of the summary."""
    return [b.name for b in self.branches if b.reports_accuracy]

  # Other workers than the chief write arrays to their scratch (store
  # redirects them), no metrics, and delete the SavedModels they must save.

  def _write_json(self, path: str, payload) -> None:
    if self.is_chief:
      self.writer.write_json(path, payload)

  def write_npz(self, path: str, arrays) -> None:
    self.writer.write_npz(path, arrays)

  def _save_model(self, path: str, save) -> None:
    """``save(dir)``: every worker must save (collective); only the chief keeps it."""
    save(self.writer.path(path))
    if not self.is_chief:
      fs.rmtree(self.writer.path(path))

  def _branches_at(self, level: int):
    return [b for b in self.branches if level > 0 or b.at_level_0]

  def _level_done(self, level: int) -> bool:
    return self._ticket_done(level) and all(
        self._intact(paths.metrics(paths.run(self.exp_dir, level, b.name)))
        for b in self._branches_at(level))

  # A damaged file (truncated, empty, object arrays: damage from outside,
  # since every write is atomic) is kept as NAME.damaged and what it held is
  # recomputed from the last good state; nothing outside its level changes.

  def _intact(self, path: str) -> bool:
    return self.writer.intact(path, log=self.log)

  def _ticket_done(self, level: int) -> bool:
    """The level's ticket trained: its metrics.json, its next_mask.npz and
    (level 0) rewind.npz all read back whole. Otherwise the ticket is
    retrained from the rewind point (same seed, same numbers on CPU), which
    rewrites all three."""
    d = paths.level(self.exp_dir, level)
    done = self._intact(paths.metrics(d))
    next_mask = paths.next_mask(self.exp_dir, level)
    if self.writer.exists(next_mask):
      done = self._intact(next_mask) and done
    elif self.writer.exists(next_mask + ".damaged"):
      done = False  # Set aside just now (by _level_done).
    else:
      # Experiments from before next_mask.npz: the next level's mask.npz.
      done = done and self.writer.exists(
          paths.mask(paths.level(self.exp_dir, level + 1)))
    if level == 0:
      done = self._intact(paths.rewind(self.exp_dir)) and done
    return done

  # -- one training run (branch_lib.Trainer) ---------------------------------

  def _wrapped(self, seed: int, float32: bool = False):
    model = self.task.build_model(seed=seed, float32=float32)
    return pruning.wrap(model, layers_to_ignore=self.php.ignored_layers(),
                        prune_only=self.php.prune_only or None)

  def _session(self):
    """The one wrapped model every run of this process trains.

    Building, compiling and tracing a model costs more than training LeNet
    for an epoch, so the ticket and every branch of every level reuse one
    compiled model: each run assigns its weights, masks and optimizer state
    (a fresh optimizer, its schedule at the run's start step) explicitly,
    which makes it independent of what ran before it, and a resumed process
    reproduces an uninterrupted one exactly.
    """
    if self._model is None:
      training.set_seed(self.task.thp.seed)
      # Model, wrappers, optimizer and metrics under the strategy's scope.
      with self.task.scope():
        self._model = self._wrapped(self.task.thp.seed)
        self._train_model = training.compile_model(
            self._model, self.task.thp, self.task.steps_per_epoch)
      self._init_weights = snapshot(self._model)
      self._eval_data = self.task.eval_data()
    return self._model, self._train_model

  def model(self):
    return self._session()[0]

  def weights(self) -> Dict[str, np.ndarray]:
    return snapshot(self.model())

  def fresh_weights(self, seed: int) -> Dict[str, np.ndarray]:
    return snapshot(self.task.build_model(seed=seed))

  def rewind_weights(self) -> Dict[str, np.ndarray]:
    if self._rewind_weights is None:
      self._rewind_weights = self.writer.read_npz(paths.rewind(self.exp_dir))
    return self._rewind_weights

  def _checkpoint(self, run_dir: Optional[str]):
    if not self.task.thp.checkpoint_every or run_dir is None:
      return None
    directory = checkpoint_lib.directory_of(run_dir)
    return checkpoint_lib.MidRunCheckpoint(
        directory, self.task.thp.checkpoint_every,
        write_directory=self.writer.path(directory))

  def train(self, weights, masks, *, start: int, seed: int,
            data_seed: Optional[int] = None, run_dir: Optional[str] = None,
            rewind_cb: Optional[RewindCallback] = None) -> dict:
    """Trains the session model from ``weights`` under ``masks``.

    With a checkpoint of this run in ``run_dir``, resumes from it (weights,
    masks and optimizer state as they were at its step).
    """
    task = self.task
    ckpt = self._checkpoint(run_dir)
    model, train_model = self._session()
    # The global seed feeds the data order and augmentation: the same for the
    # ticket and its controls, which differ only in weights or mask.
    data_seed = task.thp.seed if data_seed is None else data_seed
    training.set_seed(data_seed)
    load_weights(model, weights)
    pruning.set_masks(model, masks)
    # A fresh optimizer whose lr schedule starts at ``start`` (as PyTorch's
    # and open_lth's): Adam's bias correction counts from the run's start.
    optimizers.start_run(train_model.optimizer, start)
    train_model.reset_metrics()
    resumed = (ckpt.restore(train_model, start) if ckpt is not None
               else None)
    begin = start if resumed is None else resumed
    if resumed is not None:
      self.log(f"resuming from the checkpoint at step {resumed}")
      if rewind_cb is not None and resumed > rewind_cb.rewind_step:
        # Taken before the cut: it is on disk.
        rewind_cb.weights = self.writer.read_npz(rewind_cb.path)
    callbacks = [cb for cb in (rewind_cb, ckpt) if cb is not None]
    result = training.fit(
        train_model, task.train_data(data_seed),
        steps_per_epoch=task.steps_per_epoch,
        start_step=begin, end_step=task.total_steps,
        boundaries=[self.rewind_step], callbacks=callbacks,
        verbose=training.verbosity(self.quiet))
    metrics = training.evaluate(train_model, self._eval_data)
    densities = pruning.densities(model)
    return {
        "metrics": metrics,
        "density": densities.pop("overall"),
        "density_per_layer": densities,
        "steps": task.total_steps - start,
        "start_step": start,
        "train_seconds": result.seconds,
        "ms_per_step": result.ms_per_step,
        "seed": seed,
        "data_seed": data_seed,
        "replicas": model.distribute_strategy.num_replicas_in_sync,
        "resumed_from_step": resumed,
    }

  # -- levels ----------------------------------------------------------------

  def _masks_for(self, level: int) -> Dict[str, np.ndarray]:
    """The level's mask: its own mask.npz once the level has started, else
    the previous level's next_mask.npz (written into the level as it starts).

    Experiments written before next_mask.npz existed hold the next level's
    mask as ``level_{N+1}/mask.npz``: read as the level's own.
    """
    if level == 0:
      model, _ = self._session()
      return {k: np.ones_like(v) for k, v in pruning.get_masks(model).items()}
    own = paths.mask(paths.level(self.exp_dir, level))
    # Where this process writes it: a worker other than the chief keeps its
    # own copy (from its own next_mask.npz) whether or not the chief, which
    # may be ahead, has written the level's already.
    if fs.exists(self.writer.path(own)):
      try:
        masks = self.writer.read_npz(own)
        self._check_masks(own, masks)
        return masks
      except DamagedFile as e:
        aside = self.writer.set_aside(own)
        self.log(f"{own} is damaged ({e.reason}): kept as "
                 f"{os.path.basename(aside)}, taking the mask again from "
                 f"level {level - 1:02d}")
    masks = self.writer.read_npz(paths.next_mask(self.exp_dir, level - 1))
    self.writer.write_npz(own, masks)
    return masks

  def _check_masks(self, path: str, masks: Dict[str, np.ndarray]) -> None:
    """DamagedFile unless ``masks`` are 0/1 masks of exactly the pruned
    layers, in their shapes."""
    model, _ = self._session()
    want = pruning.get_masks(model)
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

  def run_level(self, level: int) -> dict:
    """Trains the level's ticket (unless done), then its missing branches."""
    d = paths.level(self.exp_dir, level)
    trained = None
    if not self._ticket_done(level):
      trained = self._run_ticket(level)
    for b in self._branches_at(level):
      self._run_branch(level, b, trained)
    path = paths.metrics(d)
    return self.writer.read_json(path) if fs.exists(path) else None

  def _run_ticket(self, level: int) -> Optional[Dict[str, np.ndarray]]:
    """Trains the level's ticket, writes its files (metrics.json last);
    returns its trained weights if it trained from the rewind point (the
    first copy of an instability analysis), else None."""
    d = paths.level(self.exp_dir, level)
    seed = self.task.thp.seed
    began = time.time()
    model, _ = self._session()
    masks = self._masks_for(level)
    if level == 0:
      start, weights = 0, self._init_weights
      if self.pretraining is not None and self.pretraining.separate:
        start, weights = self.pretrain_step, self._pretrain(masks)
      cb = RewindCallback(self.rewind_step,
                          self.writer.path(paths.rewind(self.exp_dir)))
      out = self.train(weights, masks, start=start, seed=seed, rewind_cb=cb,
                       run_dir=d)
      self._rewind_weights = rewind_weights = cb.weights
      self.writer.write_npz(paths.mask(d), masks)
    else:
      start = self.rewind_step
      rewind_weights = self.rewind_weights()
      out = self.train(rewind_weights, masks, start=start, seed=seed,
                       run_dir=d)
    trained = None
    if start == self.rewind_step and any(
        b.wants_ticket_weights for b in self._branches_at(level)):
      trained = snapshot(model)
    if self.save_tickets:
      # The data hparams give trained/ its raw-image signature and the
      # preprocessing numbers in assets/trained.json.
      trained_meta = {
          "model": self.task.mhp.model, "dataset": self.task.dhp.dataset,
          "level": level, "density": out["density"],
          "input_shape": list(self.task.info.input_shape),
          "num_classes": self.task.info.num_classes}
      self._save_model(paths.trained(self.exp_dir, level),
                       lambda path: tickets.save_trained(
                           path, model, self.task.dhp, trained_meta))
    # Always, even at the last level asked for: a later run with a larger
    # --levels (levels are not in the hash) extends this experiment. Kept
    # in this level's directory, so none exists beyond the last level.
    # From the trained weights, identical on every replica and worker.
    next_masks = pruning.prune(model, masks, self.php)
    self.writer.write_npz(paths.next_mask(self.exp_dir, level), next_masks)
    if self.save_tickets:
      self._save_ticket(paths.ticket(self.exp_dir, level), level, masks,
                        rewind_weights, out)
    out.update(level=level, run=paths.TICKET_RUN,
               wall_seconds=time.time() - began,
               rewind_step=self.rewind_step, **self.provenance())
    if self.pretraining is not None:
      out["pretraining"] = self.pretraining.to_dict()
    # Written last: its presence marks the ticket of this level done.
    self._write_json(paths.metrics(d), out)
    self._clear_checkpoint(d)
    return trained

  def _run_branch(self, level: int, b: branch_lib.Branch, trained) -> None:
    """Runs branch ``b`` of the level unless its metrics.json is there."""
    d = paths.run(self.exp_dir, level, b.name)
    if self._intact(paths.metrics(d)):
      return
    began = time.time()
    out = b.run(branch_lib.Level(
        number=level, directory=d, mask=self._masks_for(level),
        rewind_step=self.rewind_step, seed=self.task.thp.seed,
        task=self.task, lottery=self.lhp, trainer=self,
        ticket_weights=trained))
    out.update(level=level, run=b.name, wall_seconds=time.time() - began,
               rewind_step=self.rewind_step, **self.provenance())
    if not self.is_chief:
      return
    b.save(d, out, self.writer)
    self._clear_checkpoint(d)
    extra = b.level_summary(out)
    if extra is not None:
      level_path = paths.metrics(paths.level(self.exp_dir, level))
      row = self.writer.read_json(level_path)
      row[b.name] = extra
      self.writer.write_json(level_path, row)

  def _clear_checkpoint(self, run_dir: str) -> None:
    ckpt = self._checkpoint(run_dir)
    if ckpt is not None:
      ckpt.clear()

  def _pretrain(self, masks) -> Dict[str, np.ndarray]:
    """The dense weights after the pre-training phase, w_t (resumable)."""
    d = paths.pretrain(self.exp_dir)
    weights_path = os.path.join(d, paths.WEIGHTS)
    if self._intact(paths.metrics(d)) and self._intact(weights_path):
      return self.writer.read_npz(weights_path)
    model, _ = self._session()
    load_weights(model, self._init_weights)
    pruning.set_masks(model, masks)
    weights, record = self.pretraining.train(
        model, self.task, eval_data=self._eval_data, quiet=self.quiet,
        ckpt=self._checkpoint(d))
    self.writer.write_npz(weights_path, weights)
    self._write_json(paths.metrics(d), record)
    self._clear_checkpoint(d)
    acc = record.get("metrics", {}).get("test_accuracy")
    self.log(f"pre-trained {record['steps']} steps on {record['subset']} "
             f"({record['num_examples']} examples)"
             + (f": test acc {100 * acc:.2f}%" if acc is not None else ""))
    return weights

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
    self._save_model(path, lambda p: tickets.save(p, model, meta,
                                                  self.task.dhp))

  def run(self) -> str:
    if not self.is_chief:
      return self._run()  # The workers of one run share the chief's.
    with workspace.experiment_lock(self.exp_dir):
      return self._run()

  def _run(self) -> str:
    self._write_json(paths.hparams(self.exp_dir), self.provenance())
    runs = self._accuracy_runs()
    for level in range(self.lhp.levels + 1):
      done = self._level_done(level)
      row = self.run_level(level)
      if not self.is_chief:
        acc = (row or {}).get("metrics", {}).get("test_accuracy")
        self.log(f"worker {distribute.worker_index()}: level {level:02d} done"
                 + (f", test acc {100 * acc:.2f}%" if acc else ""))
        continue
      line = report.level_line(self.exp_dir, level, runs, self.writer)
      self.log(("(done) " if done else "") + line)
      report.write_summary(self.exp_dir, self.lhp.levels, runs, self.writer)
    return paths.summary(self.exp_dir)
