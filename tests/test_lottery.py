"""The IMP runner: levels, rewinding, controls, tickets, resume."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import clean_env
from lottery_tf import pruning, tickets, training
from lottery_tf.foundations import store
from lottery_tf._keras import keras
from lottery_tf.diet import pretrain
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf import paths
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training import optimizers
from lottery_tf.training.rewind import RewindCallback, named_weights

LEVELS = 3
TASK = dict(
    dhp=DatasetHparams(dataset="digits"),
    mhp=ModelHparams(model="lenet_300_100"),
    thp=TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                        training_steps="3ep", seed=7))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  exp_dir = str(tmp_path_factory.mktemp("find") / "exp")
  runner = LotteryRunner(exp_dir, Task(**TASK), PruningHparams(),
                         LotteryHparams(levels=LEVELS, rewind="5it"),
                         quiet=True, log=lambda line: None)
  runner.run()
  return exp_dir


def _masks(exp_dir, level):
  return store.read_npz(os.path.join(paths.level(exp_dir, level), "mask.npz"))


def test_masks_are_nested_and_density_follows_the_power_law(experiment):
  previous = None
  for level in range(LEVELS + 1):
    masks = _masks(experiment, level)
    total = sum(m.size for m in masks.values())
    alive = sum(int(m.sum()) for m in masks.values())
    # Global pruning rounds once per level: within one weight per level.
    assert abs(alive - total * 0.8 ** level) <= level + 1
    if previous is not None:
      for name, m in masks.items():
        assert np.all(m <= previous[name]), name
        assert set(np.unique(m)) <= {0.0, 1.0}
    previous = masks
  metrics = store.read_json(
      os.path.join(paths.level(experiment, LEVELS), "metrics.json"))
  assert metrics["density"] == pytest.approx(0.8 ** LEVELS, abs=1e-4)
  # Global: layers end at different densities.
  per_layer = metrics["density_per_layer"]
  assert max(per_layer.values()) - min(per_layer.values()) > 0.02


def test_trained_networks_are_exactly_sparse(experiment):
  for level in range(1, LEVELS + 1):
    masks = _masks(experiment, level)
    trained = tickets.load_trained_weights(
        os.path.join(paths.level(experiment, level), "trained"))
    for name, mask in masks.items():
      kernel = trained[f"{name}/kernel"]
      assert np.all(kernel[mask == 0] == 0), (level, name)
      assert np.count_nonzero(kernel[mask == 1]) > 0.99 * mask.sum()


def test_controls_sit_beside_the_ticket(experiment):
  for level in range(1, LEVELS + 1):
    d = paths.level(experiment, level)
    ticket = store.read_json(os.path.join(d, "metrics.json"))
    reinit = store.read_json(os.path.join(d, "reinit", "metrics.json"))
    rand = store.read_json(os.path.join(d, "random_mask", "metrics.json"))
    assert reinit["density"] == pytest.approx(ticket["density"])
    assert rand["density_per_layer"] == pytest.approx(
        ticket["density_per_layer"])
    random_masks = store.read_npz(os.path.join(d, "random_mask",
                                                   "mask.npz"))
    masks = _masks(experiment, level)
    for name in masks:
      assert random_masks[name].sum() == masks[name].sum()
      assert not np.array_equal(random_masks[name], masks[name])
    for m in (ticket, reinit, rand):
      assert 0.5 < m["metrics"]["test_accuracy"] <= 1.0
      assert m["start_step"] == 5
  summary = store.read_json(os.path.join(experiment, "summary.json"))
  runs = {(r["level"], r["run"]) for r in summary["rows"]}
  assert len(runs) == 1 + 3 * LEVELS
  assert os.path.getsize(os.path.join(experiment, "accuracy_vs_density.png")
                         ) > 10_000
  with open(os.path.join(experiment, "summary.csv")) as f:
    table = list(csv.DictReader(f))
  assert len(table) == 1 + 3 * LEVELS
  # Each row says which experiment and seed it comes from: summaries of
  # several experiments concatenate.
  assert {(r["experiment"], r["seed"]) for r in table} == {
      (os.path.basename(experiment), "7")}


def test_level_line_times_the_whole_level(experiment):
  """The per-level line's time is the level's: ticket and controls, one
  after another (their sum), or side by side (stacked: they started
  together, so the last to finish)."""
  from lottery_tf.lottery import report  # pylint: disable=g-import-not-at-top
  runs = ("ticket", "reinit", "random_mask")
  metrics = [store.read_json(paths.metrics(paths.run(experiment, 2, r)))
             for r in runs]
  seconds = [m["wall_seconds"] for m in metrics]
  stacked = [m.get("stacked_runs") for m in metrics]
  assert stacked in ([None] * 3, [3] * 3), stacked
  level = max(seconds) if stacked[0] else sum(seconds)
  line = report.level_line(experiment, 2, list(runs[1:]), levels=LEVELS,
                           eta_seconds=90)
  assert line.startswith("level 2/3  density  6"), line
  assert "  reinit " in line and "  random_mask " in line
  assert line.endswith(f"  {report.duration(level)}  ETA 1 min 30 s")
  # Not the ticket's alone.
  if stacked[0]:
    assert max(seconds[1:]) > seconds[0]  # The controls finish after it.
  else:
    assert report.duration(seconds[0]) != report.duration(level)


def test_ticket_holds_rewind_weights_times_mask(experiment):
  level = 2
  ticket = tickets.load(os.path.join(paths.level(experiment, level), "ticket"))
  rewind = store.read_npz(os.path.join(experiment, "rewind.npz"))
  masks = _masks(experiment, level)
  assert ticket.meta["level"] == level and ticket.meta["rewind_step"] == 5
  assert ticket.meta["density"] == pytest.approx(0.64, abs=1e-3)
  assert set(ticket.meta["versions"]) >= {"tensorflow", "tf-keras"}
  for name, mask in masks.items():
    np.testing.assert_array_equal(ticket.masks[name], mask)
    np.testing.assert_array_equal(ticket.weights[f"{name}/kernel"],
                                  rewind[f"{name}/kernel"] * mask)
  model = ticket.build()
  for key, var in named_weights(model).items():
    np.testing.assert_array_equal(var.numpy(), ticket.weights[key])


def test_ticket_loads_in_plain_tensorflow(experiment):
  path = os.path.join(paths.level(experiment, 2), "ticket")
  code = f"""
import json, numpy as np, tensorflow as tf
t = tf.saved_model.load({path!r})
masks = {{k: v.numpy() for k, v in t.masks.items()}}
logits = t.signatures["serving_default"](images=tf.ones([3, 8, 8, 1]))["logits"]
print(json.dumps({{"masks": {{k: v.tolist() for k, v in masks.items()}},
                  "logits": logits.numpy().tolist(),
                  "modules": sorted(m for m in __import__("sys").modules
                                    if m.startswith("lottery_tf"))}}))
"""
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, env=clean_env(), timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["modules"] == []
  masks = _masks(experiment, 2)
  for name, mask in masks.items():
    np.testing.assert_array_equal(np.array(out["masks"][name]), mask)
  model = tickets.load(path).build()
  expected = model(np.ones([3, 8, 8, 1], np.float32), training=False).numpy()
  np.testing.assert_allclose(np.array(out["logits"]), expected, rtol=1e-5,
                             atol=1e-5)


def test_modified_ticket_is_refused(experiment, tmp_path, cli):
  import shutil  # pylint: disable=g-import-not-at-top
  copy = str(tmp_path / "ticket")
  shutil.copytree(os.path.join(paths.level(experiment, 1), "ticket"), copy)
  tickets.load(copy)  # intact: fine
  with open(os.path.join(copy, "variables", "variables.data-00000-of-00001"),
            "r+b") as f:
    f.seek(100)
    byte = f.read(1)
    f.seek(100)
    f.write(bytes([byte[0] ^ 1]))
  with pytest.raises(UserError, match="modified"):
    tickets.load(copy)
  proc = cli("export", f"--ticket={copy}", f"--export_dir={tmp_path}/out")
  assert proc.returncode == 2
  assert proc.stderr.strip().count("\n") == 0
  assert "--ticket" in proc.stderr and "modified" in proc.stderr
  assert not os.path.exists(tmp_path / "out" / "export.json")
  os.remove(os.path.join(copy, "saved_model.pb"))
  with pytest.raises(UserError, match="missing"):
    tickets.load(copy)
  with pytest.raises(UserError, match="not a ticket"):
    tickets.load(str(tmp_path / "nothing"))


def test_no_level_directory_beyond_the_last_level(experiment, tmp_path):
  """The next level's mask stays in the last level; a longer run uses it."""
  assert not os.path.exists(paths.level(experiment, LEVELS + 1))
  assert sorted(os.listdir(experiment)) == sorted([
      f"level_{lv:02d}" for lv in range(LEVELS + 1)] + [
          "accuracy_vs_density.png", "hparams.json", "rewind.npz",
          "summary.csv", "summary.json", "tensorboard"])
  # Extending a copy by one level starts it from the stored next mask.
  exp = str(tmp_path / "longer")
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.copytree(experiment, exp)
  planned = store.read_npz(os.path.join(paths.level(exp, LEVELS),
                                            "next_mask.npz"))
  LotteryRunner(exp, Task(**TASK), PruningHparams(),
                LotteryHparams(levels=LEVELS + 1, rewind="5it", controls=""),
                quiet=True, log=lambda line: None).run()
  got = _masks(exp, LEVELS + 1)
  for name, mask in planned.items():
    np.testing.assert_array_equal(got[name], mask)
    assert np.all(_masks(exp, LEVELS)[name][mask == 1] == 1)  # nested
  assert os.path.exists(os.path.join(paths.level(exp, LEVELS + 1),
                                     "metrics.json"))
  assert not os.path.exists(paths.level(exp, LEVELS + 2))


def test_rerun_skips_finished_levels(experiment):
  before = {p: os.path.getmtime(p) for p in (
      os.path.join(paths.level(experiment, lv), "metrics.json")
      for lv in range(LEVELS + 1))}
  lines = []
  LotteryRunner(experiment, Task(**TASK), PruningHparams(),
                LotteryHparams(levels=LEVELS, rewind="5it"), quiet=True,
                log=lines.append).run()
  # The header says everything is done, then one "(done)" line per level.
  assert lines[0].startswith(f"find: {experiment}"), lines
  assert lines[-(LEVELS + 2)] == f"  levels 0-{LEVELS}: all done", lines
  assert [line.split("  ")[0] for line in lines[-(LEVELS + 1):]] == [
      f"(done) level {lv}/{LEVELS}" for lv in range(LEVELS + 1)], lines
  assert {p: os.path.getmtime(p) for p in before} == before


def _conv_bn_model(seed=0):
  init = keras.initializers.GlorotNormal(seed=seed)
  inputs = keras.Input((6, 6, 1))
  h = keras.layers.Conv2D(4, 3, kernel_initializer=init, name="conv")(inputs)
  h = keras.layers.BatchNormalization(name="bn")(h)
  h = keras.layers.Flatten(name="flat")(h)
  out = keras.layers.Dense(3, kernel_initializer=init, name="logits")(h)
  return keras.Model(inputs, out)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_rewind_restores_snapshot_times_mask_and_iteration_k(optimizer):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 6, 6, 1)).astype("float32")
  y = rng.integers(0, 3, size=64)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
  hp = TrainingHparams(optimizer=optimizer, lr=0.05, momentum=0.9
                       if optimizer == "sgd" else 0.0, batch_size=16)
  model = pruning.wrap(_conv_bn_model())
  tm = training.compile_model(model, hp, steps_per_epoch=4)
  cb = RewindCallback(6)
  training.fit(tm, training.repeating(lambda: data), steps_per_epoch=4, start_step=0, end_step=12,
               boundaries=[6], callbacks=[cb], verbose=0)
  assert cb.weights is not None
  assert not np.array_equal(cb.weights["bn/moving_mean"], np.zeros(4))
  trained_mean = model.get_layer("bn").moving_mean.numpy()
  assert not np.array_equal(trained_mean, cb.weights["bn/moving_mean"])
  masks = pruning.prune(model, pruning.get_masks(model), PruningHparams(
      pruning_fraction=0.5))
  cb.restore(model, masks, optimizer=tm.optimizer)
  # A fresh optimizer (every variable, its step count too, at 0) whose lr
  # schedule resumes at the rewind step.
  assert int(tm.optimizer.iterations.numpy()) == 0
  assert optimizers.global_step(tm.optimizer) == 6
  for var in tm.optimizer.variables():
    assert not np.any(var.numpy()), var.name
  for name, mask in masks.items():
    np.testing.assert_array_equal(pruning.get_masks(model)[name], mask)
    np.testing.assert_array_equal(
        pruning.get_kernels(model)[name], cb.weights[f"{name}/kernel"] * mask)
  np.testing.assert_array_equal(model.get_layer("bn").moving_mean.numpy(),
                                cb.weights["bn/moving_mean"])
  # Training on from the rewind keeps the new mask and its zeros.
  training.fit(tm, training.repeating(lambda: data), steps_per_epoch=4, start_step=6, end_step=12,
               verbose=0)
  for name, mask in masks.items():
    np.testing.assert_array_equal(pruning.get_masks(model)[name], mask)
    assert np.all(pruning.get_kernels(model)[name][mask == 0] == 0)


def test_thirty_levels_reach_99_9_percent_sparsity(tmp_path):
  task = Task(DatasetHparams(dataset="digits"), ModelHparams("lenet_300_100"),
              TrainingHparams(lr=0.05, batch_size=64, training_steps="2it"))
  runner = LotteryRunner(str(tmp_path / "deep"), task, PruningHparams(),
                         LotteryHparams(levels=30, controls=""), quiet=True,
                         log=lambda line: None, save_tickets=False)
  runner.run()
  last = store.read_json(os.path.join(paths.level(runner.exp_dir, 30),
                                          "metrics.json"))
  assert last["density"] == pytest.approx(0.8 ** 30, rel=0.05)
  assert last["density"] < 0.0013
  # Exactly round(0.2 * alive) of the pool (all 50,200 kernel weights of
  # LeNet-300-100 on 8x8 inputs) go per level, halves up.
  alive = total = 64 * 300 + 300 * 100 + 100 * 10
  for _ in range(30):
    alive -= int(np.floor(0.2 * alive + 0.5))
  masks = store.read_npz(os.path.join(paths.level(runner.exp_dir, 30),
                                          "mask.npz"))
  assert sum(int(m.sum()) for m in masks.values()) == alive
  assert last["density"] == pytest.approx(alive / total, abs=1e-9)


def test_rewind_must_come_before_the_end():
  with pytest.raises(UserError, match="--rewind"):
    LotteryRunner("/tmp/unused", Task(**TASK), PruningHparams(),
                  LotteryHparams(rewind="3ep"))


FIND = ["find", "--dataset=digits", "--model=lenet_300_100", "--lr=0.05",
        "--momentum=0.9", "--batch_size=64", "--training_steps=4ep",
        "--levels=3", "--rewind=1ep", "--seed=3"]


def _rows(summary_path):
  rows = store.read_json(summary_path)["rows"]
  return sorted((r["level"], r["run"], r["density"], r["test_accuracy"],
                 r["test_loss"], r["train_loss"]) for r in rows)


def test_killed_run_resumes_to_the_same_numbers(tmp_path):
  def cmd(out):
    return [sys.executable, "-m", "lottery_tf.cli.main", *FIND,
            f"--output_dir={out}"]
  whole = subprocess.run(cmd(tmp_path / "a"), capture_output=True, text=True,
                         env=clean_env(), timeout=600)
  assert whole.returncode == 0, whole.stderr
  # Start again elsewhere and kill it in the middle of level 2.
  proc = subprocess.Popen(cmd(tmp_path / "b"), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, env=clean_env())
  deadline = time.time() + 300
  marker = None
  while time.time() < deadline and proc.poll() is None:
    found = list((tmp_path / "b").glob("*/level_01/random_mask/metrics.json"))
    if found:
      marker = found[0]
      break
    time.sleep(0.05)
  assert marker is not None, "level 1 never finished"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  exp_b = marker.parent.parent.parent
  assert not (exp_b / "level_03" / "metrics.json").exists()
  again = subprocess.run(cmd(tmp_path / "b"), capture_output=True, text=True,
                         env=clean_env(), timeout=600)
  assert again.returncode == 0, again.stderr
  assert "(done) level 1/3" in again.stdout
  path_a = whole.stdout.strip().splitlines()[-1].split("results: ")[1]
  path_b = again.stdout.strip().splitlines()[-1].split("results: ")[1]
  assert os.path.basename(os.path.dirname(path_a)) == os.path.basename(
      os.path.dirname(path_b))
  assert _rows(path_a) == _rows(path_b)


class _Preempted(Exception):
  pass


def _checkpointed(tmp_path, checkpoint_every):
  """(task, runner(dir)): pre-training, a dense level, a ticket and a reinit
  control on digits, checkpointed every ``checkpoint_every`` steps."""
  task = Task(DatasetHparams(dataset="digits"),
              ModelHparams(model="lenet_300_100"),
              TrainingHparams(lr=0.05, momentum=0.9, batch_size=32,
                              training_steps="2ep",
                              checkpoint_every=checkpoint_every))
  php = PruningHparams()
  lhp = LotteryHparams(levels=1, rewind="0it", controls="reinit",
                       pretrain_steps="20it", pretrain_subset="random:400")

  def runner(d):
    return LotteryRunner(str(tmp_path / d), task, php, lhp,
                         rewind_point=pretrain.plan(task, lhp), quiet=True,
                         log=lambda *_: None)
  return task, runner


def test_every_run_resumes_inside_from_its_checkpoint(tmp_path, monkeypatch):
  """Pre-training, the dense level, a ticket and a control, each cut mid-run."""
  from lottery_tf.training import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  _, runner = _checkpointed(tmp_path, 8)

  runner("clean").run()
  save = checkpoint_lib.MidRunCheckpoint.save
  cut = []

  def save_then_die(self):
    save(self)
    if self.directory not in cut:
      cut.append(self.directory)
      raise _Preempted(self.directory)

  monkeypatch.setattr(checkpoint_lib.MidRunCheckpoint, "save", save_then_die)
  for _ in range(6):
    try:
      runner("cut").run()
      break
    except _Preempted:
      pass
  cut = [os.path.relpath(c, tmp_path / "cut") for c in cut]
  assert cut == ["pretrain/checkpoint", "level_00/checkpoint",
                 "level_01/checkpoint", "level_01/reinit/checkpoint"], cut
  for rel in ("pretrain/metrics.json", "level_00/metrics.json",
              "level_01/metrics.json", "level_01/reinit/metrics.json"):
    a = store.read_json(str(tmp_path / "clean" / rel))
    b = store.read_json(str(tmp_path / "cut" / rel))
    assert a["metrics"] == b["metrics"], rel
  for rel in ("rewind.npz", "level_01/mask.npz", "level_01/next_mask.npz"):
    a = store.read_npz(str(tmp_path / "clean" / rel))
    b = store.read_npz(str(tmp_path / "cut" / rel))
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=f"{rel} {k}")
  assert not list((tmp_path / "cut").rglob("checkpoint"))


def test_a_run_cut_right_after_its_last_checkpoint_resumes(tmp_path,
                                                          monkeypatch):
  """Killed after the final checkpoint (step 90 of 90) but before its
  metrics.json: the resumed run trains 0 steps. Its optimizer's restored
  state must not stay pending (the next run used to fail reading the
  deleted checkpoint, NotFoundError)."""
  from lottery_tf.training import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
  from lottery_tf.training import optimizers  # pylint: disable=g-import-not-at-top
  task, runner = _checkpointed(tmp_path, 10)
  assert task.total_steps == 90

  runner("clean").run()
  save = checkpoint_lib.MidRunCheckpoint.save
  cut = []

  def save_then_die_at_the_end(self):
    save(self)
    step = optimizers.global_step(self.model.optimizer)
    if step == 90 and self.directory not in cut:
      cut.append(self.directory)
      raise _Preempted(self.directory)

  monkeypatch.setattr(checkpoint_lib.MidRunCheckpoint, "save",
                      save_then_die_at_the_end)
  for _ in range(6):
    try:
      runner("cut").run()  # A new runner: a fresh process's fresh optimizer.
      break
    except _Preempted:
      pass
  cut = [os.path.relpath(c, tmp_path / "cut") for c in cut]
  assert cut == ["level_00/checkpoint", "level_01/checkpoint",
                 "level_01/reinit/checkpoint"], cut
  for rel in ("pretrain/metrics.json", "level_00/metrics.json",
              "level_01/metrics.json", "level_01/reinit/metrics.json"):
    a = store.read_json(str(tmp_path / "clean" / rel))
    b = store.read_json(str(tmp_path / "cut" / rel))
    assert a["metrics"] == b["metrics"], rel
  assert not list((tmp_path / "cut").rglob("checkpoint"))
