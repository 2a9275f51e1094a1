"""Durations, lr schedules, optimizers, determinism and segment-wise fit."""
import numpy as np
import pytest

from lottery_tf import training
from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.training import durations, optimizers


def test_durations():
  assert durations.parse("160ep").to_steps(391) == 160 * 391
  assert durations.parse("500it").to_steps(391) == 500
  assert durations.parse("0").to_steps(10) == 0
  assert [str(d) for d in durations.parse_list("80ep, 120ep", "--m")] == [
      "80ep", "120ep"]
  for bad in ("10", "ep", "1.5ep", "-3it", "10 epochs", ""):
    with pytest.raises(UserError, match="--training_steps"):
      durations.parse(bad)


def test_step_schedule_with_warmup():
  hp = TrainingHparams(lr=0.1, lr_schedule="step", milestones="2ep,3ep",
                       gamma=0.1, warmup_steps="4it")
  sched = optimizers.lr_schedule(hp, steps_per_epoch=10)
  got = [float(sched(s)) for s in (0, 1, 3, 10, 19, 20, 29, 30, 100)]
  np.testing.assert_allclose(
      got, [0.025, 0.05, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-5)
  # Rewinding sets iterations = k: the schedule is a function of the step only.
  restored = optimizers.LotterySchedule.from_config(sched.get_config())
  assert float(restored(25)) == pytest.approx(0.01)


@pytest.mark.parametrize("changes,flag", [
    ({"optimizer": "rmsprop"}, "--optimizer"),
    ({"lr": 0.0}, "--lr"),
    ({"lr": -1.0}, "--lr"),
    ({"momentum": 1.5}, "--momentum"),
    ({"batch_size": 0}, "--batch_size"),
    ({"weight_decay": -1e-4}, "--weight_decay"),
    ({"lr_schedule": "cosine"}, "--lr_schedule"),
    ({"lr_schedule": "step"}, "--milestones"),
    ({"training_steps": "0it"}, "--training_steps"),
    ({"warmup_steps": "five"}, "--warmup_steps"),
    ({"nesterov": True}, "--nesterov"),
])
def test_bad_training_hparams_name_the_flag(changes, flag):
  with pytest.raises(UserError, match=flag):
    optimizers.validate(TrainingHparams(**changes))


def _toy(seed=0, n=256, classes=3):
  rng = np.random.default_rng(123)
  x = rng.normal(size=(n, 6)).astype("float32")
  y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")
  ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
  def train_data():
    return ds.shuffle(n, seed=seed, reshuffle_each_iteration=True).batch(32)
  init = keras.initializers.GlorotNormal(seed=seed)
  inputs = keras.Input((6,))
  h = keras.layers.Dense(16, activation="relu", kernel_initializer=init,
                         name="fc1")(inputs)
  out = keras.layers.Dense(classes, kernel_initializer=init, name="logits")(h)
  return keras.Model(inputs, out), train_data, ds.batch(64)


def _train(hp, segments):
  training.set_seed(hp.seed)
  model, train_data, eval_ds = _toy(hp.seed)
  tm = training.compile_model(model, hp, steps_per_epoch=8)
  for a, b in segments:
    training.fit(tm, training.repeating(train_data), steps_per_epoch=8, start_step=a, end_step=b,
                 verbose=0)
  return tm, [w.copy() for w in model.get_weights()], eval_ds


@pytest.mark.parametrize("tty", [True, False])
def test_progress_is_one_line_rewritten_in_place(monkeypatch, tty):
  """By default a run shows one line, rewritten and then erased, on a
  terminal, and nothing elsewhere; --verbose brings Keras' epoch lines."""
  import io  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from lottery_tf.training import train as train_lib  # pylint: disable=g-import-not-at-top

  class Out(io.StringIO):
    def isatty(self):
      return tty
  out = Out()
  monkeypatch.setattr(sys, "stdout", out)
  monkeypatch.setattr(train_lib.ProgressLine, "every", 0.0)
  assert training.verbosity(quiet=True) == 0
  assert training.verbosity(quiet=False) == train_lib.LINE
  hp = TrainingHparams(lr=0.05, batch_size=32, seed=3, steps_per_execution=1)
  model, train_data, _ = _toy(hp.seed)
  tm = training.compile_model(model, hp, steps_per_epoch=8)
  training.fit(tm, training.repeating(train_data), steps_per_epoch=8,
               start_step=4, end_step=20, verbose=training.verbosity(False))
  text = out.getvalue()
  if not tty:
    assert text == ""
  else:
    assert "\n" not in text and text.endswith("\r")
    shown = [t.strip() for t in text.split("\r") if t.strip()]
    assert shown[0].startswith("training  step 5/20  loss ")
    assert shown[-1].startswith("training  step 20/20  loss ")
  monkeypatch.setattr(train_lib, "EPOCH_LINES", True)
  assert training.verbosity(quiet=False) == (1 if tty else 2)


def test_same_seed_same_numbers_and_other_seed_differs():
  hp = TrainingHparams(lr=0.05, momentum=0.9, batch_size=32, seed=3)
  _, w1, _ = _train(hp, [(0, 20)])
  _, w2, _ = _train(hp, [(0, 20)])
  _, w3, _ = _train(hp.replace(seed=4), [(0, 20)])
  for a, b in zip(w1, w2):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(w1, w3))


def test_training_in_segments_equals_one_run():
  # A rewind point at 5 and a resume at 13 must not change the trajectory.
  hp = TrainingHparams(lr=0.05, momentum=0.9, batch_size=32, seed=1,
                       lr_schedule="step", milestones="12it")
  tm, whole, _ = _train(hp, [(0, 20)])
  tm2, split, _ = _train(hp, [(0, 5), (5, 13), (13, 20)])
  assert int(tm.optimizer.iterations) == int(tm2.optimizer.iterations) == 20
  for a, b in zip(whole, split):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_weight_decay_shrinks_the_kernels():
  # Which weights decay, exactly (biases, BatchNorm): the test below.
  hp = TrainingHparams(lr=0.1, batch_size=32, seed=0)
  _, plain, _ = _train(hp, [(0, 16)])
  _, decayed, _ = _train(hp.replace(weight_decay=0.05), [(0, 16)])
  assert np.linalg.norm(decayed[0]) < np.linalg.norm(plain[0])


def test_adam_with_label_smoothing_learns():
  hp = TrainingHparams(optimizer="adam", lr=0.01, batch_size=32, seed=0,
                       label_smoothing=0.1)
  tm, _, eval_ds = _train(hp, [(0, 64)])
  metrics = training.evaluate(tm, {"test": eval_ds})
  assert metrics["test_accuracy"] > 0.8


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_is_the_loss_trained_on(smoothing):
  """The compiled loss is cross-entropy against (1 - e) * one_hot + e / K."""
  model, _, _ = _toy(0)
  hp = TrainingHparams(label_smoothing=smoothing)
  tm = training.compile_model(model, hp, steps_per_epoch=1)
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(8, 3)).astype("float32")
  labels = rng.integers(0, 3, size=8).astype("int32")
  got = float(tm.compute_loss(None, tf.constant(labels), tf.constant(logits)))
  targets = (1 - smoothing) * np.eye(3)[labels] + smoothing / 3
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  want = float(np.mean(-(targets * log_p).sum(-1)))
  assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_weights_masks_and_thresholds_float32(policy):
  from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
  from lottery_tf.data.hparams import DatasetHparams # pylint: disable=g-import-not-at-top
  from lottery_tf.models.hparams import ModelHparams # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.task import Task  # pylint: disable=g-import-not-at-top
  from lottery_tf.pruning.hparams import PruningHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.pruning.wrap import wrappers  # pylint: disable=g-import-not-at-top
  from lottery_tf.training import optimizers  # pylint: disable=g-import-not-at-top
  thp = TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                        training_steps="20it", mixed_precision=policy)
  task = Task(DatasetHparams(dataset="mnist_5k"),
              ModelHparams(model="lenet_300_100"), thp)
  training.set_seed(0)
  with task.scope():
    model = pruning.wrap(task.build_model())
    tm = training.compile_model(model, thp, task.steps_per_epoch)
  half = "float16" if policy == "mixed_float16" else "bfloat16"
  wrapper = [l for l in model.layers if pruning.is_wrapper(l)][0]
  assert wrapper.layer.compute_dtype == half
  assert model.outputs[0].dtype == half and tm.outputs[0].dtype == tf.float32
  scaled = isinstance(tm.optimizer, keras.mixed_precision.LossScaleOptimizer)
  assert scaled == (policy == "mixed_float16")
  masks = pruning.prune(model, pruning.get_masks(model), PruningHparams(
      pruning_fraction=0.5))
  pruning.set_masks(model, masks)
  training.fit(tm, task.train_data(), steps_per_epoch=task.steps_per_epoch,
               start_step=0, end_step=20, verbose=0)
  assert int(tm.optimizer.iterations.numpy()) == 20
  for name, w in wrappers(model).items():
    kernel, mask, threshold = w.pruning_vars[0]
    assert kernel.dtype == mask.dtype == threshold.dtype == tf.float32, name
    k = kernel.numpy()
    assert np.all(k[masks[name] == 0] == 0), name
    assert np.all(np.isfinite(k)), name
  # Thresholds are computed in float32 from the float32 kernels: pruning the
  # trained model keeps exactly the largest 80% of the surviving weights.
  kernels = pruning.get_kernels(model)
  assert all(k.dtype == np.float32 for k in kernels.values())
  again = pruning.prune(model, masks, PruningHparams(pruning_fraction=0.2))
  alive = np.concatenate([np.abs(kernels[n][masks[n] == 1]) for n in masks])
  kept = np.concatenate([np.abs(kernels[n][again[n] == 1]) for n in again])
  assert kept.min() >= np.quantile(alive, 0.2) - 1e-7
  metrics = training.evaluate(tm, {"test": task.eval_data()["test"]})
  assert metrics["test_accuracy"] > 0.5
  if scaled:
    optimizers.start_run(tm.optimizer, 0)
    assert float(tm.optimizer.loss_scale) == float(tm.optimizer.initial_scale)


@pytest.mark.parametrize("decay_on", ["kernels", "all"])
def test_weight_decay_on_kernels_or_every_weight(decay_on):
  """One SGD step on a model with BatchNorm equals w - lr * (g + wd * w) for
  the decayed weights and w - lr * g for the others."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16, 4)).astype("float32")
  y = (x[:, 0] > 0).astype("int32")
  init = keras.initializers.GlorotNormal(seed=0)
  inp = keras.Input((4,))
  h = keras.layers.Dense(6, kernel_initializer=init, bias_initializer="ones",
                         name="fc1")(inp)
  h = keras.layers.BatchNormalization(beta_initializer="ones", name="bn")(h)
  out = keras.layers.Dense(2, kernel_initializer=init, name="logits")(h)
  model = keras.Model(inp, out)
  lr, wd = 0.1, 0.05
  hp = TrainingHparams(lr=lr, batch_size=16, weight_decay=wd,
                       weight_decay_on=decay_on, steps_per_execution=1)
  tm = training.compile_model(model, hp, steps_per_epoch=1)
  before = {v.name: v.numpy().copy() for v in tm.trainable_variables}
  with tf.GradientTape() as tape:
    loss = tm.compiled_loss(tf.constant(y), tm(x, training=True))
  grads = dict(zip(before, [g.numpy() for g in tape.gradient(
      loss, tm.trainable_variables)]))
  # The BatchNorm moving statistics are updated by the forward pass above,
  # not by the optimizer; put them back so both passes see the same ones.
  bn = model.get_layer("bn")
  bn.moving_mean.assign(np.zeros(6, np.float32))
  bn.moving_variance.assign(np.ones(6, np.float32))
  tm.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
  decayed = {v.name for v in tm.decayed_variables()}
  kernels = {v.name for v in tm.trainable_variables if "kernel" in v.name}
  assert decayed == (kernels if decay_on == "kernels" else set(before))
  assert len(before) == 6  # fc1 kernel/bias, bn gamma/beta, logits kernel/bias
  for v in tm.trainable_variables:
    w = before[v.name]
    want = w - lr * (grads[v.name] + (wd * w if v.name in decayed else 0))
    np.testing.assert_allclose(v.numpy(), want, rtol=1e-5, atol=1e-6,
                               err_msg=v.name)


def test_weight_decay_on_is_checked():
  with pytest.raises(UserError, match="--weight_decay_on"):
    optimizers.validate(TrainingHparams(weight_decay_on="biases"))
