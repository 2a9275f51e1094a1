"""Tickets on a data diet: EL2N/GraNd scores, subsets, pre-training, `diet`."""
import json
import os

import numpy as np
import pytest

from lottery_tf import data, descriptions, training
from lottery_tf.foundations import store
from lottery_tf._keras import keras, tf
from lottery_tf.analysis import per_example
from lottery_tf.diet import pretrain as pretrain_lib
from lottery_tf.diet import scores as scores_lib
from lottery_tf.diet import study, subsets
from lottery_tf.diet.hparams import DietHparams, ScoreHparams
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf import paths
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams

DIGITS = DatasetHparams(dataset="digits")
TASK = dict(dhp=DIGITS, mhp=ModelHparams(model="lenet_300_100"),
            thp=TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                                training_steps="2ep", seed=3))


# -- EL2N ---------------------------------------------------------------------


def test_el2n_is_0_when_confidently_right_and_sqrt2_when_confidently_wrong():
  logits = np.array([[60.0, 0.0, 0.0], [0.0, 60.0, 0.0], [0.0, 0.0, 0.0]])
  labels = np.array([0, 0, 2])
  got = per_example.el2n(logits, labels)
  assert got[0] == pytest.approx(0.0, abs=1e-12)
  assert got[1] == pytest.approx(np.sqrt(2.0), abs=1e-12)
  # Uniform over 3 classes: sqrt((2/3)^2 + 2 (1/3)^2) = sqrt(2/3).
  assert got[2] == pytest.approx(np.sqrt(2.0 / 3.0))


def test_el2n_of_a_network_through_the_scoring_path():
  """per_example.stats on a net that always says "class 0" with certainty."""
  inputs = keras.Input((4,))
  out = keras.layers.Dense(3, kernel_initializer="zeros",
                           bias_initializer=keras.initializers.Constant(
                               [100.0, 0.0, 0.0]))(inputs)
  model = keras.Model(inputs, out)
  labels = np.array([0, 1, 0, 2, 0], np.int32)
  ds = tf.data.Dataset.from_tensor_slices(
      (np.ones((5, 4), np.float32), labels, np.arange(5, dtype=np.int64))
  ).batch(2)
  got = per_example.stats(model, ds, 5)
  np.testing.assert_allclose(got["el2n"], [0, np.sqrt(2), 0, np.sqrt(2), 0],
                             atol=1e-6)
  np.testing.assert_array_equal(got["correct"], [1, 0, 1, 0, 1])
  np.testing.assert_array_equal(got["labels"], labels)


def test_grand_is_the_per_example_gradient_norm():
  keras.utils.set_random_seed(0)
  inputs = keras.Input((3,))
  h = keras.layers.Dense(4, activation="tanh")(inputs)
  model = keras.Model(inputs, keras.layers.Dense(2)(h))
  x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  y = np.array([0, 1, 1, 0, 1], np.int32)
  ds = tf.data.Dataset.from_tensor_slices((x, y, np.arange(5))).batch(3)
  got = per_example.grad_norms(model, ds, 5)["grand"]
  for i in range(5):
    with tf.GradientTape() as tape:
      loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
          labels=y[i:i + 1], logits=model(x[i:i + 1]))
    grads = tape.gradient(loss, model.trainable_variables)
    norm = np.sqrt(sum(float(tf.reduce_sum(g * g)) for g in grads))
    assert got[i] == pytest.approx(norm, rel=1e-4)


# -- subsets ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["easy", "medium:10", "easy:0", "easy:-3",
                                  "hard:1.5", "random:ten", "random:0.0"])
def test_bad_subset_specs_name_the_flag(text):
  with pytest.raises(UserError, match="--pretrain_subset"):
    subsets.parse(text)


def test_subset_specs_parse_counts_and_fractions():
  assert subsets.parse("") is None and subsets.parse("full") is None
  assert subsets.parse("easy:3200").size(50_000) == 3200
  assert subsets.parse("random:0.064").size(50_000) == 3200
  assert subsets.parse(" hard : 0.5 ").size(24) == 12
  with pytest.raises(UserError, match="only 100"):
    subsets.parse("random:101").size(100)


def test_subsets_have_the_size_asked_and_easy_are_the_lowest_scores():
  rng = np.random.default_rng(0)
  scores = rng.random(1000)
  labels = rng.integers(0, 10, 1000)
  easy = subsets.select(subsets.parse("easy:100"), 1000, scores=scores)
  hard = subsets.select(subsets.parse("hard:0.1"), 1000, scores=scores)
  rand = subsets.select(subsets.parse("random:100"), 1000, seed=1)
  for chosen in (easy, hard, rand):
    assert len(chosen) == 100 and len(np.unique(chosen)) == 100
    assert np.all(np.diff(chosen) > 0)  # sorted, as data.load takes them
  np.testing.assert_array_equal(easy, np.sort(np.argsort(scores)[:100]))
  np.testing.assert_array_equal(hard, np.sort(np.argsort(scores)[-100:]))
  assert scores[easy].max() < np.sort(scores)[100]
  # Random: seeded, and not the easy ones.
  np.testing.assert_array_equal(
      rand, subsets.select(subsets.parse("random:100"), 1000, seed=1))
  assert not np.array_equal(
      rand, subsets.select(subsets.parse("random:100"), 1000, seed=2))


def test_class_balanced_subsets_take_the_easiest_of_every_class():
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(10), 50)
  rng.shuffle(labels)
  # Class 0 is the easiest by far: unbalanced "easy" is all class 0.
  scores = rng.random(500) + labels
  spec = subsets.parse("easy:100")
  unbalanced = subsets.select(spec, 500, scores=scores, labels=labels)
  assert set(labels[unbalanced]) == {0, 1}
  chosen = subsets.select(spec, 500, scores=scores, labels=labels,
                          class_balanced=True)
  assert len(chosen) == 100
  np.testing.assert_array_equal(np.bincount(labels[chosen]), [10] * 10)
  for c in range(10):
    mine = np.flatnonzero(labels == c)
    lowest = mine[np.argsort(scores[mine])[:10]]
    assert set(chosen[labels[chosen] == c]) == set(lowest)
  rand = subsets.select(subsets.parse("random:55"), 500, labels=labels,
                        class_balanced=True)
  counts = np.bincount(labels[rand], minlength=10)
  assert counts.sum() == 55 and counts.max() - counts.min() == 1


def test_class_balance_fills_up_from_other_classes_when_one_is_small():
  labels = np.array([0] * 3 + [1] * 50 + [2] * 50)
  chosen = subsets.select(subsets.parse("random:60"), len(labels),
                          labels=labels, class_balanced=True)
  np.testing.assert_array_equal(np.bincount(labels[chosen]), [3, 29, 28])


# -- scores files -------------------------------------------------------------


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
  """EL2N of digits from 2 LeNets x 15 steps, through `scores.compute`."""
  exp_dir = str(tmp_path_factory.mktemp("score") / "exp")
  shp = ScoreHparams(ensemble_size=2, score_steps="15it")
  path = scores_lib.compute(exp_dir, Task(**TASK), shp, quiet=True,
                            log=lambda line: None)
  return exp_dir, path


def test_score_run_writes_index_keyed_scores_plots_and_resumes(scored):
  exp_dir, summary_path = scored
  arrays = store.read_npz(os.path.join(exp_dir, "scores.npz"))
  meta = json.loads(str(arrays["meta"]))
  assert meta["dataset"] == "digits" and meta["split"] == "train"
  assert arrays["scores"].shape == (1437,)
  assert arrays["member_scores"].shape == (2, 1437)
  np.testing.assert_allclose(arrays["scores"],
                             arrays["member_scores"].mean(0), rtol=1e-6)
  assert np.all((arrays["scores"] >= 0) & (arrays["scores"] <= np.sqrt(2)))
  # Keyed by example index: the labels are data.load's, position by position.
  labels = scores_lib.train_labels(DIGITS, 1437)
  np.testing.assert_array_equal(arrays["labels"], labels)
  # Members differ (seeds), and are trained (scores far below a fresh net's).
  assert not np.allclose(arrays["member_scores"][0],
                         arrays["member_scores"][1])
  assert arrays["scores"].mean() < 0.6
  summary = store.read_json(summary_path)
  assert len(summary["rows"]) == 2
  assert summary["easiest"][0] == int(np.argmin(arrays["scores"]))
  for png in ("scores_histogram.png", "examples_easy_hard.png"):
    assert os.path.getsize(os.path.join(exp_dir, png)) > 10_000
  before = os.path.getmtime(os.path.join(exp_dir, "scores.npz"))
  scores_lib.compute(exp_dir, Task(**TASK),
                     ScoreHparams(ensemble_size=2, score_steps="15it"),
                     quiet=True, log=lambda line: None)
  assert os.path.getmtime(os.path.join(exp_dir, "scores.npz")) == before


def test_bad_scores_files_are_refused_naming_the_flag(scored, tmp_path):
  exp_dir, _ = scored
  good = os.path.join(exp_dir, "scores.npz")
  labels = scores_lib.train_labels(DIGITS, 1437)
  assert scores_lib.load(exp_dir, DIGITS, 1437, labels).path == good
  with pytest.raises(UserError, match="--scores: .* does not exist"):
    scores_lib.load(str(tmp_path / "nope.npz"), DIGITS)
  corrupt = tmp_path / "corrupt.npz"
  corrupt.write_bytes(b"PK\x03\x04 not really a zip file")
  with pytest.raises(UserError, match="--scores: .* not a readable"):
    scores_lib.load(str(corrupt), DIGITS)
  with pytest.raises(UserError, match="--scores: .*another dataset"):
    scores_lib.load(good, DatasetHparams(dataset="mnist_5k"))
  with pytest.raises(UserError, match="--scores: .*another dataset"):
    scores_lib.load(good, DatasetHparams(dataset="digits", classes="0-4"))
  arrays = store.read_npz(good)
  arrays["labels"] = np.roll(arrays["labels"], 1)
  shuffled = str(tmp_path / "shuffled.npz")
  store.write_npz(shuffled, arrays)
  with pytest.raises(UserError, match="--scores: .*other data"):
    scores_lib.load(shuffled, DIGITS, 1437, labels)


def test_experiments_are_named_by_the_scores_content_not_path(scored, tmp_path):
  exp_dir, _ = scored
  good = os.path.join(exp_dir, "scores.npz")
  copy = str(tmp_path / "copy.npz")
  store.write_bytes(copy, open(good, "rb").read())
  easy = LotteryHparams(pretrain_steps="10it", pretrain_subset="easy:100")
  h = lambda lhp: descriptions.Find.of(  # noqa: E731
      DIGITS, ModelHparams(), TrainingHparams(), PruningHparams(), lhp).hash
  assert h(easy.replace(scores=good)) == h(easy.replace(scores=copy))
  arrays = store.read_npz(good)
  arrays["scores"] = arrays["scores"][::-1].copy()
  other = str(tmp_path / "other.npz")
  store.write_npz(other, arrays)
  assert h(easy.replace(scores=good)) != h(easy.replace(scores=other))
  # A random subset does not read the file: it does not enter the name.
  rand = easy.replace(pretrain_subset="random:100")
  assert h(rand.replace(scores=good)) == h(rand)
  # The diet study passes the file to its easy/hard arms: it names it too.
  groups = (DIGITS, ModelHparams(), TrainingHparams(), PruningHparams())
  base = LotteryHparams(pretrain_steps="10it")
  names = {descriptions.Diet.of(*groups, base.replace(scores=path),
                                 ScoreHparams()).hash
           for path in (good, copy, other)}
  assert len(names) == 2


def test_default_lottery_hparams_keep_existing_experiment_names():
  assert LotteryHparams().result_fields() == {}
  assert LotteryHparams(rewind="500it", levels=3,
                        lmc_every_level=True).result_fields() == {
                            "rewind": "500it"}
  assert LotteryHparams(barrier_threshold=0.2).result_fields() == {}


# -- pre-training -------------------------------------------------------------


@pytest.mark.parametrize("lhp,flag", [
    (dict(pretrain_subset="random:10"), "--pretrain_steps"),
    (dict(pretrain_steps="-5it", pretrain_subset="random:10"),
     "--pretrain_steps"),
    (dict(pretrain_steps="0it", pretrain_lr=0.5), "--pretrain_steps"),
    (dict(pretrain_steps="10it", pretrain_subset="easy:10"), "--scores"),
    (dict(pretrain_steps="10it", class_balanced=True), "--class_balanced"),
    (dict(pretrain_steps="10it", pretrain_subset="lots"), "--pretrain_subset"),
    (dict(pretrain_steps="10it", pretrain_batch_size=-1),
     "--pretrain_batch_size"),
    (dict(barrier_threshold=11.0), "--barrier_threshold"),
    (dict(barrier_threshold=-0.1), "--barrier_threshold"),
    (dict(interpolation_points=2), "--interpolation_points"),
])
def test_bad_pretraining_hparams_name_the_flag(lhp, flag):
  with pytest.raises(UserError, match=flag):
    descriptions.Find(DIGITS, ModelHparams(), TrainingHparams(),
                      PruningHparams(), LotteryHparams(**lhp)).validate()


@pytest.mark.parametrize("lhp,flag", [
    (dict(pretrain_steps="2ep", pretrain_subset="random:10"),
     "--pretrain_steps"),
    (dict(pretrain_steps="20it", rewind="10it"), "--rewind"),
    (dict(pretrain_steps="10it", pretrain_subset="random:5000"),
     "--pretrain_subset"),
    (dict(pretrain_steps="10it", pretrain_subset="easy:10",
          scores="/nonexistent/scores.npz"), "--scores"),
])
def test_pretraining_that_does_not_fit_the_task_names_the_flag(lhp, flag):
  task, lhp = Task(**TASK), LotteryHparams(**lhp)
  with pytest.raises(UserError, match=flag):
    LotteryRunner("/tmp/unused", task, PruningHparams(), lhp,
                  rewind_point=pretrain_lib.plan(task, lhp))


def test_a_runner_without_its_rewind_point_refuses_to_skip_pretraining():
  with pytest.raises(ValueError, match="rewind_point"):
    LotteryRunner("/tmp/unused", Task(**TASK), PruningHparams(),
                  LotteryHparams(pretrain_steps="10it"))


@pytest.mark.parametrize("shp,flag", [
    (dict(score="forgetting"), "--score"),
    (dict(ensemble_size=0), "--ensemble_size"),
    (dict(score_steps="100"), "--score_steps"),
])
def test_bad_score_hparams_name_the_flag(shp, flag):
  with pytest.raises(UserError, match=flag):
    ScoreHparams(**shp).validate()


@pytest.mark.parametrize("arms", ["", "full,full", "easy:ten", "init,medium"])
def test_bad_diet_arms_name_the_flag(arms):
  with pytest.raises(UserError, match="--diet_arms"):
    DietHparams(diet_arms=arms).validate()


T = 12  # pre-training steps: 3 epochs of the 100-example subset at batch 32


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
  """find with 12 pre-training steps on a class-balanced random 100, spied on.

  Records every example index the training pipelines yield and every fit
  call's step range, optimizer step and lr.
  """
  mp = pytest.MonkeyPatch()
  seen = {"pretrain": [], "imp": []}
  real_load = data.load

  def spy_load(hp, split, **kw):
    if not kw.get("training"):
      return real_load(hp, split, **kw)
    tag = "pretrain" if kw.get("indices") is not None else "imp"
    ds = real_load(hp, split, **{**kw, "with_index": True})

    def record(index):
      seen[tag].append(index.numpy())
      return index

    def strip(x, y, index):
      index = tf.py_function(record, [index], tf.int64)
      # A data dependency, so that the recording runs with every batch.
      return x, y + tf.cast(tf.reduce_sum(index) * 0, y.dtype)
    return ds.map(strip)

  fits = []
  real_fit = training.fit

  def spy_fit(train_model, train_data, **kw):
    opt = train_model.optimizer
    fits.append({"start": kw["start_step"], "end": kw["end_step"],
                 "iterations": int(opt.iterations.numpy()),
                 "start_step": int(opt._learning_rate.start_step.numpy()),  # pylint: disable=protected-access
                 "lr": float(opt._learning_rate(opt.iterations)),  # pylint: disable=protected-access
                 "peak_lr": opt._learning_rate.lr})  # pylint: disable=protected-access
    return real_fit(train_model, train_data, **kw)

  mp.setattr(data, "load", spy_load)
  mp.setattr(training, "fit", spy_fit)
  thp = TASK["thp"].replace(warmup_steps="40it")
  lhp = LotteryHparams(levels=1, controls="", pretrain_steps=f"{T}it",
                       pretrain_subset="random:100", class_balanced=True,
                       pretrain_batch_size=32, pretrain_lr=0.02)
  exp_dir = str(tmp_path_factory.mktemp("pretrain") / "exp")
  task = Task(TASK["dhp"], TASK["mhp"], thp)
  runner = LotteryRunner(exp_dir, task, PruningHparams(), lhp,
                         rewind_point=pretrain_lib.plan(task, lhp),
                         quiet=True, log=lambda line: None)
  try:
    runner.run()
  finally:
    mp.undo()
  return exp_dir, runner, seen, fits


def test_pretraining_sees_only_the_subset(pretrained):
  exp_dir, runner, seen, _ = pretrained
  subset = runner.pretraining.indices
  assert len(subset) == 100
  labels = scores_lib.train_labels(DIGITS, 1437)
  np.testing.assert_array_equal(np.bincount(labels[subset]), [10] * 10)
  pre = np.concatenate(seen["pretrain"])
  assert set(pre) <= set(subset)
  # 12 steps of batch 32 over 100 examples = 3 epochs: each example 3 times.
  counts = np.bincount(pre, minlength=1437)
  assert counts[subset].min() == 3 and counts.sum() == 3 * 100
  # Training after the pre-training sees the full data.
  assert len(set(np.concatenate(seen["imp"]))) == 1437
  record = store.read_json(os.path.join(exp_dir, "pretrain",
                                            "metrics.json"))
  assert record["num_examples"] == 100 and record["steps"] == T
  assert record["subset"] == "random:100" and record["class_balanced"]


def test_rewind_point_is_the_pretrained_network_and_lr_resumes_at_t(
    pretrained):
  exp_dir, runner, _, fits = pretrained
  assert runner.rewind_step == T
  pretrained_weights = store.read_npz(
      os.path.join(exp_dir, "pretrain", "weights.npz"))
  rewind = store.read_npz(os.path.join(exp_dir, "rewind.npz"))
  assert set(rewind) == set(pretrained_weights)
  for key, value in rewind.items():
    np.testing.assert_array_equal(value, pretrained_weights[key])
  # Pre-training: steps 0..T at its own peak lr; then every level starts at
  # step T with a fresh optimizer and the task's lr schedule evaluated at T
  # (warm-up: 0.05*13/40).
  assert fits[0] == {"start": 0, "end": T, "iterations": 0, "start_step": 0,
                     "lr": pytest.approx(0.02 / 40), "peak_lr": 0.02}
  total = Task(**TASK).total_steps
  for fit in fits[1:]:
    # A fresh optimizer (its own step count at 0), the schedule at T.
    assert fit["start"] == T and fit["start_step"] == T
    assert fit["iterations"] == 0
    assert fit["end"] == total
    assert fit["peak_lr"] == 0.05
    assert fit["lr"] == pytest.approx(0.05 * (T + 1) / 40)
  assert len(fits) == 3  # pre-training, level 0, level 1
  for level in (0, 1):
    m = store.read_json(os.path.join(paths.level(exp_dir, level),
                                         "metrics.json"))
    assert m["start_step"] == T and m["rewind_step"] == T
    assert m["pretraining"]["subset"] == "random:100"
  ticket_meta = json.load(open(os.path.join(paths.level(exp_dir, 1), "ticket",
                                            "assets", "ticket.json")))
  assert ticket_meta["rewind_step"] == T


def test_pretraining_resumes_without_training_again(pretrained, monkeypatch):
  exp_dir, runner, _, _ = pretrained
  calls = []
  monkeypatch.setattr(pretrain_lib, "pretrain",
                      lambda *a, **k: calls.append(1))
  lines = []
  LotteryRunner(exp_dir, runner.task, runner.php, runner.lhp,
                rewind_point=runner.pretraining, quiet=True,
                log=lines.append).run()
  levels = [line for line in lines if not line.startswith(("find: ", "  "))]
  assert not calls and levels and all(line.startswith("(done)")
                                      for line in levels), lines
  assert "all done" in lines[lines.index(levels[0]) - 1], lines


# -- the CLI ------------------------------------------------------------------

BAD_CLI = [
    (["find", "--pretrain_steps=10it", "--pretrain_subset=easy:lots"],
     "--pretrain_subset"),
    (["find", "--pretrain_steps=0it", "--pretrain_subset=random:10"],
     "--pretrain_steps"),
    (["find", "--pretrain_steps=10it", "--pretrain_subset=easy:10",
      "--scores=corrupt.npz"], "--scores"),
]


def test_bad_input_exits_2_with_one_line(tmp_path):
  from conftest import run_in_one_process  # pylint: disable=g-import-not-at-top
  (tmp_path / "corrupt.npz").write_bytes(b"garbage")
  results = run_in_one_process(tmp_path, [
      [*args, "--dataset=digits", "--training_steps=1ep", "--quiet",
       "--output_dir=out"] for args, _ in BAD_CLI])
  for (args, words), (code, err) in zip(BAD_CLI, results):
    assert code == 2, (args, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], err
    assert "Traceback" not in err
  assert not list((tmp_path / "out").rglob("metrics.json"))


# -- the whole study: flags/diet_demo.cfg, reduced ----------------------------


def test_diet_arms_set_each_runs_rewind_point():
  lhp = LotteryHparams(rewind="50it", pretrain_steps="20it", scores="s.npz",
                       class_balanced=True, pretrain_lr=0.01)
  init = study.arm_hparams(lhp, "init", "s.npz")
  assert (init.pretrain_steps, init.rewind, init.pretrain_subset,
          init.pretrain_lr, init.class_balanced) == ("0it", "0it", "", 0.0,
                                                     False)
  full = study.arm_hparams(lhp, "full", "s.npz")
  assert (full.pretrain_steps, full.pretrain_subset, full.scores,
          full.class_balanced) == ("20it", "", "", False)
  rand = study.arm_hparams(lhp, "random:0.1", "s.npz")
  assert (rand.pretrain_subset, rand.scores, rand.class_balanced) == (
      "random:0.1", "", True)
  easy = study.arm_hparams(lhp, "easy:100", "s.npz")
  assert (easy.pretrain_subset, easy.scores) == ("easy:100", "s.npz")
  for arm in (init, full, rand, easy):
    assert arm.lmc_every_level and arm.rewind in ("0it", "50it")
    arm.validate()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = ["diet", f"--flagfile={os.path.join(REPO, 'flags', 'diet_demo.cfg')}",
        # The demo's recipe with fewer steps, levels and arms.
        "--training_steps=1ep", "--levels=1", "--pretrain_steps=10it",
        "--diet_arms=full,random:0.1,easy:0.1",
        "--ensemble_size=2", "--score_steps=20it", "--interpolation_points=3",
        "--output_dir=out"]


def test_diet_demo_runs_end_to_end_and_resumes(cli, tmp_path):
  proc = cli(*DEMO)
  assert proc.returncode == 0, proc.stderr[-3000:]
  last = proc.stdout.strip().splitlines()[-1]
  path = os.path.join(tmp_path, last.split("results: ")[1])
  study = os.path.dirname(path)
  assert os.path.basename(study).startswith("diet_lenet_300_100_mnist_5k-")
  summary = store.read_json(path)
  arms = ["full", "random:0.1", "easy:0.1"]
  assert list(dict.fromkeys(r["arm"] for r in summary["rows"])) == arms
  assert len(summary["rows"]) == 2 * len(arms)
  for row in summary["rows"]:
    assert 0 <= row["instability"] <= 1 and 0 <= row["connected_fraction"] <= 1
    assert row["test_accuracy"] > 0.5
    assert row["rewind_step"] == 10
  assert summary["arms"]["easy:0.1"]["pretraining"]["num_examples"] == 400
  assert summary["arms"]["full"]["pretraining"]["separate_phase"] is False
  assert os.path.getsize(os.path.join(study, "comparison.png")) > 20_000
  scores = list((tmp_path / "out").glob("score_lenet_300_100_mnist_5k-*/"
                                        "scores.npz"))
  assert len(scores) == 1
  for arm in ("full", "random_0.1", "easy_0.1"):
    assert os.path.exists(os.path.join(study, f"arm_{arm}", "level_01",
                                       "lmc", "per_example.npz"))
  # A rerun finds everything done and writes the same comparison.
  again = cli(*DEMO)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stdout.strip().splitlines()[-1] == last
  assert "scores already computed" in again.stdout
  assert sum("(done) level" in line for line in again.stdout.splitlines()) == 6
  assert store.read_json(path)["rows"] == summary["rows"]
