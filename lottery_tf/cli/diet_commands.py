"""Commands of the data-diet and instability work: score, lmc, diet.

Registered in ``commands.COMMANDS``. The pre-training flags of ``find``
(--pretrain_steps, --pretrain_subset, --scores, ...) and the path settings
(--interpolation_points, --barrier_threshold, --lmc_every_level) are
LotteryHparams fields, defined with the other ``find`` flags.
"""
import os

from lottery_tf import paths
from lottery_tf.foundations import fs
from lottery_tf.analysis.hparams import LMCHparams
from lottery_tf.cli import flags as cli_flags
from lottery_tf.cli.flags import FLAGS
from lottery_tf.diet.hparams import DietHparams, ScoreHparams
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.pruning.hparams import PruningHparams

for _cls in (ScoreHparams, DietHparams, LMCHparams):
  cli_flags.define_from(_cls)


def _writer():
  from lottery_tf.cli import commands  # pylint: disable=g-import-not-at-top
  return commands.writer()


def _task_flags():
  return (cli_flags.from_flags(DatasetHparams),
          cli_flags.from_flags(ModelHparams),
          cli_flags.from_flags(TrainingHparams))


def score() -> str:
  """EL2N/GraNd scores of the training set, averaged over an ensemble."""
  from lottery_tf import descriptions  # pylint: disable=g-import-not-at-top
  from lottery_tf.foundations import workspace  # pylint: disable=g-import-not-at-top
  from lottery_tf.diet import scores  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.task import Task  # pylint: disable=g-import-not-at-top
  dhp, mhp, thp = _task_flags()
  shp = cli_flags.from_flags(ScoreHparams)
  shp.validate()
  task = Task(dhp, mhp, thp)
  task.steps(shp.score_steps, "--score_steps")
  workspace.prepare_output_dir(FLAGS.output_dir)
  desc = descriptions.Score(dhp, mhp, thp, shp, name=FLAGS.experiment_name)
  return scores.compute(desc.directory(FLAGS.output_dir), task, shp,
                        quiet=FLAGS.quiet, writer=_writer())


def diet() -> str:
  """The data-diet study: scores, IMP per pre-training arm, instability."""
  from lottery_tf import descriptions  # pylint: disable=g-import-not-at-top
  from lottery_tf.foundations import workspace  # pylint: disable=g-import-not-at-top
  from lottery_tf.diet import pretrain, study  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.task import Task  # pylint: disable=g-import-not-at-top
  dhp, mhp, thp = _task_flags()
  php = cli_flags.from_flags(PruningHparams)
  lhp = cli_flags.from_flags(LotteryHparams)
  shp = cli_flags.from_flags(ScoreHparams)
  dihp = cli_flags.from_flags(DietHparams)
  php.validate()
  # --class_balanced applies to the subset arms; the study's own hparams
  # have no subset.
  lhp.replace(class_balanced=False).validate()
  pretrain.validate(lhp.replace(class_balanced=False))
  shp.validate()
  study.validate(lhp, dihp)
  task = Task(dhp, mhp, thp)
  workspace.prepare_output_dir(FLAGS.output_dir)
  study_dir = descriptions.Diet.of(
      dhp, mhp, thp, php, lhp, shp,
      name=FLAGS.experiment_name).directory(FLAGS.output_dir)
  path = study.run(study_dir, FLAGS.output_dir, task, php, lhp, shp, dihp,
                   quiet=FLAGS.quiet, writer=_writer())
  for line in study.comparison_lines(path):
    print(line)
  return path


# -- lmc ----------------------------------------------------------------------


def _ticket_path(path: str, level: int) -> str:
  """A ticket directory, or the ticket of ``level`` in a find experiment."""
  from lottery_tf import tickets  # pylint: disable=g-import-not-at-top
  if fs.exists(os.path.join(path, tickets.TICKET_JSON)):
    return path
  if not fs.isdir(path):
    raise UserError(f"--ticket: {path} does not exist")
  found = paths.ticket_levels(path)
  if not found:
    raise UserError(f"--ticket: {path} is neither a ticket nor a `find` "
                    "experiment with tickets")
  if level == -1:
    level = found[-1]
  if level not in found:
    raise UserError(f"--lmc_level: {path} has no ticket at level {level} "
                    f"(levels with tickets: {found[0]}..{found[-1]})")
  return paths.ticket(path, level)


def _task_from(recorded: dict, what: str):
  """Task hparams recorded by a run; flags given explicitly take precedence."""
  groups = []
  for cls in (DatasetHparams, ModelHparams, TrainingHparams):
    values = dict(recorded.get(cls.group) or {})
    if not values:
      raise UserError(f"--ticket: {what} does not record its {cls.group} "
                      "hparams")
    try:
      hp = cls.from_dict(values)
    except (UserError, TypeError) as e:
      raise UserError(f"--ticket: {what} records unusable {cls.group} "
                      f"hparams ({e})") from e
    changes = {f: getattr(FLAGS, f) for f in values
               if f != "model" and cli_flags.was_set(f)}
    groups.append(hp.replace(**changes))
  return groups


def lmc() -> str:
  """Instability analysis: two copies from one start, the linear path."""
  from lottery_tf import descriptions, tickets  # pylint: disable=g-import-not-at-top
  from lottery_tf.foundations import store, workspace  # pylint: disable=g-import-not-at-top
  from lottery_tf.analysis import instability  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.task import Task  # pylint: disable=g-import-not-at-top
  lhp = cli_flags.from_flags(LotteryHparams)
  lmhp = cli_flags.from_flags(LMCHparams)
  lmhp.validate()
  lhp.validate()
  source = FLAGS.ticket
  if lmhp.lmc_from == "ticket":
    if not source:
      raise UserError("--ticket: --lmc_from=ticket needs a ticket directory "
                      "or a `find` experiment")
    ticket = tickets.load(_ticket_path(source, lmhp.lmc_level))
    dhp, mhp, thp = _task_from(ticket.meta.get("hparams", {}),
                               f"ticket {ticket.path}")
    task = Task(dhp, mhp, thp)
    if (tuple(task.info.input_shape) != tuple(ticket.meta["input_shape"])
        or task.info.num_classes != ticket.meta["num_classes"]):
      raise UserError(
          f"--dataset: the ticket takes {ticket.meta['input_shape']} images "
          f"and {ticket.meta['num_classes']} classes; {dhp.dataset} gives "
          f"{list(task.info.input_shape)} and {task.info.num_classes}")
    start = instability.from_ticket(ticket)
  elif lmhp.lmc_from == "rewind" and source:
    hparams_path = paths.hparams(source)
    if not fs.exists(hparams_path):
      raise UserError(f"--ticket: {source} is not a `find` experiment "
                      "(no hparams.json)")
    dhp, mhp, thp = _task_from(store.read_json(hparams_path).get(
        "hparams", {}), source)
    task = Task(dhp, mhp, thp)
    start = instability.from_experiment(task, source)
  else:
    if source:
      raise UserError(f"--ticket: not used with --lmc_from={lmhp.lmc_from}")
    dhp, mhp, thp = _task_flags()
    task = Task(dhp, mhp, thp)
    if lmhp.lmc_from == "init":
      start = instability.from_init(task)
    else:
      start = instability.from_rewind(task, task.steps(lhp.rewind, "--rewind"))
  workspace.prepare_output_dir(FLAGS.output_dir)
  desc = descriptions.LMC(
      dhp, mhp, thp, start_kind=start.kind, start_step=start.step,
      source=start.source, interpolation_points=lhp.interpolation_points,
      barrier_threshold=lhp.barrier_threshold, name=FLAGS.experiment_name)
  return instability.run(desc.directory(FLAGS.output_dir), task, start,
                         points=lhp.interpolation_points,
                         threshold=lhp.barrier_threshold, quiet=FLAGS.quiet,
                         writer=_writer())


_TASK = (DatasetHparams, ModelHparams, TrainingHparams)
_OUTPUT = ("output_dir", "experiment_name", "quiet", "verbose")

#: command -> the flags it reads (see commands.FLAGS_OF).
FLAGS_OF = {
    "score": _TASK + (ScoreHparams,) + _OUTPUT,
    "diet": _TASK + (PruningHparams, LotteryHparams, ScoreHparams,
                     DietHparams) + _OUTPUT,
    # The task flags override what a --ticket's run recorded; of the lottery
    # group, the start point and the path settings.
    "lmc": _TASK + (LMCHparams, "ticket", "rewind", "interpolation_points",
                    "barrier_threshold") + _OUTPUT,
}

COMMANDS = {
    "score": score,
    "lmc": lmc,
    "diet": diet,
}
