"""Pruning: the one-shot schedule, wrapping, mask computation, masked training."""
import math

import numpy as np
from absl.testing import parameterized

from lottery_tf import pruning, training
from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.pruning import masks as masks_lib
from lottery_tf.pruning.hparams import PruningHparams

import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.sparsity.keras import (
    pruning_wrapper)


# -- tiny models and data ---------------------------------------------------


def _mlp(seed=0, classes=3):
  init = keras.initializers.GlorotNormal(seed=seed)
  x = inputs = keras.Input((6,), name="features")
  x = keras.layers.Dense(32, activation="relu", kernel_initializer=init,
                         bias_initializer="ones", name="fc1")(x)
  x = keras.layers.Dense(16, activation="relu", kernel_initializer=init,
                         name="fc2")(x)
  x = keras.layers.Dense(classes, kernel_initializer=init, name="logits")(x)
  return keras.Model(inputs, x, name="mlp")


def _convnet(seed=0):
  init = keras.initializers.GlorotNormal(seed=seed)
  x = inputs = keras.Input((8, 8, 3), name="image")
  x = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=init,
                          name="conv1")(x)
  x = keras.layers.BatchNormalization(name="bn1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  x = keras.layers.MaxPooling2D(name="pool1")(x)
  x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False,
                          kernel_initializer=init, name="conv2")(x)
  x = keras.layers.Flatten(name="flatten")(x)
  x = keras.layers.Dense(10, activation="relu", kernel_initializer=init,
                         name="fc")(x)
  x = keras.layers.Dense(3, kernel_initializer=init, name="logits")(x)
  return keras.Model(inputs, x, name="convnet")


def _toy_data(n=256, batch=32, seed=0):
  rng = np.random.default_rng(123)
  x = rng.normal(size=(n, 6)).astype("float32")
  y = ((x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32"))
  ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()

  def train_data():
    return ds.shuffle(n, seed=seed).batch(batch)
  return train_data, n // batch


def _random_weights(shapes, seed=0, scales=None):
  rng = np.random.default_rng(seed)
  return {n: (rng.standard_normal(s) * (scales or {}).get(n, 1.0)
              ).astype(np.float32) for n, s in shapes.items()}


def _half_masks(model, seed=0):
  """A random mask per wrapped layer keeping half of its weights."""
  rng = np.random.default_rng(seed)
  out = {}
  for name, kernel in pruning.get_kernels(model).items():
    flat = np.zeros(kernel.size, np.float32)
    flat[rng.permutation(kernel.size)[:kernel.size // 2]] = 1
    out[name] = flat.reshape(kernel.shape)
  return out


def _nested(new, old):
  return all(np.all(new[n] <= old[n]) for n in old)


SHAPES = {"conv": (3, 3, 4, 8), "fc": (40, 30), "small": (7,), "logits": (30, 5)}


# -- schedule ------------------------------------------------------------------


class ScheduleTest(tf.test.TestCase):

  def test_never_fires(self):
    schedule = pruning.OneShotSchedule()
    for step in (0, 1, 99, 100, 10**6):
      should_prune, sparsity = schedule(tf.constant(step, tf.int64))
      self.assertFalse(bool(should_prune))
      self.assertEqual(float(sparsity), 0.0)

  def test_serialises(self):
    config = pruning.OneShotSchedule().get_config()
    self.assertEqual(config, {"class_name": "lottery_tf>OneShotSchedule",
                              "config": {}})
    self.assertIsInstance(keras.utils.deserialize_keras_object(config),
                          pruning.OneShotSchedule)
    self.assertIsInstance(
        pruning.OneShotSchedule.from_config(config["config"]),
        pruning.OneShotSchedule)

  def test_wrapped_model_round_trips_through_config(self):
    wrapped = pruning.wrap(_mlp())
    restored = keras.models.model_from_json(wrapped.to_json())
    self.assertEqual([type(l).__name__ for l in restored.layers],
                     ["InputLayer"] + ["OneShotPruneLowMagnitude"] * 3)
    self.assertEqual([l.name for l in restored.layers],
                     [l.name for l in wrapped.layers])
    self.assertIsInstance(restored.layers[1].pruning_schedule,
                          pruning.OneShotSchedule)
    # tfmot's own from_config finds the schedule through Keras's registry.
    config = wrapped.layers[1].get_config()
    stock = pruning_wrapper.PruneLowMagnitude.from_config(config)
    self.assertIsInstance(stock.pruning_schedule, pruning.OneShotSchedule)

  def test_wrapper_refuses_a_firing_schedule(self):
    with self.assertRaisesRegex(ValueError, "OneShotSchedule"):
      pruning.OneShotPruneLowMagnitude(
          keras.layers.Dense(3),
          pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, 0))


# -- wrap / strip -------------------------------------------------------------


class WrapTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("all", {}, ["conv1", "conv2", "fc", "logits"]),
      ("conv_only", {"prune_only": "conv"}, ["conv1", "conv2"]),
      ("ignore_logits", {"layers_to_ignore": ["logits"]},
       ["conv1", "conv2", "fc"]),
  )
  def test_wraps_the_prunable_layers(self, kwargs, expected):
    model = _convnet()
    wrapped = pruning.wrap(model, **kwargs)
    self.assertEqual(pruning.prunable_layers(wrapped), expected)
    kinds = {(l.layer.name if pruning.is_wrapper(l) else l.name): type(l)
             for l in wrapped.layers}
    for name in ("image", "bn1", "relu1", "pool1", "flatten"):
      self.assertFalse(issubclass(kinds[name], pruning_wrapper.PruneLowMagnitude))
    for name in expected:
      self.assertIs(kinds[name], pruning.OneShotPruneLowMagnitude)
    # Only kernels are pruned, never biases: one (kernel, mask) per layer.
    for layer in wrapped.layers:
      if pruning.is_wrapper(layer):
        self.assertLen(layer.pruning_vars, 1)
        self.assertIs(layer.pruning_vars[0][0], layer.layer.kernel)
    self.assertLen(training.mask_pairs(wrapped), len(expected))
    # Same weights, same function, all-ones masks, and the original untouched.
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    self.assertAllClose(model(x), wrapped(x), atol=0, rtol=0)
    for mask in pruning.get_masks(wrapped).values():
      self.assertAllEqual(mask, np.ones_like(mask))
    self.assertEqual(pruning.densities(wrapped)["overall"], 1.0)
    self.assertFalse(any(pruning.is_wrapper(l) for l in model.layers))

  def test_wrapper_names_follow_tfmot(self):
    wrapped = pruning.wrap(_mlp())
    self.assertEqual([l.name for l in wrapped.layers],
                     ["features", "prune_low_magnitude_fc1",
                      "prune_low_magnitude_fc2", "prune_low_magnitude_logits"])
    self.assertIn("prune_low_magnitude_fc1/mask:0",
                  [v.name for v in wrapped.weights])

  def test_bad_arguments_name_the_flag(self):
    with self.assertRaisesRegex(UserError, "--layers_to_ignore.*'nope'"):
      pruning.wrap(_mlp(), layers_to_ignore=["nope"])
    with self.assertRaisesRegex(UserError, "--prune_only"):
      pruning.wrap(_mlp(), prune_only="dense")
    with self.assertRaisesRegex(UserError, "already wrapped"):
      pruning.wrap(pruning.wrap(_mlp()))

  def test_strip(self):
    model = _convnet()
    wrapped = pruning.wrap(model)
    masks = _half_masks(wrapped)
    pruning.set_masks(wrapped, masks)
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype("float32")
    expected = wrapped(x).numpy()
    plain = pruning.strip(wrapped)
    self.assertEqual([l.name for l in plain.layers],
                     [l.name for l in model.layers])
    self.assertFalse(any(pruning.is_wrapper(l) for l in plain.layers))
    self.assertAllClose(plain(x), expected, atol=0, rtol=0)
    for name, mask in masks.items():
      kernel = plain.get_layer(name).kernel.numpy()
      self.assertAllEqual(kernel[mask == 0], np.zeros(int((mask == 0).sum())))
    # The copy is independent of the wrapped model.
    fc = wrapped.get_layer("prune_low_magnitude_fc").layer.kernel
    fc.assign(fc + 1.0)
    self.assertAllClose(plain(x), expected, atol=0, rtol=0)
    # tfmot's strip_pruning works on our wrappers too.
    pruning.set_masks(wrapped, masks)
    stock = tfmot.sparsity.keras.strip_pruning(wrapped)
    self.assertEqual([l.name for l in stock.layers],
                     [l.name for l in model.layers])
    self.assertAllClose(stock(x), wrapped(x), atol=0, rtol=0)


# -- masks (NumPy) ---------------------------------------------------------------


def _reference_global(weights, masks, fraction):
  """Brute force: sort alive entries by (|w|, layer order, flat index)."""
  entries = []
  for li, name in enumerate(masks):
    flat_w = np.abs(weights[name].reshape(-1))
    for i in np.flatnonzero(masks[name].reshape(-1)):
      entries.append((flat_w[i], li, i, name))
  entries.sort(key=lambda e: e[:3])
  k = masks_lib.count_to_remove(fraction, len(entries))
  out = {n: m.copy().reshape(-1) for n, m in masks.items()}
  for _, _, i, name in entries[:k]:
    out[name][i] = 0
  return {n: out[n].reshape(masks[n].shape) for n in masks}


class MasksTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(0, 1, 2)
  def test_global_matches_brute_force_with_many_ties(self, seed):
    rng = np.random.default_rng(seed)
    # Integer-valued weights: hundreds of ties at every threshold.
    weights = {n: rng.integers(-6, 7, size=s).astype(np.float32)
               for n, s in {"a": (12, 10), "b": (50,), "c": (3, 3, 2)}.items()}
    masks = masks_lib.ones_like(weights)
    for _ in range(6):
      expected = _reference_global(weights, masks, 0.3)
      masks = pruning.prune_global(weights, masks, 0.3)
      for name in weights:
        self.assertAllEqual(masks[name], expected[name])

  @parameterized.named_parameters(("global", "global"),
                                  ("layerwise", "layerwise"))
  def test_thirty_rounds_nested_and_density_follows(self, strategy):
    p = 0.2
    weights = _random_weights(SHAPES)
    prune = masks_lib.get_strategy(strategy)
    masks = masks_lib.ones_like(weights)
    sizes = {n: w.size for n, w in weights.items()}
    total = sum(sizes.values())
    expected = dict(sizes)  # The exact counts of round-to-nearest each round.
    for r in range(1, 31):
      new = prune(weights, masks, p)
      self.assertTrue(_nested(new, masks))
      counts = masks_lib.counts(new)
      # Rounding to the nearest weight every round keeps a count within
      # 0.5 * sum_{i<r} (1-p)^i of N (1-p)^r.
      bound = 0.5 * sum((1 - p)**i for i in range(r)) + 1e-9
      if strategy == "layerwise":
        for name in sizes:
          expected[name] -= masks_lib.count_to_remove(p, expected[name])
          self.assertEqual(counts[name], expected[name])
          self.assertLessEqual(abs(counts[name] - sizes[name] * (1 - p)**r),
                               bound)
      else:
        before = sum(masks_lib.counts(masks).values())
        self.assertEqual(sum(counts.values()),
                         before - masks_lib.count_to_remove(p, before))
        self.assertLessEqual(abs(sum(counts.values()) - total * (1 - p)**r),
                             bound)
      masks = new
    # 0.8^30 = 0.12% density; the rounding slack is 2.5 weights per pool.
    pools = len(sizes) if strategy == "layerwise" else 1
    self.assertAllClose(masks_lib.density(masks), 0.8**30,
                        atol=2.5 * pools / total)

  def test_thirty_rounds_tiny_and_one_weight_layers(self):
    weights = {"one": np.array([0.5], np.float32),
               "two": np.array([1.0, -2.0], np.float32),
               "five": np.arange(5, dtype=np.float32)}
    for prune in (pruning.prune_global, pruning.prune_layerwise):
      masks = masks_lib.ones_like(weights)
      for _ in range(30):
        masks = prune(weights, masks, 0.5)
        self.assertTrue(all(np.all((m == 0) | (m == 1)) for m in masks.values()))
      # A layer never goes below zero, and a layer at zero stays at zero.
      self.assertEqual(sum(masks_lib.counts(masks).values()), 0)
      self.assertEqual(prune(weights, masks, 0.5), masks)

  def test_global_prunes_layers_unequally_layerwise_equally(self):
    shapes = {"big": (100, 50), "quiet": (40, 25), "logits": (20, 10)}
    weights = _random_weights(shapes, scales={"quiet": 0.1})
    masks = masks_lib.ones_like(weights)
    glob = masks_lib.layer_densities(pruning.prune_global(weights, masks, 0.2))
    self.assertAlmostEqual(masks_lib.density(
        pruning.prune_global(weights, masks, 0.2)), 0.8, delta=1 / 6200)
    # Small-magnitude layer goes first under one global threshold.
    self.assertLess(glob["quiet"], 0.3)
    self.assertGreater(glob["big"], 0.85)
    self.assertGreater(glob["logits"], 0.85)
    layer = masks_lib.layer_densities(
        pruning.prune_layerwise(weights, masks, 0.2))
    self.assertEqual(layer, {"big": 0.8, "quiet": 0.8, "logits": 0.8})

  @parameterized.named_parameters(("global", "global"),
                                  ("layerwise", "layerwise"))
  def test_output_layer_at_its_own_rate_and_ignore(self, strategy):
    shapes = {"big": (100, 50), "quiet": (40, 25), "logits": (20, 10)}
    weights = _random_weights(shapes, scales={"quiet": 0.1, "logits": 0.01})
    masks = masks_lib.ones_like(weights)
    prune = masks_lib.get_strategy(strategy)
    out = masks_lib.layer_densities(prune(
        weights, masks, 0.2, output_layer="logits", output_fraction=0.1))
    self.assertEqual(out["logits"], 0.9)
    # The global pool is the other layers: they lose exactly 20% together.
    pool = {n: masks_lib.counts(prune(
        weights, masks, 0.2, output_layer="logits",
        output_fraction=0.1))[n] for n in ("big", "quiet")}
    self.assertEqual(sum(pool.values()), 6000 - 1200)
    ignored = masks_lib.layer_densities(prune(
        weights, masks, 0.2, output_layer="logits", output_fraction=0.1,
        ignore=["quiet"]))
    self.assertEqual(ignored["quiet"], 1.0)
    self.assertEqual(ignored["logits"], 0.9)
    self.assertEqual(ignored["big"], 0.8)
    unpruned_output = masks_lib.layer_densities(prune(
        weights, masks, 0.2, output_layer="logits", output_fraction=0.0))
    self.assertEqual(unpruned_output["logits"], 1.0)

  @parameterized.named_parameters(("global", "global"),
                                  ("layerwise", "layerwise"))
  def test_ties_remove_exactly_k_and_never_reset(self, strategy):
    prune = masks_lib.get_strategy(strategy)
    weights = {"flat": np.full((10, 10), 0.25, np.float32)}
    masks = masks_lib.ones_like(weights)
    remaining = 100
    for _ in range(25):
      masks = prune(weights, masks, 0.2)
      remaining -= masks_lib.count_to_remove(0.2, remaining)
      self.assertEqual(int(masks["flat"].sum()), remaining)
      self.assertLess(int(masks["flat"].sum()), 100)
    # Deterministic tie-break: lowest flat indices go first.
    first = prune(weights, masks_lib.ones_like(weights), 0.2)["flat"].reshape(-1)
    self.assertAllEqual(first, np.r_[np.zeros(20), np.ones(80)])
    # Across layers the earlier layer's ties go first.
    two = {"a": np.ones(5, np.float32), "b": np.ones(5, np.float32)}
    got = pruning.prune_global(two, masks_lib.ones_like(two), 0.6)
    self.assertAllEqual(got["a"], np.zeros(5))
    self.assertAllEqual(got["b"], [0, 1, 1, 1, 1])

  def test_zero_weights_already_pruned_do_not_count(self):
    # The two zero weights are pruned already: the next 50% (2 of 4 alive)
    # are the smallest alive magnitudes, not the zeros.
    weights = {"w": np.array([0, 0, 3, -1, 2, 4], np.float32)}
    masks = {"w": np.array([0, 0, 1, 1, 1, 1], np.float32)}
    out = pruning.prune_global(weights, masks, 0.5)
    self.assertAllEqual(out["w"], [0, 0, 1, 0, 0, 1])
    self.assertAllEqual(masks["w"], [0, 0, 1, 1, 1, 1])  # input untouched

  def test_random_masks(self):
    weights = _random_weights(SHAPES)
    masks = pruning.prune_global(weights, masks_lib.ones_like(weights), 0.6)
    a = pruning.random_masks(masks, seed=1)
    b = pruning.random_masks(masks, seed=1)
    c = pruning.random_masks(masks, seed=2)
    self.assertEqual(masks_lib.counts(a), masks_lib.counts(masks))
    self.assertEqual(masks_lib.counts(c), masks_lib.counts(masks))
    for name in masks:
      self.assertAllEqual(a[name], b[name])
      self.assertEqual(a[name].shape, masks[name].shape)
    self.assertFalse(np.array_equal(a["fc"], c["fc"]))
    self.assertFalse(np.array_equal(a["fc"], masks["fc"]))
    # A layer's random mask does not depend on the other layers.
    alone = pruning.random_masks({"fc": masks["fc"]}, seed=1)
    self.assertAllEqual(alone["fc"], a["fc"])
    overall = pruning.random_masks(masks, seed=1, per_layer=False)
    self.assertEqual(sum(masks_lib.counts(overall).values()),
                     sum(masks_lib.counts(masks).values()))

  def test_bad_input(self):
    weights = _random_weights({"a": (3, 4)})
    masks = masks_lib.ones_like(weights)
    with self.assertRaisesRegex(UserError, "--pruning_fraction"):
      pruning.prune_global(weights, masks, 1.5)
    with self.assertRaisesRegex(UserError, "'a'.*shape"):
      pruning.prune_global(weights, {"a": np.ones((4, 3))}, 0.2)
    with self.assertRaisesRegex(UserError, "'a'.*NaN"):
      pruning.prune_global({"a": np.full((3, 4), np.nan, np.float32)}, masks,
                           0.2)
    with self.assertRaisesRegex(UserError, "--pruning_strategy"):
      masks_lib.get_strategy("random")


# -- masks on a Keras model -------------------------------------------------------


class ModelMasksTest(tf.test.TestCase, parameterized.TestCase):

  def test_set_get_round_trip_and_the_set_weights_trap(self):
    wrapped = pruning.wrap(_mlp())
    dense_weights = wrapped.get_weights()  # includes all-ones masks
    masks = _half_masks(wrapped)
    pruning.set_masks(wrapped, masks)
    got = pruning.get_masks(wrapped)
    self.assertEqual(list(got), ["fc1", "fc2", "logits"])
    for name in masks:
      self.assertAllEqual(got[name], masks[name])
      kernel = pruning.get_kernels(wrapped)[name]
      self.assertAllEqual(kernel[masks[name] == 0],
                          np.zeros(int((masks[name] == 0).sum())))
    self.assertEqual(pruning.densities(wrapped),
                     {"fc1": 0.5, "fc2": 0.5, "logits": 0.5, "overall": 0.5})
    # The trap: set_weights with weights taken before masking puts the old
    # all-ones masks (and dense kernels) back.
    wrapped.set_weights(dense_weights)
    self.assertEqual(pruning.densities(wrapped)["overall"], 1.0)
    pruning.set_masks(wrapped, masks)
    for name in masks:
      self.assertAllEqual(pruning.get_masks(wrapped)[name], masks[name])
      self.assertAllEqual(pruning.get_kernels(wrapped)[name][masks[name] == 0],
                          np.zeros(int((masks[name] == 0).sum())))

  def test_set_masks_errors_name_the_layer(self):
    wrapped = pruning.wrap(_mlp())
    masks = pruning.get_masks(wrapped)
    with self.assertRaisesRegex(UserError, "'fc9'"):
      pruning.set_masks(wrapped, {**masks, "fc9": np.ones(3)})
    with self.assertRaisesRegex(UserError, "no mask.*'fc2'"):
      pruning.set_masks(wrapped, {k: v for k, v in masks.items() if k != "fc2"})
    with self.assertRaisesRegex(UserError, "'fc1'.*shape"):
      pruning.set_masks(wrapped, {**masks, "fc1": np.ones((32, 6))})
    with self.assertRaisesRegex(UserError, "'logits'.*0 and 1"):
      pruning.set_masks(wrapped, {**masks, "logits": masks["logits"] * 0.5})
    # Nothing was assigned by the failed calls.
    self.assertEqual(pruning.densities(wrapped)["overall"], 1.0)

  def test_prune_forms_agree(self):
    wrapped = pruning.wrap(_mlp())
    hp = PruningHparams(pruning_fraction=0.3, output_layer_fraction=0.1)
    expected = pruning.prune_global(
        pruning.get_kernels(wrapped), pruning.get_masks(wrapped), 0.3,
        output_layer="logits", output_fraction=0.1)
    forms = [pruning.prune(wrapped, hp),
             pruning.prune(wrapped, pruning.get_masks(wrapped), hp),
             pruning.prune(wrapped, "global", fraction=0.3,
                           output_fraction=0.1)]
    for got in forms:
      for name in expected:
        self.assertAllEqual(got[name], expected[name])
    self.assertEqual(masks_lib.counts(forms[0])["logits"], 48 - 5)  # 10%
    # prune() assigns nothing.
    self.assertEqual(pruning.densities(wrapped)["overall"], 1.0)
    layerwise = pruning.prune(
        wrapped, PruningHparams(pruning_strategy="layerwise",
                                layers_to_ignore="fc2"))
    self.assertEqual(masks_lib.counts(layerwise),
                     {"fc1": 192 - 38, "fc2": 512, "logits": 48 - 10})
    with self.assertRaisesRegex(UserError, "--layers_to_ignore"):
      pruning.prune(wrapped, PruningHparams(layers_to_ignore="nope"))

  def test_thirty_rounds_through_wrap_set_masks_and_training(self):
    training.set_seed(0)
    wrapped = pruning.wrap(_mlp())
    hp = PruningHparams()
    for _ in range(30):
      pruning.set_masks(wrapped, pruning.prune(wrapped, hp))
    density = pruning.densities(wrapped)["overall"]
    total = sum(m.size for m in pruning.get_masks(wrapped).values())
    self.assertAllClose(density, 0.8**30, atol=2.5 / total)
    masks = pruning.get_masks(wrapped)
    train_data, steps = _toy_data()
    thp = TrainingHparams(lr=0.1, momentum=0.9, batch_size=32)
    tm = training.compile_model(wrapped, thp, steps)
    training.fit(tm, training.repeating(train_data), steps_per_epoch=steps, start_step=0,
                 end_step=1, verbose=0)
    for name, kernel in pruning.get_kernels(wrapped).items():
      self.assertAllEqual(kernel[masks[name] == 0],
                          np.zeros(int((masks[name] == 0).sum())))
    self.assertTrue(np.isfinite(tm.evaluate(
        train_data(), verbose=0, return_dict=True)["loss"]))


# -- masked training --------------------------------------------------------------


class MaskedTrainingTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("sgd_momentum", dict(optimizer="sgd", lr=0.1, momentum=0.9)),
      ("adam", dict(optimizer="adam", lr=0.01)),
  )
  def test_pruned_weights_stay_exactly_zero(self, opt):
    training.set_seed(0)
    wrapped = pruning.wrap(_mlp())
    masks = _half_masks(wrapped)
    pruning.set_masks(wrapped, masks)
    before = pruning.get_kernels(wrapped)
    steps_var = [l.pruning_step for l in wrapped.layers
                 if pruning.is_wrapper(l)]
    train_data, steps = _toy_data()
    tm = training.compile_model(wrapped, TrainingHparams(batch_size=32, **opt),
                                steps)
    training.fit(tm, training.repeating(train_data), steps_per_epoch=steps, start_step=0,
                 end_step=5 * steps, verbose=0)
    self.assertEqual(int(tm.optimizer.iterations.numpy()), 40)
    after = pruning.get_kernels(wrapped)
    for name, mask in masks.items():
      pruned = mask == 0
      self.assertAllEqual(after[name][pruned], np.zeros(int(pruned.sum())))
      # The alive weights did train.
      self.assertGreater(np.abs(after[name] - before[name])[~pruned].max(), 0)
      # The schedule never fired: masks are exactly the ones assigned.
      self.assertAllEqual(pruning.get_masks(wrapped)[name], mask)
    self.assertEqual([int(v.numpy()) for v in steps_var], [-1, -1, -1])

  def test_control_stock_tfmot_wrapper_with_momentum(self):
    """Why TrainModel masks: with the stock wrapper, kernels are not sparse
    between steps, only re-masked before each forward pass and at epoch end.
    """
    training.set_seed(0)
    model = _mlp()
    stock = tfmot.sparsity.keras.prune_low_magnitude(
        model, pruning_schedule=pruning.OneShotSchedule())
    self.assertEqual(type(stock.layers[1]), pruning_wrapper.PruneLowMagnitude)
    masks = _half_masks(stock)
    pruning.set_masks(stock, masks)
    stock.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train_data, steps = _toy_data()
    # tfmot's call asserts pruning_step >= 1 (UpdatePruningStep's job).
    for layer in stock.layers:
      if pruning.is_wrapper(layer):
        layer.pruning_step.assign(1)
    for x, y in train_data().take(5):
      stock.train_on_batch(x, y)
    kernels = pruning.get_kernels(stock)
    revived = sum(int(np.count_nonzero(kernels[n][masks[n] == 0]))
                  for n in masks)
    pruned = sum(int((m == 0).sum()) for m in masks.values())
    # After an optimizer step every pruned weight with a gradient (or a
    # momentum) is non-zero again: the stock wrapper masks the forward pass
    # and leaves gradients and optimizer updates unmasked.
    self.assertGreater(revived, pruned // 2)
    # UpdatePruningStep re-masks the kernels at every epoch end, so a whole-
    # epoch fit ends exactly sparse (our TrainModel is exact after EVERY step).
    stock.fit(train_data(), epochs=1, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    kernels = pruning.get_kernels(stock)
    self.assertEqual(sum(int(np.count_nonzero(kernels[n][masks[n] == 0]))
                         for n in masks), 0)
    for name in masks:
      self.assertAllEqual(pruning.get_masks(stock)[name], masks[name])


# -- hparams ------------------------------------------------------------------------


class PruningHparamsTest(tf.test.TestCase, parameterized.TestCase):

  def test_defaults(self):
    hp = PruningHparams()
    hp.validate()
    self.assertEqual(hp.group, "pruning")
    self.assertEqual(hp.ignored_layers(), ())
    self.assertIsNone(hp.output_fraction())
    self.assertEqual(hp.result_fields(), {})
    hp = PruningHparams(layers_to_ignore="logits, fc1", output_layer_fraction=0.1)
    self.assertEqual(hp.ignored_layers(), ("logits", "fc1"))
    self.assertEqual(hp.output_fraction(), 0.1)
    self.assertEqual(PruningHparams.from_dict(hp.to_dict()), hp)

  @parameterized.parameters(
      ({"pruning_strategy": "random"}, "--pruning_strategy"),
      ({"pruning_fraction": 0.0}, "--pruning_fraction"),
      ({"pruning_fraction": 1.0}, "--pruning_fraction"),
      ({"output_layer_fraction": 1.0}, "--output_layer_fraction"),
      ({"output_layer_fraction": -0.5}, "--output_layer_fraction"),
      ({"prune_only": "dense"}, "--prune_only"),
      ({"layers_to_ignore": "fc1,,logits"}, "--layers_to_ignore"),
  )
  def test_bad_values_name_the_flag(self, changes, flag):
    with self.assertRaisesRegex(UserError, flag):
      PruningHparams(**changes).validate()



def test_conv_layers_at_their_own_rate_layerwise_and_global():
  """Frankle & Carbin's Conv-2: conv 10%, dense 20%, output 10% per round."""
  from lottery_tf import models, pruning as pruning_api
  from lottery_tf.pruning.hparams import PruningHparams
  model = pruning_api.wrap(models.build("conv2", (8, 8, 1), 10, seed=0))
  for strategy in ("layerwise", "global"):
    hp = PruningHparams(pruning_strategy=strategy, pruning_fraction=0.2,
                        conv_layer_fraction=0.1, output_layer_fraction=0.1)
    masks = pruning_api.prune(model, hp)
    dens = {n: float(m.mean()) for n, m in masks.items()}
    for conv in ("conv1", "conv2"):
      assert abs(dens[conv] - 0.9) < 0.002, (strategy, dens)
    assert abs(dens["logits"] - 0.9) < 0.002
    fc = [masks[n] for n in ("fc1", "fc2")]
    kept = sum(m.sum() for m in fc) / sum(m.size for m in fc)
    assert abs(kept - 0.8) < 0.001, (strategy, dens)
  import pytest as _pytest
  from lottery_tf.errors import UserError as _UserError
  with _pytest.raises(_UserError, match="--conv_layer_fraction"):
    PruningHparams(conv_layer_fraction=1.5).validate()


def test_output_layer_rate_applies_to_the_classifier_only():
  """With `logits` unpruned the rate used to land on fc2 without a word."""
  import pytest as _pytest
  from lottery_tf import models, pruning as pruning_api
  from lottery_tf.errors import UserError as _UserError
  from lottery_tf.pruning.hparams import PruningHparams
  lenet = models.build("lenet_300_100", (8, 8, 1), 10, seed=0)
  kept = pruning_api.wrap(lenet, layers_to_ignore=("logits",))
  hp = PruningHparams(layers_to_ignore="logits", output_layer_fraction=0.1)
  with _pytest.raises(_UserError, match="--output_layer_fraction.*"
                      "--layers_to_ignore=logits"):
    hp.validate()
  with _pytest.raises(_UserError, match="--output_layer_fraction"):
    pruning_api.prune(kept, hp)
  with _pytest.raises(_UserError, match="--output_layer_fraction"):
    pruning_api.prune(kept, "global", fraction=0.2, output_fraction=0.1)
  # Without the classifier's rate fc1 and fc2 share the global 20%.
  masks = pruning_api.prune(kept, PruningHparams(layers_to_ignore="logits"))
  assert set(masks) == {"fc1", "fc2"}
  total = sum(m.size for m in masks.values())
  assert sum(m.sum() for m in masks.values()) == total - round(0.2 * total)
  # With every layer pruned, only `logits` gets the 10%.
  full = pruning_api.wrap(models.build("lenet_300_100", (8, 8, 1), 10, seed=0))
  masks = pruning_api.prune(full, PruningHparams(output_layer_fraction=0.1))
  assert masks["logits"].sum() == 1000 - 100
  pool = [masks[n] for n in ("fc1", "fc2")]
  pool_size = sum(m.size for m in pool)
  assert sum(m.sum() for m in pool) == pool_size - round(0.2 * pool_size)
  conv = pruning_api.wrap(models.build("conv2", (8, 8, 1), 10, seed=0),
                          prune_only="conv")
  hp = PruningHparams(prune_only="conv", output_layer_fraction=0.1)
  with _pytest.raises(_UserError, match="--output_layer_fraction.*"
                      "--prune_only=conv"):
    hp.validate()
  with _pytest.raises(_UserError, match="--output_layer_fraction"):
    pruning_api.check_rates(conv, hp)
  # The conv layers' own rate needs a pruned conv layer.
  hp = PruningHparams(conv_layer_fraction=0.1)
  with _pytest.raises(_UserError, match="--conv_layer_fraction.*lenet"):
    pruning_api.check_rates(full, hp)
  with _pytest.raises(_UserError, match="--conv_layer_fraction"):
    pruning_api.check_rates(conv, PruningHparams(
        conv_layer_fraction=0.1, layers_to_ignore="conv1,conv2"))
  pruning_api.check_rates(conv, PruningHparams(conv_layer_fraction=0.1))


def test_pruning_counts_as_the_help_and_readme_say():
  """round(p*R) of the pruned pool's alive weights per level; open_lth's
  ceil(p*R)+1 over all prunable layers differs by 1.48x after 20 levels of
  LeNet-300-100 with `logits` ignored (the README's numbers)."""
  import math
  from lottery_tf.pruning import masks as masks_lib
  from lottery_tf.pruning.hparams import PruningHparams
  rng = np.random.default_rng(0)
  shapes = {"fc1": (784, 300), "fc2": (300, 100), "logits": (100, 10)}
  weights = {n: rng.normal(size=s).astype(np.float32)
             for n, s in shapes.items()}
  pool = {n: weights[n] for n in ("fc1", "fc2")}  # logits ignored: unwrapped
  masks = masks_lib.ones_like(pool)
  alive = []
  for _ in range(20):
    before = sum(masks_lib.counts(masks).values())
    masks = masks_lib.prune_global(pool, masks, 0.2)
    after = sum(masks_lib.counts(masks).values())
    assert before - after == math.floor(0.2 * before + 0.5)
    alive.append(after)
  assert alive[-1] == 3058

  # open_lth's sparse_global on the same weights: R counts the ignored
  # layer's 1,000 weights; |w| <= the value at index ceil(p*R) goes.
  theirs = {n: np.ones(s, np.float32) for n, s in shapes.items()}
  for _ in range(20):
    remaining = sum(int(m.sum()) for m in theirs.values())
    k = math.ceil(0.2 * remaining)
    vector = np.concatenate([np.abs(pool[n][theirs[n] == 1]) for n in pool])
    threshold = np.sort(vector)[k]
    for n in pool:
      theirs[n] = np.where(np.abs(pool[n]) > threshold, theirs[n], 0)
  open_lth = sum(int(theirs[n].sum()) for n in pool)
  assert open_lth == 2062
  assert round(alive[-1] / open_lth, 2) == 1.48

  text = PruningHparams.__dataclass_fields__["pruning_fraction"].metadata[
      "help"]
  for words in ("round(p*R)", "ties", "--layers_to_ignore", "open_lth",
                "ceil(p*R)+1"):
    assert words in text, words
  import os
  readme = open(os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "README.md"), encoding="utf-8").read()
  assert "### How pruning counts" in readme
  assert "3,058" in readme and "2,062" in readme and "`ceil(p·R)+1`" in readme



def test_nothing_left_to_prune_is_refused():
  import pytest as _pytest
  from lottery_tf import models, pruning as pruning_api
  from lottery_tf.errors import UserError as _UserError
  lenet = models.build("lenet_300_100", (8, 8, 1), 10, seed=0)
  with _pytest.raises(_UserError, match="--layers_to_ignore=fc1,fc2,logits"
                      ".*nothing left to prune"):
    pruning_api.wrap(lenet, layers_to_ignore=("fc1", "fc2", "logits"))
  with _pytest.raises(_UserError, match="--prune_only=conv.*nothing left"):
    pruning_api.wrap(lenet, prune_only="conv")


if __name__ == "__main__":
  tf.test.main()
