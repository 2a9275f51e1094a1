"""Per-example difficulty scores: EL2N and GraNd (Paul et al. 2021), resumably.

Each of ``ensemble_size`` networks is trained ``score_steps`` steps from its
own seed (initialisation and data order, with the task's recipe), then
scored on the un-augmented train set; the scores are averaged.

Layout of a score experiment (``lottery_tf score``):

  score_<model>_<dataset>-<hash>/
    members/member_00.npz   one network's scores (written when it is done)
    scores.npz              the ensemble's scores, the file --scores reads
    summary.json            per member and overall, easiest/hardest indices
    scores_histogram.png, examples_easy_hard.png

``scores.npz`` (``allow_pickle=False``): ``scores`` float32 [n] keyed by the
example index (position in the train split as ``data.load(..., training=
False)`` yields it), ``member_scores`` [ensemble, n], ``labels`` int32 [n] and
``meta``, a JSON string naming the dataset, split and the hparams that fix
the indexing, so that a file is never applied to other data.
"""
import dataclasses
import json
import os
import time
import zipfile
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from lottery_tf.foundations import fs
from lottery_tf import data, training
from lottery_tf.foundations import hparams as hp_lib, provenance, store
from lottery_tf.analysis import per_example
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.training import optimizers
from lottery_tf.training.rewind import load_weights, snapshot

FORMAT = "lottery_tf.scores"
FORMAT_VERSION = 1
SCORES_FILE = "scores.npz"
# The DatasetHparams fields that decide which example has which index.
INDEXING_FIELDS = ("dataset", "classes", "validation_fraction",
                   "train_examples")
# Ensemble members do not share an initialisation with the networks of an
# IMP run on the same --seed.
_MEMBER_SEED_OFFSET = 50_021


def member_seed(seed: int, member: int) -> int:
  return int(seed) + _MEMBER_SEED_OFFSET + int(member)


# ----------------------------------------------------------------------------
# Computing.


def _indexing(dhp: DatasetHparams) -> dict:
  return {k: getattr(dhp, k) for k in INDEXING_FIELDS}


def compute(exp_dir: str, task, shp, *, quiet: bool = False,
            log: Callable[[str], None] = print,
            writer: store.Writer = store.LOCAL) -> str:
  """Trains and scores the ensemble (skipping finished members).

  Returns the path of summary.json; scores.npz is beside it.
  """
  shp.validate()
  summary_path = os.path.join(exp_dir, "summary.json")
  if fs.exists(summary_path) and fs.exists(
      os.path.join(exp_dir, SCORES_FILE)):
    log(f"scores already computed: {os.path.join(exp_dir, SCORES_FILE)}")
    return summary_path
  steps = task.steps(shp.score_steps, "--score_steps")
  n = task.info.num_examples["train"]
  began = time.time()
  members = _members(exp_dir, task, shp, steps, n, quiet, log, writer)
  labels = _common_labels(exp_dir, members)
  member_scores = np.stack([r["scores"] for r in members]).astype(np.float32)
  scores = member_scores.mean(axis=0)
  meta = _meta(task, shp, members, n, steps)
  writer.write_npz(os.path.join(exp_dir, SCORES_FILE), {
      "scores": scores, "member_scores": member_scores,
      "labels": labels.astype(np.int32), "meta": np.array(json.dumps(meta))})
  _plot(exp_dir, task, shp, scores, labels, steps, writer)
  summary = _summary(exp_dir, shp, meta, members, scores, labels, n, began)
  writer.write_json(summary_path, summary)
  quantiles = summary["quantiles"]
  log(f"{shp.score} scores of {n} {task.info.name} training examples, "
      f"{len(members)} networks x {steps} steps: median "
      f"{quantiles['0.5']:.4f}, 10%-90% "
      f"{quantiles['0.1']:.4f}-{quantiles['0.9']:.4f}")
  return summary_path


@dataclasses.dataclass(frozen=True)
class _Scorer:
  """What every member trains and is scored with."""
  model: Any
  train_model: Any  # `model` compiled.
  forward_data: Any  # The train split, un-augmented, for losses.
  grad_data: Any  # The same, in batches small enough for GraNd.


def _scorer(task) -> _Scorer:
  # One compiled model for the whole ensemble: each member assigns its
  # own initialisation and a fresh optimizer.
  thp = task.thp
  training.set_seed(thp.seed)
  with task.scope():
    model = task.build_model(seed=thp.seed)
    train_model = training.compile_model(model, thp, task.steps_per_epoch)
  forward_data = data.load(task.dhp, "train", batch_size=1000,
                           with_index=True)
  # Per-example gradients of a batch are held at once: small batches.
  grad_data = data.load(task.dhp, "train", batch_size=32, with_index=True)
  return _Scorer(model, train_model, forward_data, grad_data)


def _members(exp_dir: str, task, shp, steps: int, n: int, quiet: bool,
             log: Callable[[str], None], writer: store.Writer) -> List[dict]:
  """Every member's record: read if saved, else trained, scored and saved.

  The model is built only once a member needs training.
  """
  members, scorer = [], None
  for m in range(shp.ensemble_size):
    path = os.path.join(exp_dir, "members", f"member_{m:02d}.npz")
    if fs.exists(path):
      members.append(writer.read_npz(path))
      continue
    if scorer is None:
      scorer = _scorer(task)
    record, values = _member(scorer, task, shp, m, steps, n, quiet)
    writer.write_npz(path, record)
    members.append(record)
    log(f"member {m + 1}/{shp.ensemble_size} (seed {int(record['seed'])}): "
        f"{steps} steps, train acc "
        f"{100 * float(record['train_accuracy']):.2f}%, mean "
        f"{shp.score} {float(values.mean()):.4f}")
  return members


def _member(scorer: _Scorer, task, shp, m: int, steps: int, n: int,
            quiet: bool) -> Tuple[dict, np.ndarray]:
  """Member `m` trained from its own seed and scored: its record, scores."""
  seed = member_seed(task.thp.seed, m)
  began = time.time()
  training.set_seed(seed)
  load_weights(scorer.model, snapshot(task.build_model(seed=seed)))
  optimizers.start_run(scorer.train_model.optimizer, 0)
  scorer.train_model.reset_metrics()
  if steps:
    training.fit(scorer.train_model, task.train_data(seed=seed),
                 steps_per_epoch=task.steps_per_epoch, start_step=0,
                 end_step=steps, verbose=training.verbosity(quiet))
  forward = per_example.stats(scorer.model, scorer.forward_data, n)
  if shp.score == "grand":
    values = per_example.grad_norms(scorer.model, scorer.grad_data,
                                    n)["grand"]
  else:
    values = forward["el2n"]
  record = {
      "scores": values.astype(np.float32),
      "labels": forward["labels"].astype(np.int32),
      "train_accuracy": np.float32(forward["correct"].mean()),
      "train_loss": np.float32(forward["loss"].mean()),
      "seed": np.int64(seed),
      "seconds": np.float32(time.time() - began),
  }
  return record, values


def _common_labels(exp_dir: str, members: List[dict]) -> np.ndarray:
  """The labels every member was scored on (UserError if they differ)."""
  labels = members[0]["labels"]
  for m, record in enumerate(members):
    if not np.array_equal(record["labels"], labels):
      raise UserError(f"{exp_dir}: member {m} was scored on other data "
                      "(labels differ); delete the directory and rerun")
  return labels


def _meta(task, shp, members: List[dict], n: int, steps: int) -> dict:
  """scores.npz's `meta`: what was scored, how, and by which hparams."""
  info = task.info
  return {
      "format": FORMAT, "format_version": FORMAT_VERSION,
      "score": shp.score, "dataset": info.name, "split": "train",
      "num_examples": int(n), "num_classes": int(info.num_classes),
      "indexing": _indexing(task.dhp),
      "index": "position in the train split as data.load(hp, 'train', "
               "training=False) yields it",
      "model": task.mhp.model, "ensemble_size": shp.ensemble_size,
      "score_steps": shp.score_steps, "steps": int(steps),
      "seeds": [int(r["seed"]) for r in members],
      "hparams": hp_lib.to_json_dict(task.dhp, task.mhp, task.thp, shp),
      "versions": provenance.library_versions(),
  }


def _plot(exp_dir: str, task, shp, scores: np.ndarray, labels: np.ndarray,
          steps: int, writer: store.Writer):
  from lottery_tf.diet import plots  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery import report  # pylint: disable=g-import-not-at-top
  dhp = task.dhp
  name = report.score_name(shp.score)
  title = (f"{name} scores of {len(scores):,} {report.dataset_name(dhp.dataset)}"
           f" training examples: mean of {shp.ensemble_size} "
           f"{report.model_name(task.mhp.model)}"
           f"{'s' if shp.ensemble_size > 1 else ''} after {steps} steps")
  plots.histogram(scores, labels, os.path.join(exp_dir,
                                               "scores_histogram.png"),
                  score=shp.score, title=title, writer=writer)
  plots.easy_hard_grid(dhp, scores, labels,
                       os.path.join(exp_dir, "examples_easy_hard.png"),
                       score=shp.score, writer=writer)


def _summary(exp_dir: str, shp, meta: dict, members: List[dict],
             scores: np.ndarray, labels: np.ndarray, n: int,
             began: float) -> dict:
  """summary.json: per member and overall, easiest and hardest indices."""
  order = np.lexsort((np.arange(n), scores))
  rows = [{"member": m, "seed": int(r["seed"]),
           "train_accuracy": float(r["train_accuracy"]),
           "train_loss": float(r["train_loss"]),
           f"mean_{shp.score}": float(r["scores"].mean()),
           "rank_correlation_with_ensemble": _spearman(r["scores"], scores)}
          for m, r in enumerate(members)]
  return {
      "command": "score",
      "scores": os.path.join(exp_dir, SCORES_FILE),
      "meta": meta,
      "rows": rows,
      "quantiles": {f"{q:g}": float(np.quantile(scores, q))
                    for q in (0, 0.1, 0.25, 0.5, 0.75, 0.9, 1)},
      "per_class_mean": {int(c): float(scores[labels == c].mean())
                         for c in np.unique(labels)},
      "easiest": [int(i) for i in order[:20]],
      "hardest": [int(i) for i in order[::-1][:20]],
      "wall_seconds": time.time() - began,
  }


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
  if len(a) < 2:
    return 1.0
  ra = np.argsort(np.argsort(a)).astype(np.float64)
  rb = np.argsort(np.argsort(b)).astype(np.float64)
  c = np.corrcoef(ra, rb)[0, 1]
  return float(c) if np.isfinite(c) else 0.0


# ----------------------------------------------------------------------------
# Reading.


def resolve(path: str, flag: str = "--scores") -> str:
  """The scores.npz that ``path`` (a file or a score experiment) names."""
  if fs.isdir(path):
    inner = os.path.join(path, SCORES_FILE)
    if not fs.exists(inner):
      raise UserError(f"{flag}: {path} is a directory without {SCORES_FILE}; "
                      "pass the scores.npz of a `lottery_tf score` run")
    return inner
  if not fs.exists(path):
    raise UserError(f"{flag}: {path} does not exist")
  return path


def digest(path: str) -> str:
  """sha256 of the scores file (its identity in experiment hashes).

  A path that does not resolve is returned as is: validation reports it.
  """
  try:
    return "sha256:" + store.sha256_file(resolve(path))
  except (UserError, OSError):
    return path


class Scores:
  """A validated scores file."""

  def __init__(self, path: str, scores: np.ndarray, labels: np.ndarray,
               meta: dict, member_scores: Optional[np.ndarray] = None):
    self.path = path
    self.scores = scores
    self.labels = labels
    self.meta = meta
    #: [ensemble, n], each member's score (None if the file has none).
    self.member_scores = member_scores


def load(path: str, dhp: Optional[DatasetHparams] = None,
         num_examples: Optional[int] = None, labels: Optional[np.ndarray] = None,
         flag: str = "--scores") -> Scores:
  """Reads and checks a scores file; UserError naming ``flag`` if unusable.

  With ``dhp`` the file must be for that dataset's train split and indexing;
  with ``num_examples`` and ``labels`` (the train split's, by index) the
  file's must match, which catches scores of different data under the same
  name.
  """
  file = resolve(path, flag)
  try:
    arrays = store.read_npz(file)
    meta = json.loads(str(arrays["meta"]))
    scores = np.asarray(arrays["scores"], np.float64)
    file_labels = np.asarray(arrays["labels"], np.int64)
    members = (np.asarray(arrays["member_scores"], np.float64)
               if "member_scores" in arrays else None)
  except (OSError, ValueError, KeyError, TypeError, EOFError,
          zipfile.BadZipFile) as e:
    detail = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise UserError(f"{flag}: {file} is not a readable scores file "
                    f"({detail})") from e
  if not isinstance(meta, dict) or meta.get("format") != FORMAT:
    raise UserError(f"{flag}: {file} is not a lottery_tf scores file")
  if scores.ndim != 1 or file_labels.shape != scores.shape:
    raise UserError(f"{flag}: {file} is corrupt (scores {scores.shape}, "
                    f"labels {file_labels.shape})")
  if members is not None and (members.ndim != 2 or
                              members.shape[1:] != scores.shape):
    raise UserError(f"{flag}: {file} is corrupt (member_scores "
                    f"{members.shape}, scores {scores.shape})")
  if not np.all(np.isfinite(scores)):
    raise UserError(f"{flag}: {file} holds non-finite scores")
  if meta.get("split") != "train":
    raise UserError(f"{flag}: {file} scores the {meta.get('split')!r} split, "
                    "not train")
  if dhp is not None:
    want = _indexing(dhp)
    have = meta.get("indexing", {})
    if have != want:
      diff = ", ".join(f"{k}={have.get(k)!r} (here {want[k]!r})"
                       for k in INDEXING_FIELDS if have.get(k) != want[k])
      raise UserError(f"{flag}: {file} holds scores of another dataset: "
                      f"{diff}")
  if num_examples is not None and len(scores) != num_examples:
    raise UserError(f"{flag}: {file} has {len(scores)} scores but "
                    f"{meta.get('dataset')} train has {num_examples} examples")
  if labels is not None and not np.array_equal(file_labels, labels):
    raise UserError(f"{flag}: {file} was computed on other data: its labels "
                    f"differ from {meta.get('dataset')} train's")
  return Scores(file, scores, file_labels, meta, members)


def train_labels(dhp: DatasetHparams, num_examples: int) -> np.ndarray:
  """The train split's labels by example index."""
  labels = np.full(num_examples, -1, np.int64)
  for _, y, index in data.load(dhp, "train", batch_size=4096,
                               with_index=True):
    labels[index.numpy()] = y.numpy()
  return labels

