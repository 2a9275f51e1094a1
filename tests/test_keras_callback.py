"""lt.keras: IMP on a researcher's own model and plain model.fit."""
import numpy as np
import pytest

import lottery_tf as lt
from lottery_tf import data, models, paths
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.foundations import store

keras = lt.keras


def _mlp(seed=0):
  keras.utils.set_random_seed(seed)
  x = keras.Input((20,))
  h = keras.layers.Dense(64, activation="relu", name="fc1")(x)
  h = keras.layers.Dense(32, activation="relu", name="fc2")(h)
  return keras.Model(x, keras.layers.Dense(5, name="logits")(h))


def _xy(n=512, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 20)).astype("float32")
  y = (x[:, :5].argmax(1)).astype("int32")
  return x, y


class _Leak(keras.callbacks.Callback):
  """Largest |pruned weight| after every step (runs after the lottery
  callback when listed after it)."""

  def __init__(self):
    super().__init__()
    self.worst = []

  def on_train_batch_end(self, batch, logs=None):
    masks = lt.keras.masks(self.model)
    kernels = {l.layer.name: l.layer.kernel.numpy() for l in self.model.layers
               if hasattr(l, "layer")}
    self.worst.append(max(float(np.abs(kernels[n] * (1 - m)).max())
                          for n, m in masks.items()))


def _optimizer(name):
  return (keras.optimizers.SGD(0.05, momentum=0.9) if name == "sgd"
          else keras.optimizers.Adam(1e-2))


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_plain_fit_keeps_pruned_weights_exactly_zero(opt):
  x, y = _xy()
  for with_callback in (True, False):
    model = lt.keras.wrap(_mlp())
    model.compile(optimizer=_optimizer(opt), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    lottery = lt.keras.LotteryCallback(rewind_step=3)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=[lottery])
    masks = lt.keras.prune(model, 0.5)
    assert lt.keras.density(model) == pytest.approx(0.5, abs=0.01)
    assert lottery.snapshot.step == 3
    lt.keras.rewind(model, lottery.snapshot)
    assert int(model.optimizer.iterations.numpy()) == 3
    for n, m in masks.items():
      kernel = next(l.layer.kernel.numpy() for l in model.layers
                    if getattr(l, "layer", None) is not None
                    and l.layer.name == n)
      np.testing.assert_array_equal(
          kernel, lottery.snapshot.weights[f"{n}/kernel"] * m)
    leak = _Leak()
    callbacks = [lottery, leak] if with_callback else [leak]
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=callbacks)
    if with_callback:
      assert max(leak.worst) == 0.0, opt
      assert lt.keras.masks(model).keys() == masks.keys()
      for n, m in lt.keras.masks(model).items():
        np.testing.assert_array_equal(m, masks[n])
    else:
      # The control: without it the optimizer revives pruned weights, so
      # the check above can fail.
      assert max(leak.worst) > 1e-4, opt


def test_the_callback_refuses_what_would_break_it():
  model = lt.keras.wrap(_mlp())
  model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
  x, y = _xy(64)
  with pytest.raises(ValueError, match="steps_per_execution"):
    model.fit(x, np.eye(5)[y], verbose=0,
              callbacks=[lt.keras.LotteryCallback()])
  with pytest.raises(ValueError, match="wrap"):
    lt.keras.prune(_mlp(), 0.2)
  with pytest.raises(ValueError, match="fraction"):
    lt.keras.prune(model, 1.5)
  with pytest.raises(ValueError, match="no snapshot"):
    lt.keras.rewind(model, None)
  assert lt.keras.layers.Dense is keras.layers.Dense
  import tf_keras  # pylint: disable=g-import-not-at-top
  assert lt.keras.layers.Dense is tf_keras.layers.Dense


def test_three_rounds_of_plain_fit_reach_find_s_masks(tmp_path):
  seed, spe_batch = 5, 64
  recipe = dict(dataset="digits", model="lenet_300_100", optimizer="sgd",
                lr=0.05, momentum=0.9, batch_size=spe_batch,
                training_steps="2ep", seed=seed)
  r = lt.find(levels=3, rewind="0it", controls="", output_dir=str(tmp_path),
              quiet=True, **recipe)
  init = r.ticket(0)
  shape, classes = init.meta["input_shape"], init.meta["num_classes"]
  # The researcher's own model: the same architecture and initial weights,
  # the same batches, compiled and fit by hand.
  model = lt.keras.wrap(models.build("lenet_300_100", tuple(shape), classes,
                                     seed=seed))
  from lottery_tf.training.rewind import load_weights  # pylint: disable=g-import-not-at-top
  load_weights(model, init.weights)
  model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  dhp = DatasetHparams(dataset="digits")
  steps = r.summary.query("level == 0")["steps"].iloc[0] // 2
  lottery = lt.keras.LotteryCallback(rewind_step=0)
  for level in range(1, 4):
    stream = data.load(dhp, "train", batch_size=spe_batch, seed=seed,
                       training=True, start_batch=0)
    model.fit(stream, steps_per_epoch=int(steps), epochs=2, verbose=0,
              callbacks=[lottery])
    mine = lt.keras.prune(model, 0.2)
    theirs = store.read_npz(paths.mask(paths.level(r.directory, level)))
    assert mine.keys() == theirs.keys()
    for name in mine:
      np.testing.assert_array_equal(mine[name], theirs[name],
                                    err_msg=f"level {level} {name}")
    lt.keras.rewind(model, lottery.snapshot)
