"""The command table: name -> function returning the results path.

Every command's flags are defined at import (absl needs them before parsing);
the heavy library modules are imported inside the commands.
"""
import os

from lottery_tf.cli import flags as cli_flags
from lottery_tf.cli.flags import FLAGS
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.transfer.hparams import TransferHparams
from lottery_tf.transfer.hparams import GridHparams as _GridHparams

for _cls in (DatasetHparams, ModelHparams, TrainingHparams, PruningHparams,
             LotteryHparams, TransferHparams, _GridHparams):
  cli_flags.define_from(_cls)
# Seeds of one recipe: listed with the IMP flags (find reads it, not only grid).
cli_flags.GROUP_OF["replicates"] = "lottery"


#: Commands that do no training: no strategy to set up.
_NO_TRAINING = ("list", "export", "presets")


#: Where this process writes, set by setup_runtime: None (everything where
#: it belongs) or a multi-worker run's scratch for the non-chief workers.
_WRITER = None


def writer():
  """The store.Writer every command hands its runner."""
  from lottery_tf.foundations import store  # pylint: disable=g-import-not-at-top
  return _WRITER or store.LOCAL


def setup_runtime(command: str) -> None:
  """Creates the process's tf.distribute strategy before any TF work.

  Logical CPU devices and the multi-worker collective server can only be
  configured before TensorFlow runs its first op. Under multi_worker, every
  worker runs the command in lockstep, and the workers other than the chief
  write what they write to their own scratch directory,
  `OUTPUT_DIR/.worker_<i>/` (the store.Writer of :func:`writer`, handed to
  every runner), while reading what is already done from the chief's files.
  """
  global _WRITER
  _WRITER = None
  if command in _NO_TRAINING:
    return
  from lottery_tf.training import train as train_lib  # pylint: disable=g-import-not-at-top
  train_lib.EPOCH_LINES = bool(FLAGS.verbose)
  from lottery_tf.foundations import store  # pylint: disable=g-import-not-at-top
  from lottery_tf.training import distribute  # pylint: disable=g-import-not-at-top
  strategy = distribute.setup(cli_flags.from_flags(TrainingHparams))
  if not distribute.is_chief(strategy) and FLAGS.output_dir:
    _WRITER = store.Writer(FLAGS.output_dir, os.path.join(
        FLAGS.output_dir, f".worker_{distribute.worker_index(strategy)}"))


def train() -> str:
  """Trains a dense model; writes OUTPUT_DIR/<name>-<hash>/metrics.json."""
  from lottery_tf.lottery import dense  # pylint: disable=g-import-not-at-top
  from lottery_tf import descriptions  # pylint: disable=g-import-not-at-top
  from lottery_tf.foundations import workspace  # pylint: disable=g-import-not-at-top

  dhp = cli_flags.from_flags(DatasetHparams)
  mhp = cli_flags.from_flags(ModelHparams)
  thp = cli_flags.from_flags(TrainingHparams)
  dense.validate(dhp, mhp, thp)
  workspace.prepare_output_dir(FLAGS.output_dir)
  desc = descriptions.Train(dhp, mhp, thp, name=FLAGS.experiment_name)
  return dense.run(desc.directory(FLAGS.output_dir), dhp, mhp, thp,
                   quiet=FLAGS.quiet, writer=writer())


def find() -> str:
  """IMP with rewinding, levels 0..N, with controls; resumable."""
  from lottery_tf import descriptions  # pylint: disable=g-import-not-at-top
  from lottery_tf.foundations import workspace  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery import replicates  # pylint: disable=g-import-not-at-top
  replicates.check(FLAGS.replicates)

  desc = descriptions.Find.of(
      cli_flags.from_flags(DatasetHparams), cli_flags.from_flags(ModelHparams),
      cli_flags.from_flags(TrainingHparams),
      cli_flags.from_flags(PruningHparams),
      cli_flags.from_flags(LotteryHparams), name=FLAGS.experiment_name)
  workspace.prepare_output_dir(FLAGS.output_dir)
  if FLAGS.replicates > 1:
    return replicates.run(desc, FLAGS.output_dir, FLAGS.replicates,
                          quiet=FLAGS.quiet, writer=writer())
  task = desc.task()
  return desc.runner(FLAGS.output_dir, task, quiet=FLAGS.quiet,
                     writer=writer()).run()


cli_flags.define(
    cli_flags.flags.DEFINE_string,
    "ticket", "", "A ticket directory (a level's `ticket/`), for export, "
    "transfer and lmc (lmc also takes a find experiment directory).",
    "ticket")
cli_flags.define(
    cli_flags.flags.DEFINE_string,
    "export_dir", "", "export: where to write the verified ticket, its masks "
    "and weights as .npz, and export.json.", "ticket")
cli_flags.define(
    cli_flags.flags.DEFINE_bool,
    "overwrite", False, "export: replace an earlier export in --export_dir "
    "(refused without it).", "ticket")


def export() -> str:
  """Verifies a ticket and exports it with its masks and weights as .npz."""
  from lottery_tf import tickets  # pylint: disable=g-import-not-at-top
  if not FLAGS.ticket:
    raise cli_flags.UserError("--ticket: required (a level's ticket/ directory)")
  if not FLAGS.export_dir:
    raise cli_flags.UserError("--export_dir: required")
  ticket = tickets.load(FLAGS.ticket)
  return tickets.export(ticket, FLAGS.export_dir, overwrite=FLAGS.overwrite)


def transfer() -> str:
  """Trains a ticket on a target dataset (any optimizer), with controls."""
  from lottery_tf import tickets  # pylint: disable=g-import-not-at-top
  from lottery_tf.foundations import workspace  # pylint: disable=g-import-not-at-top
  from lottery_tf.transfer import TransferRunner  # pylint: disable=g-import-not-at-top
  if not FLAGS.ticket:
    raise cli_flags.UserError("--ticket: required (a level's ticket/ directory)")
  if cli_flags.was_set("model"):
    raise cli_flags.UserError("--model: transfer uses the ticket's model; "
                              "drop --model")
  dhp = cli_flags.from_flags(DatasetHparams)
  thp = cli_flags.from_flags(TrainingHparams)
  trhp = cli_flags.from_flags(TransferHparams)
  trhp.validate()
  from lottery_tf.training import optimizers  # pylint: disable=g-import-not-at-top
  optimizers.validate(thp)
  ticket = tickets.load(FLAGS.ticket)
  workspace.prepare_output_dir(FLAGS.output_dir)
  runner = TransferRunner(FLAGS.output_dir, ticket, dhp, thp, trhp,
                          prune_only=FLAGS.prune_only,
                          name=FLAGS.experiment_name, quiet=FLAGS.quiet,
                          writer=writer())
  return runner.run()


def grid() -> str:
  """find on every source, transfer to every target; table, plots, heatmap."""
  from lottery_tf.foundations import workspace  # pylint: disable=g-import-not-at-top
  from lottery_tf.transfer import grid as grid_lib  # pylint: disable=g-import-not-at-top
  dhp = cli_flags.from_flags(DatasetHparams)
  if cli_flags.was_set("dataset"):
    raise cli_flags.UserError("--dataset: grid takes --sources and --targets")
  runner = grid_lib.GridRunner(
      FLAGS.output_dir, dhp, cli_flags.from_flags(ModelHparams),
      cli_flags.from_flags(TrainingHparams),
      cli_flags.from_flags(PruningHparams), cli_flags.from_flags(LotteryHparams),
      cli_flags.from_flags(TransferHparams), cli_flags.from_flags(_GridHparams),
      quiet=FLAGS.quiet, writer=writer())
  workspace.prepare_output_dir(FLAGS.output_dir)
  return runner.run()


def list_() -> str:
  """Prints the datasets, models (with parameter counts) and branches, from
  the stored catalog: no TensorFlow, no model built (lottery_tf.catalog),
  plus anything a plugin has registered in this process."""
  from lottery_tf import catalog  # pylint: disable=g-import-not-at-top
  print("\n".join(catalog.lines(catalog.current())))
  return ""


def presets_() -> str:
  """Prints every preset with its header: paper, expected result, hardware."""
  from lottery_tf import presets  # pylint: disable=g-import-not-at-top
  print(f"presets (in {presets.directory()}; run one with "
        "`lottery_tf COMMAND --preset=NAME`):")
  for name in presets.names():
    head = presets.header(name)
    print(f"\n{name}")
    for key in ("paper", "expected", "hardware", "run"):
      if head.get(key):
        print(f"  {key + ':':<10} {head[key]}")
  return ""


_TASK = (DatasetHparams, ModelHparams, TrainingHparams)
_OUTPUT = ("output_dir", "experiment_name", "quiet", "verbose")

#: command -> the flags it reads (hparam classes: all their fields).
FLAGS_OF = {
    # --replicates (a grid flag too): seeds of the recipe, see
    # lottery_tf.lottery.replicates.
    "find": _TASK + (PruningHparams, LotteryHparams, "replicates") + _OUTPUT,
    "train": _TASK + _OUTPUT,
    # The ticket brings its model and pruning; --prune_only picks which of
    # its masks carry over.
    "transfer": (DatasetHparams, TrainingHparams, TransferHparams, "ticket",
                 "prune_only") + _OUTPUT,
    # Named grid_<model> always; --sources/--targets replace --dataset.
    "grid": _TASK + (PruningHparams, LotteryHparams, TransferHparams,
                     _GridHparams, "output_dir", "quiet", "verbose"),
    "export": ("ticket", "export_dir", "overwrite"),
    "list": (),
    "presets": (),
}


def flags_of(command: str):
  return cli_flags.names_of(*FLAGS_OF[command])


def check_flags(command: str) -> None:
  """Exit 2 naming a flag given that ``command`` does not read."""
  cli_flags.check_used(command, flags_of(command))


def help_for(command: str) -> str:
  doc = (COMMANDS[command].__doc__ or "").strip().splitlines()
  return cli_flags.help_for(command, doc[0] if doc else "",
                            flags_of(command))


COMMANDS = {
    "find": find,
    "train": train,
    "transfer": transfer,
    "grid": grid,
    "export": export,
    "list": list_,
    "presets": presets_,
}

# The data-diet and instability commands (score, lmc, diet).
from lottery_tf.cli import diet_commands  # noqa: E402  pylint: disable=wrong-import-position

COMMANDS.update(diet_commands.COMMANDS)
FLAGS_OF.update(diet_commands.FLAGS_OF)
