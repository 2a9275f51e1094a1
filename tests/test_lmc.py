"""Linear mode connectivity: barriers, instability per level, `lottery_tf lmc`."""
import os
import shutil

import numpy as np
import pytest

from lottery_tf import data, pruning, training
from lottery_tf.foundations import store
from lottery_tf._keras import keras
from lottery_tf.analysis import lmc
from lottery_tf.diet import scores as scores_lib
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery import report
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf import paths
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training.rewind import load_weights, snapshot

DIGITS = DatasetHparams(dataset="digits")
THP = TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                      training_steps="3ep", seed=5)
TASK = dict(dhp=DIGITS, mhp=ModelHparams(model="lenet_300_100"), thp=THP)
FLAGS = ["--dataset=digits", "--model=lenet_300_100", "--lr=0.05",
         "--momentum=0.9", "--batch_size=64", "--training_steps=3ep",
         "--seed=5"]


def test_error_barrier_and_per_example_barrier_arithmetic():
  assert lmc.error_barrier([0.1, 0.3, 0.2]) == pytest.approx(0.15)
  assert lmc.error_barrier([0.2, 0.1, 0.2]) == pytest.approx(0.0)
  np.testing.assert_allclose(
      lmc.per_example_barrier([1.0, 0.5], [0.2, 0.5], [0.4, 0.7]), [0.7, -0.1])
  np.testing.assert_array_equal(lmc.alphas(5), [0, 0.25, 0.5, 0.75, 1])


def _bn_model(seed):
  init = keras.initializers.GlorotNormal(seed=seed)
  inputs = keras.Input((6,))
  h = keras.layers.Dense(8, kernel_initializer=init, name="fc")(inputs)
  h = keras.layers.BatchNormalization(name="bn")(h)
  out = keras.layers.Dense(3, kernel_initializer=init, name="logits")(h)
  return keras.Model(inputs, out)


def test_interpolation_covers_batchnorm_statistics_and_keeps_masks():
  model = pruning.wrap(_bn_model(0))
  masks = {k: (np.random.default_rng(1).random(v.shape) < 0.5).astype(
      np.float32) for k, v in pruning.get_masks(model).items()}
  pruning.set_masks(model, masks)
  w1 = snapshot(model)
  w2 = {k: v + 1.0 for k, v in w1.items()}
  for k in masks:  # both ends share the mask, as the copies of a ticket do
    w2[f"{k}/kernel"] = w2[f"{k}/kernel"] * masks[k]
  mid = lmc.interpolate(w1, w2, 0.25)
  np.testing.assert_allclose(mid["bn/moving_mean"], w1["bn/moving_mean"] + 0.25)
  np.testing.assert_allclose(mid["bn/moving_variance"],
                             w1["bn/moving_variance"] + 0.25)
  for k, mask in masks.items():
    assert np.all(mid[f"{k}/kernel"][mask == 0] == 0)


@pytest.fixture(scope="module")
def two_networks():
  """Two LeNets on digits from different inits and data orders, trained."""
  task = Task(**TASK)
  out = []
  for seed in (1, 2):
    training.set_seed(seed)
    model = task.build_model(seed=seed)
    tm = training.compile_model(model, THP, task.steps_per_epoch)
    training.fit(tm, task.train_data(seed), steps_per_epoch=task.steps_per_epoch,
                 start_step=0, end_step=task.total_steps, verbose=0)
    out.append(snapshot(model))
  return task, model, out


def test_barrier_of_two_identical_networks_is_zero(two_networks):
  task, model, (w1, _) = two_networks
  summary, arrays = lmc.evaluate_path(
      model, w1, w1, lmc.datasets_for(DIGITS, task.info), points=5)
  assert summary["instability"] == 0.0
  assert summary["train_error_barrier"] == 0.0
  assert summary["test_loss_barrier"] == pytest.approx(0.0, abs=1e-6)
  np.testing.assert_allclose(arrays["barrier"], 0.0, atol=1e-5)
  assert summary["connected_fraction"] == 1.0
  assert len(summary["rows"]) == 5


def test_unrelated_networks_have_a_barrier_and_one_entry_per_example(
    two_networks):
  task, model, (w1, w2) = two_networks
  summary, arrays = lmc.evaluate_path(
      model, w1, w2, lmc.datasets_for(DIGITS, task.info), points=11,
      threshold=0.1)
  ends = summary["test_error_endpoints"]
  assert max(ends) < 0.1  # both trained well...
  assert summary["instability"] > 0.02  # ...but not linearly connected
  assert summary["train_error_barrier"] > 0.02
  assert summary["per_example_barrier_mean"] > 0.05
  assert summary["connected_fraction"] < 0.9
  assert [r["alpha"] for r in summary["rows"]] == pytest.approx(
      np.linspace(0, 1, 11))
  # One barrier per training example, in example-index order.
  n = task.info.num_examples["train"]
  assert n == 1437
  for key in ("barrier", "loss_1", "loss_2", "loss_mid", "labels"):
    assert arrays[key].shape == (n,)
  np.testing.assert_array_equal(arrays["labels"],
                                scores_lib.train_labels(DIGITS, n))
  np.testing.assert_allclose(
      arrays["barrier"],
      arrays["loss_mid"] - (arrays["loss_1"] + arrays["loss_2"]) / 2,
      atol=1e-5)
  assert summary["connected_fraction"] == pytest.approx(
      float((arrays["barrier"] < 0.1).mean()))
  # The path's end is the second network, as Keras evaluates it.
  load_weights(model, w2)
  keras_eval = training.evaluate(training.compile_model(model, THP, 1), {
      "test": data.load(DIGITS, "test", batch_size=500)})
  assert summary["rows"][-1]["test_error"] == pytest.approx(
      1 - keras_eval["test_accuracy"], abs=1e-6)


# -- find --lmc_every_level and lottery_tf lmc --------------------------------


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  out = tmp_path_factory.mktemp("lmc")
  exp_dir = str(out / "exp")
  LotteryRunner(exp_dir, Task(**TASK), PruningHparams(),
                LotteryHparams(levels=1, rewind="10it", controls="",
                               lmc_every_level=True, interpolation_points=5),
                quiet=True, log=lambda line: None).run()
  return str(out), exp_dir


def test_instability_is_recorded_at_every_level(experiment):
  _, exp_dir = experiment
  summary = store.read_json(os.path.join(exp_dir, "summary.json"))
  for level in (0, 1):
    d = paths.level(exp_dir, level)
    m = store.read_json(os.path.join(d, "metrics.json"))
    got = store.read_json(os.path.join(d, "lmc", "metrics.json"))
    assert m["lmc"]["instability"] == got["instability"]
    assert 0 <= got["instability"] < 0.2
    assert got["rewind_step"] == 10 and got["data_seeds"] == [5, 5 + 40_009]
    assert len(got["rows"]) == 5
    per = store.read_npz(os.path.join(d, "lmc", "per_example.npz"))
    assert per["barrier"].shape == (1437,)
    assert os.path.getsize(os.path.join(d, "lmc", "path.png")) > 10_000
    row = [r for r in summary["rows"] if r["level"] == level][0]
    assert row["instability"] == got["instability"]
    assert row["connected_fraction"] == got["connected_fraction"]
    assert "instability" in report.level_line(exp_dir, level, [])
  # Level 1's first copy is the ticket itself; its density is the level's.
  l1 = store.read_json(os.path.join(paths.level(exp_dir, 1), "lmc",
                                        "metrics.json"))
  assert l1["density"] == pytest.approx(0.8, abs=1e-3)


def test_lmc_resumes_to_the_same_numbers(experiment, tmp_path):
  _, exp_dir = experiment
  copy = str(tmp_path / "exp")
  shutil.copytree(exp_dir, copy)
  before = store.read_json(os.path.join(paths.level(copy, 1), "lmc",
                                            "metrics.json"))
  # Killed after the ticket, before its instability: the rerun trains both
  # copies again (the first one replays the ticket) and gets the same path.
  shutil.rmtree(os.path.join(paths.level(copy, 1), "lmc"))
  LotteryRunner(copy, Task(**TASK), PruningHparams(),
                LotteryHparams(levels=1, rewind="10it", controls="",
                               lmc_every_level=True, interpolation_points=5),
                quiet=True, log=lambda line: None).run()
  after = store.read_json(os.path.join(paths.level(copy, 1), "lmc",
                                           "metrics.json"))
  assert after["rows"] == before["rows"]
  assert after["instability"] == before["instability"]


def test_lmc_command_from_a_ticket_matches_the_level(experiment, cli):
  out, exp_dir = experiment
  proc = cli("lmc", "--lmc_from=ticket", f"--ticket={exp_dir}",
             "--interpolation_points=5", f"--output_dir={out}/cli")
  assert proc.returncode == 0, proc.stderr[-2000:]
  path = proc.stdout.strip().splitlines()[-1].split("results: ")[1]
  got = store.read_json(path)
  level = store.read_json(os.path.join(paths.level(exp_dir, 1), "lmc",
                                           "metrics.json"))
  assert got["lmc_from"] == "ticket" and got["source"]["level"] == 1
  assert got["start_step"] == 10
  assert got["density"] == pytest.approx(level["density"])
  assert got["instability"] == pytest.approx(level["instability"])
  assert got["connected_fraction"] == pytest.approx(
      level["connected_fraction"])
  per = store.read_npz(os.path.join(os.path.dirname(path),
                                        "per_example.npz"))
  assert per["barrier"].shape == (1437,)


def test_lmc_command_from_init_and_its_bad_input(cli, tmp_path):
  proc = cli("lmc", "--lmc_from=init", *FLAGS, "--training_steps=1ep",
             "--interpolation_points=3", "--output_dir=out")
  assert proc.returncode == 0, proc.stderr[-2000:]
  path = proc.stdout.strip().splitlines()[-1].split("results: ")[1]
  got = store.read_json(os.path.join(tmp_path, path))
  assert got["start_step"] == 0 and len(got["rows"]) == 3
  assert os.path.getsize(os.path.join(os.path.dirname(
      os.path.join(tmp_path, path)), "path.png")) > 10_000
  again = cli("lmc", "--lmc_from=init", *FLAGS, "--training_steps=1ep",
              "--interpolation_points=3", "--output_dir=out")
  assert again.returncode == 0 and "already finished" in again.stdout
  from conftest import run_in_one_process  # pylint: disable=g-import-not-at-top
  cases = ((["--lmc_from=ticket", "--ticket=nothing_here"], "--ticket"),
           (["--barrier_threshold=20"], "--barrier_threshold"),
           (["--lmc_from=middle"], "--lmc_from"))
  results = run_in_one_process(tmp_path, [["lmc", *args, "--quiet"]
                                          for args, _ in cases])
  for (args, flag), (code, err) in zip(cases, results):
    assert code == 2, (args, err)
    assert len(err.strip().splitlines()) == 1
    assert flag in err and "Traceback" not in err
