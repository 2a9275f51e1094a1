"""The Writer a runner is handed decides where everything it writes goes.

The workers of a multi-worker run other than the chief get a Writer that
sends their writes to a scratch directory (tests/test_distribute.py runs
that for real); here one process is handed such a Writer and nothing lands
outside the scratch, while reads prefer its own copies.
"""
import os

from lottery_tf import descriptions, paths
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.foundations import store
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training.hparams import TrainingHparams


def _files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root)
                for d, _, fs in os.walk(root) for f in fs)


def test_a_writer_maps_paths_under_its_root_and_reads_its_own_copy(tmp_path):
  root, scratch = str(tmp_path / "runs"), str(tmp_path / "runs" / ".w1")
  w = store.Writer(root, scratch)
  assert w.redirected and not store.LOCAL.redirected
  assert w.path(f"{root}/exp/a.json") == f"{scratch}/exp/a.json"
  assert w.path(f"{scratch}/exp/a.json") == f"{scratch}/exp/a.json"
  assert w.path(str(tmp_path / "elsewhere.json")) == str(
      tmp_path / "elsewhere.json")
  assert store.LOCAL.path(f"{root}/exp/a.json") == f"{root}/exp/a.json"
  store.write_json(f"{root}/exp/a.json", {"who": "chief"})
  assert w.read_json(f"{root}/exp/a.json") == {"who": "chief"}
  w.write_json(f"{root}/exp/a.json", {"who": "worker"})
  assert w.read_json(f"{root}/exp/a.json") == {"who": "worker"}
  assert store.read_json(f"{root}/exp/a.json") == {"who": "chief"}
  # A damaged file that is not this process's own is left where it is.
  with open(f"{root}/exp/b.json", "w") as f:
    f.write("{")
  assert not w.intact(f"{root}/exp/b.json")
  assert os.path.exists(f"{root}/exp/b.json")
  assert not store.LOCAL.intact(f"{root}/exp/b.json")
  assert os.path.exists(f"{root}/exp/b.json.damaged")


def test_a_runner_handed_a_writer_writes_only_through_it(tmp_path):
  out = str(tmp_path / "runs")
  scratch = os.path.join(out, ".elsewhere")
  desc = descriptions.Find.of(
      DatasetHparams(dataset="digits"), ModelHparams("lenet_300_100"),
      TrainingHparams(lr=0.05, batch_size=128, training_steps="12it"),
      PruningHparams(pruning_fraction=0.5),
      LotteryHparams(levels=1, controls="random_mask,lmc",
                     interpolation_points=3))
  runner = desc.runner(out, writer=store.Writer(out, scratch), quiet=True,
                       log=lambda line: None)
  runner.run()
  exp = os.path.relpath(runner.exp_dir, out)
  written = _files(out)
  assert written and all(f.startswith(".elsewhere/") for f in written), (
      written)
  inside = _files(scratch)
  for must in (paths.HPARAMS, paths.REWIND, "level_00/metrics.json",
               "level_01/mask.npz", "level_01/random_mask/mask.npz",
               "level_01/random_mask/metrics.json",
               "level_01/lmc/metrics.json", "level_01/lmc/path.png",
               "level_01/ticket/assets/ticket.json", paths.SUMMARY):
    assert os.path.join(exp, must) in inside, must
