"""The Python API: every command as a function, with the flags as keywords.

    import lottery_tf as lt
    r = lt.find(dataset="mnist_5k", model="lenet_300_100", levels=3,
                output_dir="runs")
    r.directory        # the experiment directory
    r.summary          # pandas.DataFrame of summary.csv (one row per run)
    r.ticket(2)        # level 2's ticket (lottery_tf.tickets.Ticket)
    r.figures          # the PNGs the run wrote

Keywords are the command's flags, with the same names, defaults and checks
(`lottery_tf find --help` lists them); ``preset="NAME"`` starts from a
preset as ``--preset`` does, ``flagfile="flags/X.cfg"`` from a flagfile as
``--flagfile`` does (the other keywords override either). A keyword the command does not take, or a
value its flag refuses, raises ``ValueError`` naming it; so does any bad
input the CLI would exit 2 for (:class:`lottery_tf.errors.UserError` is a
``ValueError``). A call resumes what an earlier identical call left, just
as running the same command again does.

The calls share absl's flag registry with the CLI, so they are not
thread-safe; run one at a time per process.
"""
import contextlib
import io
import json
import os
import sys
import types
from typing import Any, Dict, List, Optional

from lottery_tf.errors import UserError

__all__ = ["Result", "find", "train", "transfer", "grid", "score", "lmc",
           "diet", "export"]


def _value(value: Any) -> str:
  if isinstance(value, (list, tuple)):
    return ",".join(str(v) for v in value)
  return str(value)


def _argv(command: str, kwargs: Dict[str, Any], known) -> List[str]:
  argv = ["lottery_tf", command]
  for key, value in kwargs.items():
    if key not in ("preset", "flagfile") and key not in known:
      raise ValueError(f"{command}() got an unexpected keyword {key!r}; "
                       f"`lottery_tf {command} --help` lists the ones it "
                       "takes")
    if value is None:
      continue
    if key == "flagfile":  # first, so that the other keywords override it
      argv.insert(2, f"--flagfile={value}")
    elif isinstance(value, bool):
      argv.append(f"--{key}" if value else f"--no{key}")
    else:
      argv.append(f"--{key}={_value(value)}")
  return argv


def _run(command: str, kwargs: Dict[str, Any]) -> "Result":
  # pylint: disable=g-import-not-at-top
  from absl import flags
  from absl import logging
  from lottery_tf import presets
  from lottery_tf.cli import main
  # Parsing (and unparsing) resets absl's --verbosity; the run is as quiet
  # as the CLI's (TFDS' deprecation warnings, SavedModel's "Assets
  # written"), and the caller's levels (absl's and TensorFlow's logger's)
  # come back after.
  verbosity = logging.get_verbosity()
  commands = main._commands()  # pylint: disable=protected-access
  argv = _argv(command, kwargs, set(commands.flags_of(command)))
  argv = presets.resolve_argv(argv)
  main.FLAGS.unparse_flags()
  try:
    main.FLAGS(argv)
  except flags.Error as e:
    main.FLAGS.unparse_flags()
    logging.set_verbosity(verbosity)
    raise ValueError(main.flag_error_message(e)) from None
  logging.set_verbosity(logging.ERROR)
  tf_logger = tf_level = None
  if command not in main._NO_TENSORFLOW:  # pylint: disable=protected-access
    from lottery_tf._keras import tf
    tf_logger = tf.get_logger()
    tf_level = tf_logger.level
    tf_logger.setLevel("ERROR")
  try:
    commands.check_flags(command)
    commands.setup_runtime(command)
    hush = (contextlib.redirect_stdout(io.StringIO()) if main.FLAGS.quiet
            else contextlib.nullcontext())
    with hush:
      path = commands.COMMANDS[command]()
  finally:
    main.FLAGS.unparse_flags()
    logging.set_verbosity(verbosity)
    if tf_logger is not None:
      tf_logger.setLevel(tf_level)
  return Result(command, path)


class Result:
  """What a command wrote: its directory, summary table, tickets, figures.

  Everything is read from the files, on access, through tf.io.gfile: a
  Result made later from the same path (``Result("find", path)``) is the
  same result.
  """

  def __init__(self, command: str, path: str):
    from lottery_tf.foundations import fs  # pylint: disable=g-import-not-at-top
    self.command = command
    self.path = path
    self.directory = path if fs.isdir(path) else os.path.dirname(path)

  def __repr__(self):
    return f"Result({self.command!r}, {self.path!r})"

  def _read_json(self, path: str) -> dict:
    from lottery_tf.foundations import fs  # pylint: disable=g-import-not-at-top
    with fs.open(path) as f:
      return json.load(f)

  @property
  def hparams(self) -> dict:
    """hparams.json: the recipe, seed and library versions."""
    from lottery_tf import paths  # pylint: disable=g-import-not-at-top
    return self._read_json(paths.hparams(self.directory))

  @property
  def summary(self):
    """The summary as a pandas.DataFrame: summary.csv (find, diet arms),
    grid.csv (grid), else the returned JSON flattened to one row per run
    (transfer: one per run kind; train, score, lmc: one row)."""
    import pandas as pd  # pylint: disable=g-import-not-at-top
    from lottery_tf.foundations import fs  # pylint: disable=g-import-not-at-top
    for name in ("summary.csv", "grid.csv"):
      path = os.path.join(self.directory, name)
      if fs.exists(path):
        with fs.open(path) as f:
          return pd.read_csv(f)
    data = self._read_json(self.path if not fs.isdir(self.path) else
                           os.path.join(self.path, "summary.json"))
    runs = data.get("runs") if isinstance(data, dict) else None
    if isinstance(runs, dict):
      # The run's kind names it (a dense control's own metrics say
      # "ticket": the level-0 run of the target's IMP).
      rows = [{"run": name, **{k: v for k, v in value.items() if k != "run"}}
              for name, value in runs.items()]
    else:
      rows = data if isinstance(data, list) else [data]
    table = pd.json_normalize(rows)
    # One row per run, its numbers first: metrics.test_accuracy ->
    # test_accuracy; the versions and per-epoch history stay in the files.
    table = table[[c for c in table.columns
                   if not c.startswith(("versions.", "history"))]]
    return table.rename(columns=lambda c: c[len("metrics."):]
                        if c.startswith("metrics.") else c)

  def levels(self) -> List[int]:
    """The levels that have a ticket."""
    from lottery_tf import paths  # pylint: disable=g-import-not-at-top
    from lottery_tf.foundations import fs  # pylint: disable=g-import-not-at-top
    if not fs.isdir(self.directory):
      return []
    return paths.ticket_levels(self.directory)

  def ticket(self, level: Optional[int] = None):
    """Level ``level``'s ticket (default: the sparsest there is), read as
    tensors (lottery_tf.tickets.Ticket; ``.build()`` makes the model)."""
    from lottery_tf import paths, tickets  # pylint: disable=g-import-not-at-top
    levels = self.levels()
    if not levels:
      raise ValueError(f"{self.directory}: no tickets here (a `find` "
                       "experiment has one per level)")
    if level is None:
      level = levels[-1]
    if level not in levels:
      raise ValueError(f"level {level}: no ticket in {self.directory}; "
                       f"levels with one: {levels}")
    return tickets.load(paths.ticket(self.directory, level), flag="level")

  def scores(self):
    """The example scores of a ``score`` result (or the scores a ``diet``
    study used) as a pandas.DataFrame indexed by training-example index:
    ``label``, the ensemble mean (``el2n`` or ``grand``) and each member's
    score (``member_0``, ...), read from scores.npz as arrays."""
    import pandas as pd  # pylint: disable=g-import-not-at-top
    from lottery_tf.diet import scores as scores_lib  # pylint: disable=g-import-not-at-top
    from lottery_tf.foundations import fs  # pylint: disable=g-import-not-at-top
    path = os.path.join(self.directory, scores_lib.SCORES_FILE)
    if not fs.exists(path) and self.command == "diet":
      used = {(arm.get("pretraining") or {}).get("scores")
              for arm in self._read_json(os.path.join(
                  self.directory, "summary.json"))["arms"].values()}
      used.discard(None)
      if used:
        path = sorted(used)[0]
    if not fs.exists(path):
      raise ValueError(f"{self.directory}: no scores here (`score` writes "
                       f"{scores_lib.SCORES_FILE})")
    loaded = scores_lib.load(path, flag="scores")
    table = pd.DataFrame({"label": loaded.labels,
                          loaded.meta.get("score", "score"): loaded.scores})
    for m, column in enumerate(loaded.member_scores
                               if loaded.member_scores is not None else []):
      table[f"member_{m}"] = column
    table.index.name = "example"
    return table

  @property
  def figures(self) -> List[str]:
    """Every PNG under the directory."""
    from lottery_tf.foundations import fs  # pylint: disable=g-import-not-at-top
    return [os.path.join(self.directory, p)
            for p in fs.walk_files(self.directory) if p.endswith(".png")]


class _CommandPackage(types.ModuleType):
  """A subpackage named like a command (lottery_tf.transfer, lottery_tf.diet).

  Importing ``lottery_tf.transfer`` makes it the package's attribute
  ``transfer``, in place of the function: calling the package calls the
  function, so ``lt.transfer(...)`` works whichever was loaded first.
  """

  def __call__(self, **kwargs) -> "Result":
    return getattr(sys.modules[__name__],
                   self.__name__.rsplit(".", 1)[1])(**kwargs)


def command_package(name: str) -> None:
  """Makes the package ``name`` callable as its command (see above)."""
  sys.modules[name].__class__ = _CommandPackage


def _ticket_path(kwargs: Dict[str, Any]) -> Dict[str, Any]:
  """``ticket=`` may be a Ticket (``r.ticket(level)``): its directory."""
  ticket = kwargs.get("ticket")
  if ticket is not None and not isinstance(ticket, str):
    kwargs = dict(kwargs, ticket=getattr(ticket, "path", ticket))
  return kwargs


def find(**kwargs) -> Result:
  """Iterative magnitude pruning with rewinding and controls (`lottery_tf
  find`); ``r.ticket(level)`` reads a level's ticket."""
  return _run("find", kwargs)


def train(**kwargs) -> Result:
  """Trains the dense network (`lottery_tf train`)."""
  return _run("train", kwargs)


def transfer(**kwargs) -> Result:
  """Trains ``ticket=`` (a ticket directory, or ``r.ticket(level)``) on another dataset or optimizer (`lottery_tf transfer`)."""
  return _run("transfer", _ticket_path(kwargs))


def export(**kwargs) -> Result:
  """Verifies ``ticket=`` and writes it to ``export_dir=`` as a SavedModel
  and .npz (`lottery_tf export`)."""
  return _run("export", _ticket_path(kwargs))


def grid(**kwargs) -> Result:
  """Tickets on every source, transferred to every target (`lottery_tf
  grid`)."""
  return _run("grid", kwargs)


def score(**kwargs) -> Result:
  """EL2N / forgetting scores of the training set (`lottery_tf score`)."""
  return _run("score", kwargs)


def lmc(**kwargs) -> Result:
  """Linear mode connectivity of two copies from one start (`lottery_tf
  lmc`)."""
  return _run("lmc", kwargs)


def diet(**kwargs) -> Result:
  """The data-diet study (`lottery_tf diet`)."""
  return _run("diet", kwargs)

