"""A run that starts at step k > 0 gets a fresh optimizer; only the lr
schedule continues at k (PyTorch's and open_lth's behaviour).

tf_keras Adam derives its bias correction from ``optimizer.iterations``: an
optimizer whose count was set to k after a rewind took first steps 2-4x too
large. Each test here compares against a freshly built optimizer at lr(k).
"""
import os

import numpy as np
import pytest

from lottery_tf import pruning, tickets, training
from lottery_tf.foundations import store
from lottery_tf._keras import keras, tf
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf import paths
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training import checkpoint as checkpoint_lib, optimizers
from lottery_tf.training.rewind import RewindCallback, load_weights, snapshot

OPTIMIZERS = {
    "sgd_momentum": dict(optimizer="sgd", lr=0.05, momentum=0.9),
    "nesterov": dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", lr=0.01),
}
K = 6          # the rewind step
UPDATES = 5    # compared updates after it


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(16 * 20, 5)).astype("float32")
  y = (x[:, 0] + x[:, 1] > 0).astype("int32")
  ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
  return lambda: ds


def _model(seed=0):
  init = keras.initializers.GlorotNormal(seed=seed)
  x = keras.Input((5,))
  h = keras.layers.Dense(8, activation="relu", kernel_initializer=init,
                         name="fc1")(x)
  h = keras.layers.BatchNormalization(name="bn")(h)
  out = keras.layers.Dense(2, kernel_initializer=init, name="logits")(h)
  return pruning.wrap(keras.Model(x, out))


class _Trajectory(keras.callbacks.Callback):
  """Every weight after each step."""

  def __init__(self):
    super().__init__()
    self.steps = []
    self.lrs = []

  def on_train_batch_end(self, batch, logs=None):
    self.steps.append(snapshot(self.model))
    self.lrs.append(float(self.model.optimizer.learning_rate.numpy()))


def _updates_after(model, tm, data, start, steps):
  traj = _Trajectory()
  training.fit(tm, training.repeating(data), steps_per_epoch=20,
               start_step=start, end_step=start + steps, callbacks=[traj],
               verbose=0)
  return traj


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_first_updates_after_a_rewind_equal_a_fresh_optimizers(name):
  # Warm-up to step 2 and a milestone at step 4: lr(k) = 0.5 * peak, and the
  # milestone at step 8 falls inside the compared updates.
  hp = TrainingHparams(batch_size=16, steps_per_execution=1,
                       lr_schedule="step", milestones="4it,8it", gamma=0.5,
                       warmup_steps="2it", **OPTIMIZERS[name])
  data = _data()
  training.set_seed(0)
  model = _model()
  tm = training.compile_model(model, hp, steps_per_epoch=20)
  rewind = RewindCallback(K)
  training.fit(tm, training.repeating(data), steps_per_epoch=20, start_step=0,
               end_step=12, boundaries=[K], callbacks=[rewind], verbose=0)
  masks = pruning.prune(model, PruningHparams(pruning_fraction=0.5))
  rewind.restore(model, masks, optimizer=tm.optimizer)
  assert int(tm.optimizer.iterations.numpy()) == 0
  assert optimizers.global_step(tm.optimizer) == K
  got = _updates_after(model, tm, data, K, UPDATES)

  # The reference: a newly built model and optimizer, the same weights and
  # masks, the schedule's values from step k on as a plain function of its
  # own step count.
  peak = hp.lr
  lr_at = [peak * (0.5 if s < 8 else 0.25) for s in range(K, K + UPDATES)]
  fresh_lr = keras.optimizers.schedules.PiecewiseConstantDecay(
      [8 - K - 1], [lr_at[0], lr_at[-1]])
  training.set_seed(1)
  ref_model = _model(seed=1)
  kwargs = {"momentum": hp.momentum, "nesterov": hp.nesterov}
  ref_opt = (keras.optimizers.Adam(learning_rate=fresh_lr) if name == "adam"
             else keras.optimizers.SGD(learning_rate=fresh_lr, **kwargs))
  ref_tm = training.compile_model(ref_model, hp, steps_per_epoch=20,
                                  optimizer=ref_opt)
  load_weights(ref_model, rewind.weights)
  pruning.set_masks(ref_model, masks)
  ref = _updates_after(ref_model, ref_tm, data, K, UPDATES)

  np.testing.assert_allclose(got.lrs, lr_at, rtol=1e-6)
  for step, (a, b) in enumerate(zip(got.steps, ref.steps)):
    for key in a:
      np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-6,
                                 err_msg=f"update {step + 1}, {key}")


def test_adam_after_a_rewind_is_not_biased_by_the_old_step_count():
  """Constant gradient: a fresh Adam moves each weight by lr, step 1 on."""
  var = tf.Variable([0.0, 0.0])
  schedule = optimizers.LotterySchedule(0.1)
  opt = keras.optimizers.Adam(learning_rate=schedule)
  grad = tf.constant([1.0, -2.0])
  for _ in range(500):
    opt.apply_gradients([(grad, var)])
  optimizers.start_run(opt, 500)
  var.assign([0.0, 0.0])  # (float32 resolution near the trained values)
  opt.apply_gradients([(grad, var)])
  # Fresh Adam: |update| = lr * |m_hat| / sqrt(v_hat) = lr. With its count
  # left at 500 it would be ~1.99 lr.
  np.testing.assert_allclose(np.abs(var.numpy()), [0.1, 0.1], rtol=1e-5)
  assert optimizers.global_step(opt) == 501


def _task(optimizer, **extra):
  return Task(DatasetHparams(dataset="digits"),
              ModelHparams(model="lenet_300_100"),
              TrainingHparams(batch_size=64, training_steps=f"{K + UPDATES}it",
                              steps_per_execution=1, seed=3,
                              **OPTIMIZERS[optimizer], **extra))


def test_imp_level_and_its_control_train_from_k_with_a_fresh_adam(tmp_path):
  """The runner's own path: level 1 and its reinit control from step k."""
  task = _task("adam")
  runner = LotteryRunner(str(tmp_path / "exp"), task, PruningHparams(),
                         LotteryHparams(levels=1, rewind=f"{K}it",
                                        controls="reinit"),
                         quiet=True, log=lambda *_: None)
  runner.run()
  d = paths.level(runner.exp_dir, 1)
  masks = store.read_npz(os.path.join(d, "mask.npz"))
  rewind = store.read_npz(os.path.join(runner.exp_dir, "rewind.npz"))
  trained = tickets.load_trained_weights(os.path.join(d, "trained"))

  # By hand: a new wrapped model, the rewind weights under level 1's mask,
  # a newly built Adam at lr(k) = lr, the same data from step k.
  training.set_seed(task.thp.seed)
  model = pruning.wrap(task.build_model())
  tm = training.compile_model(model, task.thp.replace(), task.steps_per_epoch,
                              optimizer=keras.optimizers.Adam(task.thp.lr))
  load_weights(model, rewind)
  pruning.set_masks(model, masks)
  training.set_seed(task.thp.seed)
  training.fit(tm, task.train_data(task.thp.seed),
               steps_per_epoch=task.steps_per_epoch, start_step=K,
               end_step=K + UPDATES, verbose=0)
  mine = {f"{n}/kernel": k for n, k in pruning.get_kernels(model).items()}
  for key, value in mine.items():
    np.testing.assert_allclose(trained[key], value, rtol=1e-5, atol=1e-6,
                               err_msg=key)
  control = store.read_json(os.path.join(d, "reinit", "metrics.json"))
  assert control["start_step"] == K


class _Preempted(Exception):
  pass


def test_resumed_run_restores_the_step_count_it_saved(tmp_path, monkeypatch):
  """A level cut mid-run resumes with Adam's own count, not a reset one."""
  task = _task("adam", checkpoint_every=2)
  lhp = LotteryHparams(levels=1, rewind=f"{K}it", controls="")

  def runner(d):
    return LotteryRunner(str(tmp_path / d), task, PruningHparams(), lhp,
                         quiet=True, log=lambda *_: None)

  runner("clean").run()
  save = checkpoint_lib.MidRunCheckpoint.save
  restored = []
  restore = checkpoint_lib.MidRunCheckpoint.restore

  def save_then_die(self):
    save(self)
    if self.directory.endswith(os.path.join("level_01", "checkpoint")):
      raise _Preempted()

  def spy_restore(self, model, start_step=None):
    step = restore(self, model, start_step)
    if step is not None:
      restored.append((step, int(model.optimizer.iterations.numpy())))
    return step

  monkeypatch.setattr(checkpoint_lib.MidRunCheckpoint, "save", save_then_die)
  with pytest.raises(_Preempted):
    runner("cut").run()
  monkeypatch.setattr(checkpoint_lib.MidRunCheckpoint, "save", save)
  monkeypatch.setattr(checkpoint_lib.MidRunCheckpoint, "restore", spy_restore)
  runner("cut").run()
  # Cut at step k + 2: two Adam steps taken, restored as two.
  assert restored == [(K + 2, 2)]
  for rel in ("level_01/metrics.json",):
    a = store.read_json(str(tmp_path / "clean" / rel))
    b = store.read_json(str(tmp_path / "cut" / rel))
    assert a["metrics"] == b["metrics"]
    assert b["resumed_from_step"] == K + 2
