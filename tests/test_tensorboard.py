"""Learning curves: per-epoch history in metrics.json, TensorBoard scalars
per run and the level summary keyed by level."""
import glob
import os

import pytest

from lottery_tf import paths
from lottery_tf.foundations import store, tensorboard
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery import report
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf._keras import tf

EPOCHS = 3
LEVELS = 1


def _scalars(logdir):
  """tag -> sorted [(step, value)] from the event files in ``logdir``."""
  out = {}
  files = glob.glob(os.path.join(logdir, "*tfevents*"))
  assert files, logdir
  for f in files:
    for event in tf.compat.v1.train.summary_iterator(f):
      for v in event.summary.value:
        value = (float(tf.make_ndarray(v.tensor)) if v.HasField("tensor")
                 else v.simple_value)
        out.setdefault(v.tag, []).append((event.step, value))
  return {k: sorted(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  exp_dir = str(tmp_path_factory.mktemp("tb") / "exp")
  task = Task(DatasetHparams(dataset="digits"),
              ModelHparams(model="lenet_300_100"),
              TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                              training_steps=f"{EPOCHS}ep", seed=7))
  LotteryRunner(exp_dir, task, PruningHparams(),
                LotteryHparams(levels=LEVELS, rewind="5it",
                               controls="reinit"),
                quiet=True, log=lambda line: None).run()
  return exp_dir


@pytest.mark.parametrize("run", ["ticket", "reinit"])
def test_run_history_and_event_files(experiment, run):
  for level in range(LEVELS + 1):
    if run != "ticket" and level == 0:
      continue
    m = store.read_json(paths.metrics(paths.run(experiment, level, run)))
    history = m["history"]
    for key in ("loss", "accuracy", "lr"):
      assert len(history[key]) == EPOCHS, (level, run, key, history)
    assert all(v > 0 for v in history["lr"])
    scalars = _scalars(paths.tensorboard_run(experiment, level, run))
    assert {"loss", "accuracy", "lr"} <= set(scalars)
    for key in ("loss", "accuracy", "lr"):
      assert [s for s, _ in scalars[key]] == list(range(1, EPOCHS + 1))
      assert [v for _, v in scalars[key]] == pytest.approx(history[key],
                                                           rel=1e-5)


def test_level_summary_is_keyed_by_level_and_idempotent(experiment):
  rows = report.rows(experiment, LEVELS, ["reinit"])
  for _ in range(2):  # Called after every level: rewrites, no duplicates.
    tensorboard.write_level_summary(experiment, rows)
  scalars = _scalars(paths.tensorboard_summary(experiment))
  ticket = scalars["test_accuracy/ticket"]
  assert [s for s, _ in ticket] == list(range(LEVELS + 1))
  assert [s for s, _ in scalars["test_accuracy/reinit"]] == [1]
  assert [s for s, _ in scalars["density/ticket"]] == [0, 1]
  assert scalars["density/ticket"][1][1] == pytest.approx(
      rows[[r["run"] for r in rows].index("ticket", 1)]["density"], rel=1e-5)


def test_resumed_run_keeps_every_epoch_of_history(tmp_path, monkeypatch):
  from lottery_tf.training import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  task = Task(DatasetHparams(dataset="digits"),
              ModelHparams(model="lenet_300_100"),
              TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                              training_steps=f"{EPOCHS}ep", seed=7,
                              checkpoint_every=task_spe() * 2))
  exp_dir = str(tmp_path / "exp")
  save = checkpoint_lib.MidRunCheckpoint.save

  def save_then_die(self):
    save(self)
    raise KeyboardInterrupt  # Killed right after its first checkpoint.
  monkeypatch.setattr(checkpoint_lib.MidRunCheckpoint, "save", save_then_die)

  def runner():
    return LotteryRunner(exp_dir, task, PruningHparams(),
                         LotteryHparams(levels=0, rewind="0it"),
                         quiet=True, log=lambda line: None)
  with pytest.raises(KeyboardInterrupt):
    runner().run()
  monkeypatch.setattr(checkpoint_lib.MidRunCheckpoint, "save", save)
  runner().run()
  m = store.read_json(paths.metrics(paths.level(exp_dir, 0)))
  assert m["resumed_from_step"] is not None
  for key in ("loss", "accuracy", "lr"):
    assert len(m["history"][key]) == EPOCHS, m["history"]
  scalars = _scalars(paths.tensorboard_run(exp_dir, 0, "ticket"))
  assert [s for s, _ in scalars["loss"]] == list(range(1, EPOCHS + 1))


def task_spe():
  return Task(DatasetHparams(dataset="digits"),
              ModelHparams(model="lenet_300_100"),
              TrainingHparams(batch_size=64, training_steps="1ep")
              ).steps_per_epoch
