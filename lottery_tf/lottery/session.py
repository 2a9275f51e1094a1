"""One training run of an IMP experiment: the session model every run trains.

Building, compiling and tracing a model costs more than training LeNet for
an epoch, so the ticket and every branch of every level reuse one compiled
model. Each run assigns its weights, masks and optimizer state (a fresh
optimizer, its schedule at the run's start step) explicitly, which makes it
independent of what ran before it, and a resumed process reproduces an
uninterrupted one exactly. This is the :class:`~lottery_tf.lottery.branch.
Trainer` the runner hands its branches.
"""
import os
from typing import Callable, Dict, List, Optional

import numpy as np
from lottery_tf._keras import keras

from lottery_tf import paths, pruning, training
from lottery_tf.foundations import store
from lottery_tf.foundations import tensorboard
from lottery_tf.lottery import branch as branch_lib
from lottery_tf.lottery.task import Task
from lottery_tf.training import checkpoint as checkpoint_lib
from lottery_tf.training import optimizers
from lottery_tf.training.rewind import RewindCallback, load_weights, snapshot

Weights = Dict[str, np.ndarray]

#: The per-epoch history of a checkpointed run so far, beside its checkpoint,
#: so a resumed run's metrics.json holds every epoch.
HISTORY_FILE = "history.json"


class _HistorySaver(keras.callbacks.Callback):
  """Keeps the run's per-epoch history (``prior`` plus this fit's epochs)
  in ``path`` at each epoch edge (a resumed run reads it back)."""

  def __init__(self, path: str, prior: Dict[str, List[float]], writer, *,
               steps_per_epoch: int, end_step: int):
    super().__init__()
    self.path = path
    self.history = {k: list(v) for k, v in prior.items()}
    self.writer = writer
    self.steps_per_epoch = steps_per_epoch
    self.end_step = end_step

  def on_train_batch_end(self, batch, logs=None):
    # At each epoch edge (and the run's end), as training.fit keeps it, and
    # before the epoch's end so that a kill right after the checkpoint the
    # edge takes (MidRunCheckpoint, also at batch end) keeps the epoch. Only
    # with --checkpoint_every, whose callback runs here already.
    step = optimizers.global_step(self.model.optimizer)
    if step % self.steps_per_epoch and step != self.end_step:
      return
    logs = dict(logs or {})
    logs["lr"] = float(optimizers.schedule_of(self.model.optimizer)(step))
    for k, v in logs.items():
      self.history.setdefault(k, []).append(float(v))
    self.writer.write_json(self.path, self.history)


def merge_history(prior: Dict[str, list], more: Dict[str, list]
                  ) -> Dict[str, list]:
  """``prior``'s epochs followed by ``more``'s, as plain floats."""
  out = {k: [float(x) for x in v] for k, v in prior.items()}
  for k, v in more.items():
    out.setdefault(k, []).extend(float(x) for x in v)
  return out


def write_scalars(writer: store.Writer, run_dir: Optional[str],
                  history: Dict[str, list]) -> None:
  """The run's TensorBoard scalars, once, from its final history (the
  chief's; a non-chief's writer is redirected to its scratch directory)."""
  if run_dir is None or writer.redirected:
    return
  tensorboard.write_run_scalars(paths.tensorboard_of_run_dir(run_dir),
                                history)


def wrapped_model(task: Task, php, seed: int, float32: bool = False):
  """The task's model from ``seed``, wrapped for pruning as ``php`` asks."""
  model = task.build_model(seed=seed, float32=float32)
  return pruning.wrap(model, layers_to_ignore=php.ignored_layers(),
                      prune_only=php.prune_only or None)


class Session(branch_lib.Trainer):
  """The one wrapped, compiled model of a process and how a run trains it.

  ``rewind_step``: the lr schedule's boundary every run keeps (the rewind
  point is taken there); ``read_rewind``: reads the experiment's rewind
  weights (rewind.npz) when a run asks for them and the session has not
  taken them itself.
  """

  def __init__(self, task: Task, php, *, rewind_step: int,
               read_rewind: Callable[[], Weights],
               writer: store.Writer = store.LOCAL, quiet: bool = False,
               log=print):
    self.task = task
    self.php = php
    self.rewind_step = rewind_step
    self.writer = writer
    self.quiet = quiet
    self.log = log
    self._read_rewind = read_rewind
    self._rewind = None
    self._model = None
    self._train_model = None
    self._stacked = {}  # streams -> (copies, StackedTrainModel)
    self.init_weights = None  # The initialisation, from --seed.
    self.eval_data = None

  def _ensure(self):
    if self._model is None:
      training.set_seed(self.task.thp.seed)
      # Model, wrappers, optimizer and metrics under the strategy's scope.
      with self.task.scope():
        self._model = wrapped_model(self.task, self.php, self.task.thp.seed)
        self._train_model = training.compile_model(
            self._model, self.task.thp, self.task.steps_per_epoch)
      self.init_weights = snapshot(self._model)
      self.eval_data = self.task.eval_data()
    return self._model, self._train_model

  # -- branch_lib.Trainer -----------------------------------------------------

  def model(self):
    return self._ensure()[0]

  def weights(self) -> Weights:
    return snapshot(self.model())

  def fresh_weights(self, seed: int) -> Weights:
    return snapshot(self.task.build_model(seed=seed))

  def rewind_weights(self) -> Weights:
    if self._rewind is None:
      self._rewind = self._read_rewind()
    return self._rewind

  def set_rewind_weights(self, weights: Weights) -> None:
    """The rewind point as this process just took it (level 0)."""
    self._rewind = weights

  def write_npz(self, path: str, arrays: Weights) -> None:
    self.writer.write_npz(path, arrays)

  def masks(self) -> Weights:
    """The session model's masks, by pruned layer."""
    return pruning.get_masks(self.model())

  def load(self, weights: Weights, masks: Weights):
    """The session model holding ``weights`` under ``masks``; returns it."""
    model = self.model()
    load_weights(model, weights)
    pruning.set_masks(model, masks)
    return model

  def checkpoint(self, run_dir: Optional[str]):
    """The run's mid-run checkpoint (--checkpoint_every), or None."""
    if not self.task.thp.checkpoint_every or run_dir is None:
      return None
    directory = checkpoint_lib.directory_of(run_dir)
    return checkpoint_lib.MidRunCheckpoint(
        directory, self.task.thp.checkpoint_every,
        write_directory=self.writer.path(directory))

  def clear_checkpoint(self, run_dir: str) -> None:
    ckpt = self.checkpoint(run_dir)
    if ckpt is not None:
      ckpt.clear()

  def can_stack(self, plans) -> bool:
    """Side by side where :func:`can_stack` says so, from one start step
    (each data order a stream of its own)."""
    return (len({p.start for p in plans}) == 1 and
            training.can_stack(self.model(), len(plans), self.task.thp))

  def _data_seed(self, plan) -> int:
    return self.task.thp.seed if plan.data_seed is None else plan.data_seed

  def _ensure_stacked(self, streams: tuple):
    """The stacked model for copies on ``streams`` (copy k's stream index),
    built once per shape."""
    if streams not in self._stacked:
      self._ensure()
      with self.task.scope():
        copies = [wrapped_model(self.task, self.php, self.task.thp.seed)
                  for _ in streams]
        self._stacked[streams] = (copies, training.compile_stacked(
            copies, self.task.thp, self.task.steps_per_epoch, streams))
    return self._stacked[streams]

  def train_stacked(self, plans) -> List[dict]:
    """Trains ``plans`` side by side (:meth:`can_stack`); each result as
    :meth:`train`'s, plus its trained ``weights``. Plans of one data seed
    see one stream of batches, plans of another another. The session model
    holds the last plan's weights and masks afterwards."""
    task = self.task
    seeds = list(dict.fromkeys(self._data_seed(p) for p in plans))
    streams = tuple(seeds.index(self._data_seed(p)) for p in plans)
    copies, stacked = self._ensure_stacked(streams)
    start = plans[0].start
    training.set_seed(seeds[0])
    for copy, plan in zip(copies, plans):
      load_weights(copy, plan.weights)
      pruning.set_masks(copy, plan.masks)
    optimizers.start_run(stacked.optimizer, start)
    stacked.reset_metrics()
    result = training.fit(
        stacked, task.train_streams(seeds),
        steps_per_epoch=task.steps_per_epoch, start_step=start,
        end_step=task.total_steps, boundaries=[self.rewind_step],
        verbose=training.verbosity(self.quiet))
    outs = []
    for k, (copy, plan) in enumerate(zip(copies, plans)):
      name = training.copy_name(k)
      history = {key[len(name) + 1:]: value
                 for key, value in result.history.items()
                 if key.startswith(name + "_")}
      history["lr"] = result.history["lr"]
      weights = snapshot(copy)
      # Evaluated as a run one by one is: on the session model.
      self.load(weights, pruning.get_masks(copy))
      out = self._result(result, merge_history({}, history), start=start,
                         seed=plan.seed, data_seed=self._data_seed(plan),
                         run_dir=plan.run_dir, resumed=None)
      # train_seconds and ms_per_step: the stacked step's, shared.
      out.update(stacked_runs=len(plans), weights=weights)
      outs.append(out)
    return outs

  def train(self, weights, masks, *, start: int, seed: int,
            data_seed: Optional[int] = None, run_dir: Optional[str] = None,
            rewind_cb: Optional[RewindCallback] = None) -> dict:
    """Trains the session model from ``weights`` under ``masks``.

    With a checkpoint of this run in ``run_dir``, resumes from it (weights,
    masks and optimizer state as they were at its step).
    """
    task = self.task
    ckpt = self.checkpoint(run_dir)
    model, train_model = self._ensure()
    # The global seed feeds the data order and augmentation: the same for the
    # ticket and its controls, which differ only in weights or mask.
    data_seed = task.thp.seed if data_seed is None else data_seed
    training.set_seed(data_seed)
    self.load(weights, masks)
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
    prior: Dict[str, list] = {}
    saver = None
    if ckpt is not None:
      hist_path = os.path.join(checkpoint_lib.directory_of(run_dir),
                               HISTORY_FILE)
      if resumed is not None and self.writer.exists(hist_path):
        # The epoch edges passed by the checkpoint's step (the history file
        # may be ahead of the checkpoint it resumes from).
        spe = task.steps_per_epoch
        epochs = resumed // spe - start // spe
        prior = {k: v[:epochs]
                 for k, v in self.writer.read_json(hist_path).items()}
      saver = _HistorySaver(hist_path, prior, self.writer,
                            steps_per_epoch=task.steps_per_epoch,
                            end_step=task.total_steps)
    # The saver before the checkpoint: the history is never behind it.
    callbacks = [cb for cb in (rewind_cb, saver, ckpt) if cb is not None]
    result = training.fit(
        train_model, task.train_data(data_seed),
        steps_per_epoch=task.steps_per_epoch,
        start_step=begin, end_step=task.total_steps,
        boundaries=[self.rewind_step], callbacks=callbacks,
        verbose=training.verbosity(self.quiet))
    return self._result(result, merge_history(prior, result.history),
                        start=start, seed=seed, data_seed=data_seed,
                        run_dir=run_dir, resumed=resumed)

  def _result(self, result: training.FitResult, history: Dict[str, list], *,
              start: int, seed: int, data_seed: int, run_dir: Optional[str],
              resumed: Optional[int]) -> dict:
    """A run's metrics, the session model holding its trained weights:
    evaluated, its scalars written."""
    model, train_model = self._ensure()
    metrics = training.evaluate(train_model, self.eval_data)
    write_scalars(self.writer, run_dir, history)
    densities = pruning.densities(model)
    return {
        "metrics": metrics,
        "density": densities.pop("overall"),
        "density_per_layer": densities,
        "steps": self.task.total_steps - start,
        "start_step": start,
        "train_seconds": result.seconds,
        "ms_per_step": result.ms_per_step,
        "seed": seed,
        "data_seed": data_seed,
        "replicas": model.distribute_strategy.num_replicas_in_sync,
        "resumed_from_step": resumed,
        # Per epoch: train loss/accuracy, lr (and val_* where evaluated).
        "history": history,
    }
