"""Carry a ticket onto another dataset (and optimizer), with target controls.

Morcos et al. 2019: every layer but the classifier takes the ticket's mask and
rewind-point weights; the classifier is re-initialised for the target's
classes; the network is trained on the target with any optimizer. Mehta 2019's
variants change which weights sit under the mask, freeze the transferred
layers, or replace the head by a 2-layer MLP.

open_lth's retrain-on-another-dataset path kept the source's class count
because a property forgot to ``return``; here the head is built from the
target's DataInfo and a test pins it for 5 and 100 classes.
"""
import dataclasses
import os
import time
from typing import Dict, Optional, Tuple

import numpy as np

from lottery_tf import data, descriptions
from lottery_tf.foundations import fs, hparams as hp_lib, provenance, store, workspace
from lottery_tf import models, paths, pruning, tickets, training
from lottery_tf._keras import keras
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.foundations.hparams import split_list
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training.rewind import load_weights, named_weights, snapshot
from lottery_tf.transfer.hparams import TransferHparams

CLASSIFIER = models.CLASSIFIER_NAME
HEAD_HIDDEN = "head_fc1"
_RANDOM_TICKET_SEED_OFFSET = 30_011


def target_data_hparams(dhp: DatasetHparams, ticket: tickets.Ticket,
                        trhp: TransferHparams) -> DatasetHparams:
  """The target's preprocessing, brought to the ticket's input if allowed.

  Only what the user left at 0 (the dataset's own) is changed; the data
  pipeline records each change in DataInfo.transforms.
  """
  return _brought_to(dhp, ticket.meta, trhp)


def _brought_to(dhp: DatasetHparams, meta: dict,
                trhp: TransferHparams) -> DatasetHparams:
  if not trhp.resize_to_ticket:
    return dhp
  height, _, channels = meta["input_shape"]
  changes = {}
  if dhp.image_size == 0:
    changes["image_size"] = int(height)
  if dhp.channels == 0:
    changes["channels"] = int(channels)
  return dhp.replace(**changes)


def source_weights(ticket: tickets.Ticket, which: str
                   ) -> Optional[Dict[str, np.ndarray]]:
  """theta_k, theta_S or theta_0 of the source (None: keep a fresh init)."""
  if which == "rewind":
    return ticket.weights
  if which == "trained":
    path = os.path.join(os.path.dirname(fs.abspath(ticket.path)),
                        "trained")
    if not fs.isdir(path):
      raise UserError(f"--transfer_weights: trained needs the source level's "
                      f"trained/ network beside the ticket, and {path} is "
                      "missing")
    return tickets.load_trained_weights(path, "--transfer_weights")
  if which == "init":
    meta = ticket.meta
    return snapshot(models.build(meta["model"], tuple(meta["input_shape"]),
                                 meta["num_classes"], seed=meta.get("seed", 0)))
  return None


def classifier(model: keras.Model):
  """The classifier Dense layer, wrapped or not."""
  for layer in model.layers:
    inner = getattr(layer, "layer", layer)
    if inner.name == CLASSIFIER:
      return inner
  raise ValueError(f"{model.name} has no layer named {CLASSIFIER}")


def head_layers(trhp: TransferHparams) -> Tuple[str, ...]:
  return (CLASSIFIER, HEAD_HIDDEN) if trhp.head == "mlp" else (CLASSIFIER,)


def build_target_model(ticket: tickets.Ticket, info: data.DataInfo,
                       trhp: TransferHparams, seed: int) -> keras.Model:
  """The ticket's architecture for the target's input and classes, wrapped."""
  plain = models.build(ticket.model_name, info.input_shape, info.num_classes,
                       seed=seed)
  if trhp.head == "mlp":
    features = plain.get_layer(CLASSIFIER).input
    init = keras.initializers.GlorotNormal(seed=seed + 1)
    hidden = keras.layers.Dense(trhp.head_hidden, activation="relu",
                                kernel_initializer=init,
                                name=HEAD_HIDDEN)(features)
    logits = keras.layers.Dense(
        info.num_classes, kernel_initializer=keras.initializers.GlorotNormal(
            seed=seed + 2), name=CLASSIFIER)(hidden)
    plain = keras.Model(plain.inputs, logits, name=plain.name)
  prune = ticket.meta.get("pruning", {})
  names = {layer.name for layer in plain.layers}
  ignored = [s for s in split_list(prune.get("layers_to_ignore", ""))
             if s in names and s not in head_layers(trhp)]
  return pruning.wrap(plain, layers_to_ignore=ignored,
                      prune_only=prune.get("prune_only") or None)


def _shape_error(ticket, info, key, want, got):
  h, w, c = ticket.meta["input_shape"]
  th, tw, tc = info.input_shape
  return UserError(
      f"--ticket: {ticket.model_name} built for {th}x{tw}x{tc} target images "
      f"needs {key} of shape {tuple(want)} but the ticket's is {tuple(got)} "
      f"(ticket input {h}x{w}x{c}); let the target be resized "
      f"(--resize_to_ticket) or set --image_size={h} --channels={c}")


def transfer_masks(ticket: tickets.Ticket, model: keras.Model,
                   trhp: TransferHparams, prune_only: str, seed: int
                   ) -> Dict[str, np.ndarray]:
  """The ticket's masks on every transferred layer; the head's own mask."""
  current = pruning.get_masks(model)
  heads = head_layers(trhp)
  out = {}
  for name, mask in current.items():
    if name in heads:
      out[name] = np.ones_like(mask)
      source = ticket.masks.get(CLASSIFIER)
      # The classifier only: the hidden layer of --head=mlp is new, with no
      # source layer whose density it could take, so it stays dense.
      if (trhp.head_mask == "random" and name == CLASSIFIER
          and source is not None):
        density = float(source.mean())
        rng = np.random.default_rng(seed)
        flat = np.zeros(mask.size, np.float32)
        flat[rng.permutation(mask.size)[:int(round(density * mask.size))]] = 1
        out[name] = flat.reshape(mask.shape)
      continue
    if prune_only == "conv" and mask.ndim < 3:
      out[name] = np.ones_like(mask)  # Mehta: dense layers stay dense
      continue
    if name not in ticket.masks:
      raise UserError(f"--ticket: has no mask for layer {name!r} of "
                      f"{ticket.model_name}")
    if ticket.masks[name].shape != mask.shape:
      raise UserError(f"--ticket: mask of layer {name!r} has shape "
                      f"{ticket.masks[name].shape}, the target model needs "
                      f"{mask.shape}")
    out[name] = ticket.masks[name].astype(np.float32)
  return out


def prepare(ticket: tickets.Ticket, info: data.DataInfo, trhp: TransferHparams,
            *, seed: int, prune_only: str = "") -> Tuple[keras.Model, dict]:
  """The transferred, wrapped model ready to train on the target."""
  model = build_target_model(ticket, info, trhp, seed)
  heads = head_layers(trhp)
  weights = source_weights(ticket, trhp.transfer_weights)
  if weights is not None:
    target = named_weights(model)
    chosen = {}
    for key, var in target.items():
      layer = key.split("/")[0]
      if layer in heads:
        continue
      if key not in weights:
        raise UserError(f"--ticket: has no weight {key} for "
                        f"{ticket.model_name}")
      if tuple(weights[key].shape) != tuple(var.shape):
        raise _shape_error(ticket, info, key, var.shape, weights[key].shape)
      chosen[key] = weights[key]
    load_weights(model, chosen, skip=heads)
  masks = transfer_masks(ticket, model, trhp, prune_only, seed)
  pruning.set_masks(model, masks)
  if trhp.freeze_transferred:
    for layer in model.layers:
      inner = getattr(layer, "layer", layer)
      if inner.name not in heads:
        layer.trainable = False
  return model, masks


@dataclasses.dataclass
class TransferResult:
  path: str
  summary: dict


def trained_layers(model: keras.Model):
  """(layers that train, frozen layers) among those with weights, by name."""
  trains, frozen = [], []
  for layer in model.layers:
    if not layer.weights:
      continue
    inner = getattr(layer, "layer", layer)
    (trains if layer.trainable else frozen).append(inner.name)
  return trains, frozen


def _fit_and_eval(model, task: Task, quiet: bool) -> dict:
  train_model = training.compile_model(model, task.thp, task.steps_per_epoch)
  result = training.fit(
      train_model, task.train_data(), steps_per_epoch=task.steps_per_epoch,
      start_step=0, end_step=task.total_steps,
      verbose=training.verbosity(quiet))
  metrics = training.evaluate(train_model, task.eval_data())
  densities = pruning.densities(model)
  trains, frozen = trained_layers(model)
  return {"metrics": metrics, "density": densities.pop("overall"),
          "density_per_layer": densities, "trained_layers": trains,
          "frozen_layers": frozen, "steps": result.steps,
          "ms_per_step": result.ms_per_step, "train_seconds": result.seconds,
          "history": {k: [float(x) for x in v]
                      for k, v in result.history.items()}}


def own_find_description(dhp: DatasetHparams, mhp: ModelHparams,
                         thp: TrainingHparams, meta: dict,
                         with_dense_only: bool = False):
  """The target's own IMP (descriptions.Find) for a ticket's ``meta``: the
  source's pruning recipe and rewind point, to the ticket's level (0: the
  dense network only). ``dhp``: the target's, brought to the ticket
  (:func:`target_data_hparams`)."""
  php = PruningHparams.from_dict(meta.get("pruning", {}))
  level = 0 if with_dense_only else int(meta.get("level", 0))
  lhp = LotteryHparams(levels=level, rewind=meta.get("rewind", "0it"),
                       controls="")
  return descriptions.Find.of(dhp, mhp, thp, php, lhp)


def own_find_of(dhp: DatasetHparams, thp: TrainingHparams,
                trhp: TransferHparams, meta: dict,
                with_dense_only: bool = False):
  """The own IMP a TransferRunner(ticket, dhp, thp, trhp) reads, from the
  ticket's ``meta`` (its ticket.json) alone: what a driver that schedules
  it needs, without the ticket's weights."""
  return own_find_description(_brought_to(dhp, meta, trhp),
                              ModelHparams(model=meta["model"]), thp, meta,
                              with_dense_only)


class TransferRunner:
  """One ticket onto one target, plus the target's controls; resumable."""

  def __init__(self, output_dir: str, ticket: tickets.Ticket,
               dhp: DatasetHparams, thp: TrainingHparams, trhp: TransferHparams,
               *, prune_only: str = "", name: str = "", quiet: bool = False,
               log=print, writer: store.Writer = store.LOCAL):
    trhp.validate()
    PruningHparams(prune_only=prune_only).check()
    self.writer = writer
    self.ticket = ticket
    self.trhp = trhp
    self.prune_only = prune_only
    self.quiet = quiet
    self.log = log
    self.output_dir = output_dir
    self.dhp = target_data_hparams(dhp, ticket, trhp)
    self.mhp = ModelHparams(model=ticket.model_name)
    self.task = Task(self.dhp, self.mhp, thp)
    self.source = {
        "ticket": fs.abspath(ticket.path),
        "ticket_sha256": store.sha256_file(
            os.path.join(ticket.path, tickets.TICKET_JSON)),
        "model": ticket.model_name, "dataset": ticket.meta.get("dataset"),
        "optimizer": ticket.meta.get("optimizer"),
        "level": ticket.meta.get("level"), "density": ticket.meta.get("density"),
    }
    self.description = descriptions.Transfer(
        self.dhp, thp, trhp, ticket_sha256=self.source["ticket_sha256"],
        prune_only=prune_only, source_model=ticket.model_name,
        source_dataset=ticket.meta.get("dataset"),
        source_level=ticket.meta.get("level", 0), name=name)
    self.exp_dir = self.description.directory(output_dir)

  def provenance(self) -> dict:
    return {"hparams": hp_lib.to_json_dict(self.dhp, self.task.thp, self.trhp),
            "source": self.source, "seed": self.task.thp.seed,
            "prune_only": self.prune_only,
            "versions": provenance.library_versions(),
            "data": self.task.info.to_dict()}

  def _run_once(self, kind: str) -> dict:
    path = paths.metrics(os.path.join(self.exp_dir, kind))
    if fs.exists(path):
      return self.writer.read_json(path)
    began = time.time()
    seed = self.task.thp.seed
    training.set_seed(seed)
    if kind == "transfer":
      with self.task.scope():
        model, _ = prepare(self.ticket, self.task.info, self.trhp, seed=seed,
                           prune_only=self.prune_only)
    else:
      # Random ticket: random mask at the same per-layer density, fresh init,
      # trained like the transferred ticket: under --freeze_transferred the
      # same layers stay frozen (a frozen random body is Mehta's "random
      # features" baseline).
      with self.task.scope():
        model, masks = prepare(self.ticket, self.task.info, self.trhp.replace(
            transfer_weights="random"), seed=seed +
                               _RANDOM_TICKET_SEED_OFFSET,
                               prune_only=self.prune_only)
      random = pruning.random_masks(masks, seed=seed + _RANDOM_TICKET_SEED_OFFSET)
      pruning.set_masks(model, random)
      training.set_seed(seed)
    out = _fit_and_eval(model, self.task, self.quiet)
    out.update(run=kind, wall_seconds=time.time() - began,
               num_classes=self.task.info.num_classes,
               classifier_units=classifier(model).units,
               **self.provenance())
    if not self.writer.redirected:
      from lottery_tf.foundations import tensorboard  # pylint: disable=g-import-not-at-top
      tensorboard.write_run_scalars(
          os.path.join(paths.tensorboard(self.exp_dir), kind), out["history"])
    self.writer.write_json(path, out)
    return out

  def own_find(self, with_dense_only: bool = False) -> LotteryRunner:
    """IMP on the target with the source's pruning recipe, to its level."""
    return own_find_of(
        self.dhp, self.task.thp, self.trhp, self.ticket.meta,
        with_dense_only).runner(
            self.output_dir, self.task, quiet=self.quiet,
            # Labelled: its levels are the target's own IMP, not the
            # transfer's (and take most of a transfer's time).
            log=lambda line: self.log("[own ticket] " + line),
            label=f"own ticket: IMP on {self.task.dhp.dataset}",
            writer=self.writer)

  def run(self) -> str:
    with workspace.experiment_lock(self.exp_dir):
      return self._run()

  def _run(self) -> str:
    fs.makedirs(self.exp_dir)
    summary = {"source": self.source, "target": self.dhp.dataset,
               "target_optimizer": self.task.thp.optimizer, "runs": {}}
    summary["runs"]["transfer"] = self._run_once("transfer")
    controls = self.trhp.control_list()
    if "random_ticket" in controls:
      summary["runs"]["random_ticket"] = self._run_once("random_ticket")
    if "own_ticket" in controls or "dense" in controls:
      runner = self.own_find(with_dense_only="own_ticket" not in controls)
      # Read, not rerun, when done: the cells of a grid on Ray read one own
      # IMP at the same time (and one done to a higher level keeps its
      # summary).
      if not runner.all_done():
        runner.run()
      level = runner.lhp.levels
      # The target's own IMP trains every layer (it has nothing transferred
      # to freeze); recorded as such beside the frozen runs.
      for kind, lvl in (("own_ticket", level), ("dense", 0)):
        if kind in controls:
          m = self.writer.read_json(paths.metrics(paths.level(runner.exp_dir,
                                                            lvl)))
          m["experiment"] = runner.exp_dir
          m.setdefault("trained_layers", "all")
          m.setdefault("frozen_layers", [])
          summary["runs"][kind] = m
    summary["provenance"] = self.provenance()
    path = os.path.join(self.exp_dir, "transfer.json")
    self.writer.write_json(path, summary)
    parts = [f"{k} {100 * v['metrics']['test_accuracy']:.2f}% "
             f"(density {100 * v['density']:.1f}%)"
             for k, v in summary["runs"].items()]
    self.log(f"{self.source['dataset']} -> {self.dhp.dataset}: "
             + ", ".join(parts))
    return path
