"""Stacked runs: a level's ticket and its controls trained side by side as
one model give the numbers of the same runs trained one by one.

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
import subprocess
import sys

import numpy as np
import pytest

from conftest import clean_env
from lottery_tf import keras, models, paths
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.foundations import store
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


def _find(exp_dir, model, optimizer, stack, **thp):
  recipe = (dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
            if optimizer == "sgd" else dict(optimizer="adam", lr=1e-3))
  task = Task(DatasetHparams(dataset="digits"), ModelHparams(model=model),
              TrainingHparams(batch_size=64, training_steps="1ep", seed=3,
                              stack_runs=stack, **recipe, **thp))
  LotteryRunner(exp_dir, task, PruningHparams(),
                LotteryHparams(levels=1, rewind="3it"), quiet=True,
                log=lambda line: None).run()
  return exp_dir


def _metrics(exp_dir, run, level=1):
  d = paths.level(exp_dir, level)
  return store.read_json(paths.metrics(os.path.join(d, run) if run else d))


def _assert_same(one_by_one, stacked):
  for run in RUNS:
    a, b = _metrics(one_by_one, run), _metrics(stacked, run)
    assert "stacked_runs" not in a and b["stacked_runs"] == 3, run
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
