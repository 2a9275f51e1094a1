"""Branches: the controls are registered, and a new one is one class.

A branch registered here (as a user would, in their own module) runs under
``--controls`` through the same runner as the built-in ones: its files land
in ``level_NN/<name>/``, the summary carries its rows, and a rerun skips
it.
"""
import contextlib
import csv
import os

import numpy as np
import pytest

from lottery_tf import descriptions, paths
from lottery_tf.foundations import figures, store
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery import branch
from lottery_tf.lottery.branch import registry
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.pruning.hparams import PruningHparams

GROUPS = (DatasetHparams(dataset="digits"), ModelHparams("lenet_300_100"),
          TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                          training_steps="2ep", seed=3),
          PruningHparams(pruning_fraction=0.5))


class OtherOrder(branch.Branch):
  """The ticket itself trained on another data order: how much of a
  ticket's accuracy is the luck of one order?"""
  name = "other_order"
  help = "the ticket on another data order"
  calls = []

  def run(self, level: branch.Level) -> dict:
    OtherOrder.calls.append(level.number)
    return level.trainer.train(
        level.trainer.rewind_weights(), level.mask, start=level.rewind_step,
        seed=level.seed, data_seed=level.seed + 1, run_dir=level.directory)


@contextlib.contextmanager
def registered(cls):
  registry.register(cls)
  try:
    yield cls
  finally:
    registry.unregister(cls.name)


def _plotted(monkeypatch):
  """{path: (lines, legend)} of every accuracy-vs-density figure saved from
  now on, ``lines`` being {label: (x, y)}: what was drawn, read before
  save_figure closes the figure (a PNG's pixels cannot be asked)."""
  drawn = {}
  save = figures.save_figure

  def spy(fig, path, *args, **kwargs):
    if os.path.basename(path) == paths.PLOT:
      ax = fig.axes[0]
      legend = ax.get_legend()
      drawn[path] = ({line.get_label(): (list(line.get_xdata()),
                                         list(line.get_ydata()))
                      for line in ax.get_lines()},
                     [t.get_text() for t in legend.get_texts()]
                     if legend else [])
    save(fig, path, *args, **kwargs)

  monkeypatch.setattr(figures, "save_figure", spy)
  return drawn


def _find(tmp_path, controls, **lottery):
  lhp = LotteryHparams(levels=2, rewind="3it", controls=controls, **lottery)
  desc = descriptions.Find.of(*GROUPS, lhp)
  runner = desc.runner(str(tmp_path), quiet=True, log=lambda line: None)
  runner.run()
  return runner.exp_dir


def test_the_built_in_branches_are_registered():
  assert branch.names()[:3] == ["reinit", "random_mask", "lmc"]
  assert branch.get("lmc").at_level_0 and not branch.get("reinit").at_level_0


def test_a_registered_branch_runs_under_controls_and_resumes(tmp_path,
                                                            monkeypatch):
  with registered(OtherOrder):
    OtherOrder.calls = []
    drawn = _plotted(monkeypatch)
    exp = _find(tmp_path, "reinit,other_order")
    assert OtherOrder.calls == [1, 2]  # Not at level 0 (the dense network).
    for level in (1, 2):
      m = store.read_json(paths.metrics(
          paths.run(exp, level, "other_order")))
      ticket = store.read_json(paths.metrics(paths.level(exp, level)))
      assert m["run"] == "other_order" and m["level"] == level
      assert m["data_seed"] == 4 and ticket["data_seed"] == 3
      # Same mask, same start: only the data order differs.
      assert m["density"] == ticket["density"]
      assert m["start_step"] == ticket["start_step"] == 3
      assert m["metrics"]["test_accuracy"] != ticket["metrics"][
          "test_accuracy"] or not np.isclose(m["metrics"]["test_loss"],
                                             ticket["metrics"]["test_loss"])
    rows = store.read_json(paths.summary(exp))["rows"]
    assert sorted((r["level"], r["run"]) for r in rows) == [
        (0, "ticket"), (1, "other_order"), (1, "reinit"), (1, "ticket"),
        (2, "other_order"), (2, "reinit"), (2, "ticket")]
    with open(os.path.join(exp, paths.SUMMARY_CSV)) as f:
      table = list(csv.DictReader(f))
    assert [(int(r["level"]), float(r["test_accuracy"])) for r in table
            if r["run"] == "other_order"] == [
                (r["level"], r["test_accuracy"]) for r in rows
                if r["run"] == "other_order"]
    # The summary plot draws the branch as a line of its own, through the
    # dense network (level 0) and its levels, as the built-in controls.
    lines, legend = drawn[os.path.join(exp, paths.PLOT)]
    assert list(lines) == legend == ["ticket", "reinit", "other order",
                                     "dense"]
    dense = [r for r in rows if r["level"] == 0]
    for label, run in (("reinit", "reinit"), ("other order", "other_order")):
      points = sorted(dense + [r for r in rows if r["run"] == run],
                      key=lambda r: -r["density"])
      assert np.allclose(lines[label], [
          [100 * r["density"] for r in points],
          [100 * r["test_accuracy"] for r in points]]), (label, lines[label])
    # The same command again: nothing trains.
    OtherOrder.calls = []
    assert _find(tmp_path, "reinit,other_order") == exp
    assert OtherOrder.calls == []
  with pytest.raises(UserError, match="--controls: unknown .*other_order"):
    LotteryHparams(controls="other_order").validate()


def test_controls_lmc_is_the_instability_branch(tmp_path):
  exp = _find(tmp_path, "lmc", interpolation_points=3)
  for level in (0, 1, 2):
    lmc = store.read_json(paths.metrics(paths.run(exp, level, "lmc")))
    ticket = store.read_json(paths.metrics(paths.level(exp, level)))
    assert len(lmc["rows"]) == 3
    assert ticket["lmc"]["instability"] == lmc["instability"]
    assert os.path.exists(os.path.join(paths.run(exp, level, "lmc"),
                                       "per_example.npz"))
  # Not a row of the accuracy summary; its numbers ride on the ticket's.
  rows = store.read_json(paths.summary(exp))["rows"]
  assert {r["run"] for r in rows} == {"ticket"}
  assert all("instability" in r for r in rows)
