"""find --replicates=N: N seeds of one recipe, each its own experiment (the
first the plain find's), and their mean and spread per level."""
import csv
import json
import math
import os

import pytest

from lottery_tf import descriptions, paths
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.errors import UserError
from lottery_tf.lottery import replicates
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training.hparams import TrainingHparams

LEVELS = 1


def _desc():
  return descriptions.Find.of(
      DatasetHparams(dataset="digits"), ModelHparams(model="lenet_300_100"),
      TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                      training_steps="2ep", seed=11),
      PruningHparams(), LotteryHparams(levels=LEVELS, rewind="2it",
                                       controls="reinit"))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("replicates"))
  logged = []
  path = replicates.run(_desc(), out, 2, quiet=True, log=logged.append)
  return out, path, logged


def _csv(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def test_replicate_0_is_the_plain_find_and_the_others_add_one_to_the_seed(
    study):
  out, path, logged = study
  desc = _desc()
  assert path == paths.summary(replicates.directory(desc, out, 2))
  members = json.load(open(os.path.join(os.path.dirname(path),
                                        "replicates.json")))["members"]
  assert [m["experiment"] for m in members][0] == desc.dirname
  assert [m["seed"] for m in members] == [11, 12]
  for m in members:
    with open(paths.hparams(m["directory"])) as f:
      assert json.load(f)["seed"] == m["seed"]
    rows = _csv(os.path.join(m["directory"], paths.SUMMARY_CSV))
    assert {r["replicate"] for r in rows} == {str(m["replicate"])}
    assert {r["experiment"] for r in rows} == {m["experiment"]}
  assert any(line.startswith("replicate 2/2: seed 12") for line in logged)


def test_summary_is_the_mean_and_sample_std_of_the_members(study):
  out, path, _ = study
  agg = {(int(r["level"]), r["run"]): r for r in _csv(
      os.path.join(os.path.dirname(path), paths.SUMMARY_CSV))}
  every = _csv(os.path.join(os.path.dirname(path), "replicates.csv"))
  assert {r["replicate"] for r in every} == {"0", "1"}
  assert set(agg) == {(0, "ticket"), (1, "ticket"), (1, "reinit")}
  for (level, run), row in agg.items():
    accs = [float(r["test_accuracy"]) for r in every
            if int(r["level"]) == level and r["run"] == run]
    assert len(accs) == 2 and row["replicates"] == "2"
    mean = sum(accs) / 2
    assert float(row["test_accuracy"]) == pytest.approx(mean)
    assert float(row["test_accuracy_std"]) == pytest.approx(
        math.sqrt(sum((a - mean) ** 2 for a in accs)))
  assert os.path.exists(os.path.join(os.path.dirname(path), paths.PLOT))


def test_a_rerun_trains_nothing_and_gives_the_same_summary(study):
  out, path, _ = study
  with open(path) as f:
    before = json.load(f)["rows"]
  logged = []
  assert replicates.run(_desc(), out, 2, quiet=True,
                        log=logged.append) == path
  # Every member's levels are found done: the only lines starting with
  # "level" are the aggregate's, one per level, after the members.
  fresh = [i for i, l in enumerate(logged) if l.startswith("level ")]
  assert len(fresh) == LEVELS + 1 and fresh[-1] == len(logged) - 1, logged
  assert sum(line.startswith("(done) level") for line in logged) == 2 * (
      LEVELS + 1)
  with open(path) as f:
    assert json.load(f)["rows"] == before


def test_one_replicate_claims_no_spread():
  rows = [{"level": 0, "run": "ticket", "density": 1.0,
           "test_accuracy": 0.9}]
  (row,) = replicates.aggregate(rows)
  assert row["test_accuracy"] == 0.9 and row["test_accuracy_std"] is None
  lines = replicates.lines([row], 0, 1)
  assert lines == ["level 0/0  density 100.00%  ticket 90.00%"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_replicates_must_be_a_positive_whole_number(bad):
  with pytest.raises(UserError, match="--replicates"):
    replicates.check(bad)


_CLI = ["find", "--dataset=digits", "--model=lenet_300_100", "--lr=0.05",
        "--momentum=0.9", "--batch_size=64", "--training_steps=2ep",
        "--seed=11", "--levels=1", "--rewind=2it", "--controls=reinit",
        "--replicates=2"]


def test_the_cli_finds_the_same_replicates_and_quiet_prints_one_line(study):
  """`find --replicates=2` names the same experiments as the library (so it
  finds them done); --quiet leaves only the results line."""
  from conftest import run_cli_in_process  # pylint: disable=g-import-not-at-top
  out, path, _ = study
  code, stdout, stderr = run_cli_in_process(
      [*_CLI, f"--output_dir={out}", "--quiet"])
  assert code == 0, stderr
  assert stdout.strip().splitlines() == [f"results: {path}"]
  code, stdout, stderr = run_cli_in_process([*_CLI, f"--output_dir={out}"])
  assert code == 0, stderr
  lines = stdout.strip().splitlines()
  assert "replicate 1/2: seed 11" in lines and "replicate 2/2: seed 12" in lines
  assert lines[-1] == f"results: {path}"
  assert any(l.startswith("level 1/1") and "±" in l for l in lines), lines


def test_bad_replicates_exits_2_naming_the_flag(tmp_path):
  from conftest import run_cli_in_process  # pylint: disable=g-import-not-at-top
  code, stdout, stderr = run_cli_in_process(
      [*_CLI[:-1], "--replicates=0", f"--output_dir={tmp_path}"])
  assert code == 2 and stderr.strip().startswith(
      "lottery_tf: error: --replicates:"), stderr
  assert len(stderr.strip().splitlines()) == 1 and not os.listdir(tmp_path)
