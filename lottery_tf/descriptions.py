"""One description per experiment: its hparams, its name and hash, its place.

Every command that writes an experiment directory describes it with one of
these frozen objects. A description holds the command's hparam groups (and,
where results depend on a file's content, that content's digest, read once
when the description is made: hashing itself does no I/O) and derives

* ``hash``: the sha256 prefix of the result-changing, non-default fields
  (open_lth's rule: a new field with a no-op default keeps old names valid);
* ``dirname``: ``<name>-<hash>``, ``name`` being --experiment_name or the
  command's default (``find_<model>_<dataset>``...);
* ``directory(output_dir)``: where the experiment lives; the layout inside
  is :mod:`lottery_tf.paths`'.

tests/test_experiment_names.py pins every description's name through a
series of non-default values: a refactor that renames experiments fails it.
"""
import dataclasses
from typing import Any, ClassVar, Dict, Optional, Tuple

from lottery_tf.foundations import fs
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.foundations import hparams
from lottery_tf.foundations.hparams import Hparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams

#: A file name's limit is 255 bytes on ext4, XFS, APFS, NTFS and GCS object
#: path segments alike; leave room for ".tmp-" names beside it.
MAX_DIRNAME_BYTES = 200


class Description:
  """Base: subclasses are frozen dataclasses naming their hparam groups."""

  command: ClassVar[str] = ""

  def groups(self) -> Tuple[Optional[Hparams], ...]:
    raise NotImplementedError

  def default_name(self) -> str:
    raise NotImplementedError

  def user_name(self) -> str:
    return getattr(self, "name", "")

  def extra(self) -> Dict[str, Any]:
    """What besides the hparams names the experiment (a source's digest)."""
    return {}

  def fields(self) -> Dict[str, Dict[str, Any]]:
    """group -> its result-changing, non-default fields."""
    return hparams.result_fields(*self.groups())

  @property
  def hash(self) -> str:
    return hparams.digest(hparams.payload(
        self.fields(), extra={"command": self.command, **self.extra()}))

  @property
  def dirname(self) -> str:
    name = (self.user_name() or self.default_name()).replace("/", "_")
    base = f"{name}-{self.hash}"
    if len(base.encode()) > MAX_DIRNAME_BYTES:
      raise UserError(
          f"--experiment_name: {name[:40]!r}... makes a directory name of "
          f"{len(base.encode())} bytes; use at most "
          f"{MAX_DIRNAME_BYTES - len(self.hash) - 1}")
    return base

  def directory(self, output_dir: str) -> str:
    return fs.join(output_dir, self.dirname)

  def hparams_dict(self) -> Dict[str, Dict[str, Any]]:
    return {g.group: g.to_dict() for g in self.groups() if g is not None}


def _task_name(command: str, mhp: ModelHparams, dhp: DatasetHparams) -> str:
  return f"{command}_{mhp.model}_{dhp.dataset}"


def read_scores_digest(lottery) -> str:
  """The digest of --scores' content when --pretrain_subset reads it, else
  "" (the path-independent identity of an easy/hard subset). Reads the
  file."""
  if not lottery.scores:
    return ""
  from lottery_tf.diet import scores, subsets  # pylint: disable=g-import-not-at-top
  spec = subsets.parse(lottery.pretrain_subset, strict=False)
  return scores.digest(lottery.scores) if spec and spec.needs_scores else ""


def _lottery_fields(lottery, digest_: str) -> Dict[str, Any]:
  out = lottery.result_fields()
  if "scores" in out:
    if digest_:
      out["scores"] = digest_
    else:
      del out["scores"]
  return out


@dataclasses.dataclass(frozen=True)
class Train(Description):
  """``lottery_tf train``: one dense run."""
  command: ClassVar[str] = "train"
  dataset: DatasetHparams
  model: ModelHparams
  training: TrainingHparams
  name: str = ""

  def groups(self):
    return (self.dataset, self.model, self.training)

  def default_name(self):
    return _task_name("train", self.model, self.dataset)


@dataclasses.dataclass(frozen=True)
class Find(Description):
  """``lottery_tf find``: IMP with rewinding, and its branches.

  ``transfer`` and ``grid`` describe their sources' and targets' own
  tickets with it too, so a ticket is computed once and reused by whoever
  asks for it next. Make it with :meth:`of` (which reads --scores).
  """
  command: ClassVar[str] = "find"
  dataset: DatasetHparams
  model: ModelHparams
  training: TrainingHparams
  pruning: Any  # PruningHparams
  lottery: Any  # LotteryHparams
  name: str = ""
  scores_digest: str = ""

  @classmethod
  def of(cls, dataset, model, training, pruning, lottery, name: str = ""):
    """Checks the flags, then reads --scores (if a subset uses it)."""
    cls(dataset, model, training, pruning, lottery, name).validate()
    return cls(dataset, model, training, pruning, lottery, name,
               read_scores_digest(lottery))

  def groups(self):
    return (self.dataset, self.model, self.training, self.pruning,
            self.lottery)

  def fields(self):
    out = super().fields()
    out[self.lottery.group] = _lottery_fields(self.lottery, self.scores_digest)
    return out

  def default_name(self):
    return _task_name("find", self.model, self.dataset)

  def validate(self) -> None:
    """Flag-only checks (no data read), cheapest first."""
    from lottery_tf.diet import pretrain  # pylint: disable=g-import-not-at-top
    self.pruning.validate()
    self.lottery.validate()
    pretrain.validate(self.lottery)

  def task(self):
    from lottery_tf.lottery.task import Task  # pylint: disable=g-import-not-at-top
    return Task(self.dataset, self.model, self.training)

  def runner(self, output_dir: str, task=None, **kwargs):
    """The LotteryRunner of this experiment, with its rewind point (a
    pre-training phase on a data diet) when --pretrain_steps asks for one.
    ``kwargs``: quiet, log, save_tickets, writer. (The runner and the
    plan check the hparams; :meth:`of` already did, before any data.)"""
    from lottery_tf.diet import pretrain  # pylint: disable=g-import-not-at-top
    from lottery_tf.lottery.runner import LotteryRunner  # pylint: disable=g-import-not-at-top
    task = task or self.task()
    return LotteryRunner(self.directory(output_dir), task, self.pruning,
                         self.lottery, rewind_point=pretrain.plan(
                             task, self.lottery), **kwargs)


@dataclasses.dataclass(frozen=True)
class Score(Description):
  """``lottery_tf score``: EL2N/GraNd scores of the training set.

  Scores do not depend on --training_steps (members train --score_steps).
  """
  command: ClassVar[str] = "score"
  dataset: DatasetHparams
  model: ModelHparams
  training: TrainingHparams
  score: Any  # ScoreHparams
  name: str = ""

  def groups(self):
    return (self.dataset, self.model,
            self.training.replace(
                training_steps=TrainingHparams().training_steps),
            self.score)

  def default_name(self):
    return _task_name("score", self.model, self.dataset)


@dataclasses.dataclass(frozen=True)
class Diet(Description):
  """``lottery_tf diet``: scores, IMP per pre-training arm, instability.

  Named by the study's settings, not by any one arm's (the arms are find
  experiments of their own); the scores file, if given, by its content.
  """
  command: ClassVar[str] = "diet"
  dataset: DatasetHparams
  model: ModelHparams
  training: TrainingHparams
  pruning: Any
  lottery: Any
  score: Any
  name: str = ""
  scores_digest: str = ""

  @classmethod
  def of(cls, dataset, model, training, pruning, lottery, score,
         name: str = ""):
    digest_ = ""
    if lottery.scores:
      from lottery_tf.diet import scores  # pylint: disable=g-import-not-at-top
      digest_ = scores.digest(lottery.scores)
    return cls(dataset, model, training, pruning, lottery, score, name,
               digest_)

  def groups(self):
    return (self.dataset, self.model, self.training, self.pruning,
            self.lottery.replace(lmc_every_level=True, pretrain_subset="",
                                 scores=""),
            self.score)

  def extra(self):
    return {"scores": self.scores_digest} if self.lottery.scores else {}

  def default_name(self):
    return _task_name("diet", self.model, self.dataset)


@dataclasses.dataclass(frozen=True)
class LMC(Description):
  """``lottery_tf lmc``: two copies from one start point, the linear path.

  Named by the start point (its kind, step and the digest of the file it
  came from) and the path's settings.
  """
  command: ClassVar[str] = "lmc"
  dataset: DatasetHparams
  model: ModelHparams
  training: TrainingHparams
  start_kind: str
  start_step: int
  source: Dict[str, Any]  # The start's source; its digests and seed count.
  interpolation_points: int
  barrier_threshold: float
  name: str = ""

  def groups(self):
    return (self.dataset, self.model, self.training)

  def extra(self):
    return {"lmc_from": self.start_kind, "start_step": self.start_step,
            "source": {k: v for k, v in self.source.items()
                       if k.endswith("sha256") or k == "seed"},
            "interpolation_points": self.interpolation_points,
            "barrier_threshold": self.barrier_threshold}

  def default_name(self):
    return _task_name("lmc", self.model, self.dataset)


@dataclasses.dataclass(frozen=True)
class Transfer(Description):
  """``lottery_tf transfer``: a ticket trained on a target dataset.

  Named by the ticket's content (the sha256 of its ticket.json, which
  holds every variable's digest), the target's data and training, and the
  transfer settings.
  """
  command: ClassVar[str] = "transfer"
  dataset: DatasetHparams  # The target's.
  training: TrainingHparams
  transfer: Any  # TransferHparams
  ticket_sha256: str
  prune_only: str
  source_model: str
  source_dataset: str
  source_level: int
  name: str = ""

  def groups(self):
    return (self.dataset, self.training, self.transfer)

  def extra(self):
    return {"ticket": self.ticket_sha256, "prune_only": self.prune_only}

  def default_name(self):
    return (f"transfer_{self.source_model}_{self.source_dataset}"
            f"_l{self.source_level:02d}_to_{self.dataset.dataset}")


@dataclasses.dataclass(frozen=True)
class Grid(Description):
  """``lottery_tf grid``: find on every source, transfer to every target.

  Always named ``grid_<model>``; its sources' finds and its transfers are
  experiments of their own (Find, Transfer), shared with other commands.
  """
  command: ClassVar[str] = "grid"
  dataset: DatasetHparams  # The base: --sources/--targets set the dataset.
  model: ModelHparams
  training: TrainingHparams
  pruning: Any
  lottery: Any  # With controls="" (the grid's finds run none).
  transfer: Any
  grid: Any  # GridHparams
  scores_digest: str = ""

  @classmethod
  def of(cls, dataset, model, training, pruning, lottery, transfer, grid):
    return cls(dataset, model, training, pruning, lottery, transfer, grid,
               read_scores_digest(lottery))

  def groups(self):
    return (self.dataset, self.model, self.training, self.pruning,
            self.lottery, self.transfer, self.grid)

  def fields(self):
    out = super().fields()
    out[self.lottery.group] = _lottery_fields(self.lottery, self.scores_digest)
    return out

  def user_name(self):
    return ""

  def default_name(self):
    return f"grid_{self.model.model}"
