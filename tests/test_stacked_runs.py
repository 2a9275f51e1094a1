"""Stacked runs: a level's ticket and its controls (and the lmc copy, and
the members of --replicates, on input streams of their own) trained side
by side as one model give the numbers of the same runs trained one by one.

Measured here (CPU, op determinism on): identical to the last bit for
LeNet-300-100 with SGD+momentum and weight decay, and for a small
convolutional network with BatchNorm (as ResNet-20's blocks, two of them:
ResNet-20 itself gives the same, in four times the test's time) with Adam;
the tests allow 1e-5 relative (float tolerance: another device may fuse the
stacked step's kernels differently).
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import clean_env
from lottery_tf import keras, models, paths
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.foundations import store
from lottery_tf.lottery import report
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.models import base
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training.hparams import TrainingHparams

RUNS = ("", "reinit", "random_mask")  # "": the ticket, in level_NN/
BN_MODEL = "test_stacked_conv_bn"


def conv_bn(image, num_classes, init):
  """Two conv -> BatchNorm -> ReLU blocks, as ResNet-20's, then the head."""
  x = image
  for i in (1, 2):
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False,
                            kernel_initializer=init.he_normal(),
                            name=f"conv{i}")(x)
    x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
    x = keras.layers.ReLU(name=f"relu{i}")(x)
  x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
  return base.classifier(x, num_classes, init.glorot_normal())


@contextlib.contextmanager
def _registered(model):
  if model != BN_MODEL:
    yield
    return
  models.register(BN_MODEL, "conv-BatchNorm test network")(conv_bn)
  try:
    yield
  finally:
    models.unregister(BN_MODEL)


def _task(model, optimizer, stack, **thp):
  recipe = (dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
            if optimizer == "sgd" else dict(optimizer="adam", lr=1e-3))
  return Task(DatasetHparams(dataset="digits"), ModelHparams(model=model),
              TrainingHparams(batch_size=64, training_steps="1ep", seed=3,
                              stack_runs=stack, **recipe, **thp))


def _find(exp_dir, model, optimizer, stack, lhp=None, **thp):
  LotteryRunner(exp_dir, _task(model, optimizer, stack, **thp),
                PruningHparams(),
                LotteryHparams(levels=1, rewind="3it", **(lhp or {})),
                quiet=True,
                log=lambda line: None).run()
  return exp_dir


def _metrics(exp_dir, run, level=1):
  d = paths.level(exp_dir, level)
  return store.read_json(paths.metrics(os.path.join(d, run) if run else d))


def _assert_same(one_by_one, stacked, runs=3):
  """``runs``: how many trained side by side in ``stacked`` (None: any)."""
  for run in RUNS:
    a, b = _metrics(one_by_one, run), _metrics(stacked, run)
    assert "stacked_runs" not in a, run
    assert runs is None or b["stacked_runs"] == runs, run
    for key in ("test_accuracy", "test_loss"):
      np.testing.assert_allclose(b["metrics"][key], a["metrics"][key],
                                 rtol=1e-5, err_msg=f"{run or 'ticket'} {key}")
    for key in ("loss", "accuracy", "lr"):
      np.testing.assert_allclose(b["history"][key], a["history"][key],
                                 rtol=1e-5, err_msg=f"{run or 'ticket'} {key}")
    assert b["density"] == a["density"] and b["seed"] == a["seed"]
  # The next level's mask comes from the ticket's trained weights.
  m1, m2 = (store.read_npz(paths.next_mask(d, 1)) for d in (one_by_one,
                                                             stacked))
  assert all(np.array_equal(m1[k], m2[k]) for k in m1)
  # Each control's own mask file, and the ticket's (rewind) weights.
  for d in ("random_mask",):
    r1, r2 = (store.read_npz(paths.mask(paths.run(e, 1, d)))
              for e in (one_by_one, stacked))
    assert all(np.array_equal(r1[k], r2[k]) for k in r1)


@pytest.mark.parametrize("model,optimizer", [("lenet_300_100", "sgd"),
                                             (BN_MODEL, "adam")])
def test_stacked_level_equals_runs_one_by_one(tmp_path, model, optimizer):
  with _registered(model):
    _assert_same(_find(str(tmp_path / "seq"), model, optimizer, "off"),
                 _find(str(tmp_path / "stacked"), model, optimizer, "on"))


def test_auto_stacks_a_dense_model_on_a_cpu_not_a_conv_one(tmp_path):
  exp = _find(str(tmp_path / "lenet"), "lenet_300_100", "sgd", "auto")
  assert _metrics(exp, "reinit")["stacked_runs"] == 3
  # The level line's time: the stack's, once (its runs started together),
  # not the sum of its three runs' wall times.
  walls = [_metrics(exp, run)["wall_seconds"] for run in RUNS]
  assert report._wall_seconds(exp, 1, list(RUNS[1:]), store.LOCAL) == (  # pylint: disable=protected-access
      pytest.approx(max(walls)))
  exp = _find(str(tmp_path / "conv"), "conv2", "sgd", "auto")
  assert "stacked_runs" not in _metrics(exp, "reinit")


def test_runs_that_cannot_stack_train_one_by_one(tmp_path):
  """A mid-run checkpoint is one run's: --checkpoint_every trains the
  level's runs one after another, with the same files."""
  exp = _find(str(tmp_path / "ckpt"), "lenet_300_100", "sgd", "on",
              checkpoint_every=10)
  for run in RUNS:
    assert "stacked_runs" not in _metrics(exp, run)


def test_stacked_under_mirrored_on_two_cpus(tmp_path):
  """--strategy=mirrored over 2 logical CPUs: stacked == one by one."""
  out = {}
  for stack in ("--stack_runs=on", "--stack_runs=off"):
    proc = subprocess.run(
        [sys.executable, "-m", "lottery_tf.cli.main", "find",
         "--dataset=digits", "--model=lenet_300_100", "--optimizer=sgd",
         "--lr=0.05", "--momentum=0.9", "--batch_size=64",
         "--training_steps=1ep", "--levels=1", "--rewind=3it", "--seed=3",
         "--strategy=mirrored", "--cpu_devices=2", stack,
         f"--output_dir={tmp_path / stack[-3:]}", "--quiet"],
        capture_output=True, text=True, env=clean_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / stack[-3:]
    (exp,) = [os.path.join(root, n) for n in os.listdir(root)
              if n.startswith("find_")]
    out[stack] = exp
    assert json.load(open(paths.metrics(paths.level(exp, 1))))[
        "replicas"] == 2
  _assert_same(out["--stack_runs=off"], out["--stack_runs=on"])


def _same_path(a, b):
  """Two instability results (lmc metrics.json or summary.json) alike."""
  for key in ("instability", "connected_fraction", "train_error_barrier",
              "test_error_barrier", "per_example_barrier_mean"):
    np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-7,
                               err_msg=key)
  for ra, rb in zip(a["rows"], b["rows"]):
    for key in ra:
      np.testing.assert_allclose(rb[key], ra[key], rtol=1e-5, atol=1e-7,
                                 err_msg=f"rows {key}")


def test_lmc_command_trains_its_two_copies_side_by_side(tmp_path):
  """`lottery_tf lmc`: the two copies (two data orders, two streams) as
  one model give the copies and the path of the two one by one."""
  from lottery_tf.analysis import instability  # pylint: disable=g-import-not-at-top
  out = {}
  for stack in ("off", "on"):
    task = _task("lenet_300_100", "sgd", stack)
    out[stack] = store.read_json(instability.run(
        str(tmp_path / stack), task, instability.from_rewind(task, 5),
        points=3, quiet=True, log=lambda line: None))
  a, b = out["off"], out["on"]
  _same_path(a, b)
  for ca, cb in zip(a["copies"], b["copies"]):
    assert "stacked_runs" not in ca and cb["stacked_runs"] == 2
    assert ca["data_seed"] == cb["data_seed"]
    np.testing.assert_allclose(cb["metrics"]["test_accuracy"],
                               ca["metrics"]["test_accuracy"], rtol=1e-5)


def test_replicates_and_the_lmc_copy_train_each_level_as_one_stack(tmp_path):
  """find --replicates=2 --controls=reinit,random_mask,lmc: both members'
  level runs train as one stack of eight on four input streams (each
  member's data order, and each one's instability copy on --seed +
  lmc.COPY_SEED_OFFSET); each member ends where it ends trained alone, one
  run at a time, its instability path included."""
  from lottery_tf import descriptions  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery import replicates  # pylint: disable=g-import-not-at-top
  out = {}
  for stack in ("off", "on"):
    desc = descriptions.Find.of(
        DatasetHparams(dataset="digits"), ModelHparams(model="lenet_300_100"),
        _task("lenet_300_100", "sgd", stack).thp, PruningHparams(),
        LotteryHparams(levels=1, rewind="3it",
                       controls="reinit,random_mask,lmc",
                       interpolation_points=3))
    logged = []
    replicates.run(desc, str(tmp_path / stack), 2, quiet=True,
                   log=logged.append)
    out[stack] = [m.directory(str(tmp_path / stack))
                  for m in replicates.members(desc, 2)]
  for seq, stk in zip(out["off"], out["on"]):
    _assert_same(seq, stk, runs=8)
    a, b = _metrics(seq, "lmc"), _metrics(stk, "lmc")
    assert b["stacked_runs"] == 8 and a["data_seeds"] == b["data_seeds"]
    _same_path(a, b)
    for key in ("test_accuracy", "test_loss"):
      np.testing.assert_allclose(b["second_copy"][key],
                                 a["second_copy"][key], rtol=1e-5)
    # The second copy saw other batches: from the ticket's rewind weights
    # and mask, on the same batches, it would have ended where the ticket
    # did.
    assert (b["second_copy"]["test_loss"] !=
            _metrics(stk, "")["metrics"]["test_loss"])
  assert (_metrics(out["on"][1], "")["seed"] ==
          _metrics(out["on"][0], "")["seed"] + 1)
  # Killed with member 0's level 1 not begun and member 1's reinit run
  # unfinished: the same command resumes each where it was, to the same
  # numbers (member 0's four runs and member 1's one in a stack of five).
  shutil.rmtree(paths.level(out["on"][0], 1))
  os.remove(paths.metrics(paths.run(out["on"][1], 1, "reinit")))
  replicates.run(desc, str(tmp_path / "on"), 2, quiet=True,
                 log=logged.append)
  for seq, stk in zip(out["off"], out["on"]):
    _assert_same(seq, stk, runs=None)
    _same_path(_metrics(seq, "lmc"), _metrics(stk, "lmc"))
  assert _metrics(out["on"][0], "reinit")["stacked_runs"] == 5
  assert _metrics(out["on"][1], "reinit")["stacked_runs"] == 5
  assert _metrics(out["on"][1], "random_mask")["stacked_runs"] == 8
