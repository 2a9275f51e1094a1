"""Masked training vs dense training vs tfmot's stock recipe, side by side.

    python benchmarks/masked_training.py [--models lenet_300_100,conv4,resnet20]
                                         [--steps N] [--repeats R]

For each model, in one process, three copies train on the same cached random
batches (batch 128; LeNet-300-100 on 28x28x1, the others on 32x32x3) with the
same optimizer (SGD, lr 0.1, momentum 0.9) and steps per execution:

  dense   training.compile_model + fit on the plain model;
  masked  pruning.wrap + 80%-sparse global masks, the same TrainModel step
          (gradients masked, kernel *= mask after each step);
  stock   tfmot's recipe: prune_low_magnitude(ConstantSparsity(0.8, 0,
          frequency=100)) + UpdatePruningStep + plain model.compile/fit.

Each copy first runs one untimed warm-up fit (tracing, first-touch memory);
then the three take turns, R times in rotating order so that machine noise
hits all of them alike, and the median ms/step is reported. Time is taken from
``on_epoch_begin`` to ``on_epoch_end`` (the data iterator already exists; the
end waits for the last step's results). One JSON line per model, then one
timing global mask computation over ResNet-50's 25.6M weights.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from lottery_tf import models, pruning, training  # noqa: E402
from lottery_tf._keras import keras, tf  # noqa: E402
from lottery_tf.training.hparams import TrainingHparams  # noqa: E402

import tensorflow_model_optimization as tfmot  # noqa: E402

BATCH = 128
SPARSITY = 0.8
INPUT_SHAPES = {"lenet_300_100": (28, 28, 1)}
DEFAULT_STEPS = {"lenet_300_100": 200, "conv4": 40, "resnet20": 20}


class _EpochTimer(keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.seconds = None

  def on_epoch_begin(self, epoch, logs=None):
    self._t0 = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds = time.perf_counter() - self._t0


def _data(shape, num_classes=10, batches=8, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batches * BATCH, *shape)).astype(np.float32)
  y = rng.integers(0, num_classes, size=batches * BATCH).astype(np.int32)
  return (tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
          .cache().repeat())


def _loss():
  return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _variants(name, shape, steps):
  """{variant: (keras model to fit, extra callbacks)}."""
  hp = TrainingHparams(optimizer="sgd", lr=0.1, momentum=0.9,
                       batch_size=BATCH)
  out = {}
  dense = training.compile_model(models.build(name, shape, 10, seed=0), hp,
                                 steps)
  spe = dense._steps_per_execution.numpy().item()  # pylint: disable=protected-access
  out["dense"] = (dense, [])

  wrapped = pruning.wrap(models.build(name, shape, 10, seed=0))
  pruning.set_masks(wrapped, pruning.prune(wrapped, "global",
                                           fraction=SPARSITY))
  out["masked"] = (training.compile_model(wrapped, hp, steps), [])

  stock = tfmot.sparsity.keras.prune_low_magnitude(
      models.build(name, shape, 10, seed=0),
      pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(
          SPARSITY, begin_step=0, frequency=100))
  stock.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                loss=_loss(), steps_per_execution=spe,
                metrics=[keras.metrics.SparseCategoricalAccuracy(
                    name="accuracy")])
  out["stock"] = (stock, [tfmot.sparsity.keras.UpdatePruningStep()])
  return out, spe


def _time(model, callbacks, data, steps) -> float:
  timer = _EpochTimer()
  model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0,
            callbacks=[*callbacks, timer])
  return 1000.0 * timer.seconds / steps


def bench_model(name, steps, repeats):
  shape = INPUT_SHAPES.get(name, (32, 32, 3))
  training.set_seed(0)
  variants, spe = _variants(name, shape, steps)
  data = _data(shape)
  for model, callbacks in variants.values():  # Warm-up, not timed.
    _time(model, callbacks, data, steps)
  times = {v: [] for v in variants}
  order = list(variants)
  for r in range(repeats):
    for v in order[r % 3:] + order[:r % 3]:
      model, callbacks = variants[v]
      times[v].append(_time(model, callbacks, data, steps))
  med = {v: statistics.median(t) for v, t in times.items()}
  density = pruning.densities(variants["masked"][0])["overall"]
  return {
      "model": name, "batch": BATCH,
      "dense_ms_per_step": round(med["dense"], 3),
      "masked_ms_per_step": round(med["masked"], 3),
      "masked_over_dense": round(med["masked"] / med["dense"], 3),
      "tfmot_stock_ms_per_step": round(med["stock"], 3),
      "tfmot_stock_over_dense": round(med["stock"] / med["dense"], 3),
      "steps": steps, "repeats": repeats, "steps_per_execution": spe,
      "masked_density": round(density, 4),
  }


def bench_global_mask(repeats=5):
  with tf.Graph().as_default():  # Shapes only; allocates no TF variables.
    model = models.build("resnet50", (224, 224, 3), 1000)
    shapes = {l.name: tuple(l.kernel.shape.as_list()) for l in model.layers
              if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))}
  rng = np.random.default_rng(0)
  weights = {n: rng.standard_normal(s, dtype=np.float32)
             for n, s in shapes.items()}
  masks = pruning.masks.ones_like(weights)
  seconds = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    pruning.prune_global(weights, masks, 0.2)
    seconds.append(time.perf_counter() - t0)
  return {"global_mask_resnet50_seconds": round(statistics.median(seconds), 3),
          "first_call_seconds": round(seconds[0], 3),
          "weights": int(sum(np.prod(s) for s in shapes.values())),
          "repeats": repeats}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", default="lenet_300_100,conv4,resnet20")
  parser.add_argument("--steps", type=int, default=0,
                      help="timed steps per fit (0 = a per-model default)")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  for name in [m.strip() for m in args.models.split(",") if m.strip()]:
    steps = args.steps or DEFAULT_STEPS.get(name, 20)
    print(json.dumps(bench_model(name, steps, args.repeats)), flush=True)
  print(json.dumps(bench_global_mask()), flush=True)


if __name__ == "__main__":
  main()
