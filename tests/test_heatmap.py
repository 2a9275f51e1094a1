"""The grid's heatmap: transfer accuracy relative to a control."""
import os

import numpy as np
import pytest

from lottery_tf import descriptions
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.transfer import grid as grid_lib
from lottery_tf.transfer.hparams import GridHparams, TransferHparams


def _row(kind, source, target, acc, so="sgd", to="adam", level=2):
  return dict(kind=kind, source=source, source_optimizer=so, target=target,
              target_optimizer=to, level=level, density=0.064,
              accuracy_mean=acc, accuracy_std=None, replicates=1)


ROWS = [
    _row("transfer", "a", "t", 0.90), _row("random_ticket", "a", "t", 0.85),
    _row("transfer", "b", "t", 0.80), _row("random_ticket", "b", "t", 0.84),
    _row("own_ticket", "t", "t", 0.88, so="adam"),
    _row("dense", "t", "t", 0.95, so="adam", level=0),
]


def test_each_cell_is_compared_with_its_own_control():
  heat = [r for r in ROWS if r["kind"] == "transfer"]
  srcs, tgts, acc = grid_lib._heat_grid(heat)  # pylint: disable=protected-access
  assert srcs == [("a", "sgd"), ("b", "sgd")] and tgts == [("t", "adam")]
  base = [r for r in ROWS if r["kind"] == "random_ticket"]
  diff = acc - grid_lib._baseline_grid(base, "random_ticket", srcs, tgts)  # pylint: disable=protected-access
  np.testing.assert_allclose(diff[:, 0], [5.0, -4.0], atol=1e-9)
  own = [r for r in ROWS if r["kind"] == "own_ticket"]
  diff = acc - grid_lib._baseline_grid(own, "own_ticket", srcs, tgts)  # pylint: disable=protected-access
  np.testing.assert_allclose(diff[:, 0], [2.0, -8.0], atol=1e-9)


@pytest.mark.parametrize("baseline", ["random_ticket", "own_ticket", "none"])
def test_the_heatmap_is_written_for_every_baseline(tmp_path, baseline):
  paths = grid_lib.plot_grid(ROWS, str(tmp_path), 2, baseline=baseline)
  heat = [p for p in paths if "heatmap" in os.path.basename(p)]
  assert heat == [os.path.join(str(tmp_path), "heatmap_level02.png")]
  assert os.path.getsize(heat[0]) > 0


def test_the_baseline_is_presentation_not_a_new_experiment():
  def grid_hash(**kw):
    return descriptions.Grid.of(
        DatasetHparams(), ModelHparams(model="lenet_300_100"),
        TrainingHparams(), PruningHparams(), LotteryHparams(controls=""),
        TransferHparams(), GridHparams(sources="mnist_5k", targets="digits",
                                       **kw)).hash
  assert grid_hash() == grid_hash(heatmap_baseline="own_ticket")
  assert grid_hash() == grid_hash(heatmap_baseline="none")
