"""Masked training under MirroredStrategy: 1 vs 2 replicas, dense/wrapped/stock.

    python benchmarks/distributed.py [--models lenet_300_100,conv2]
                                     [--steps N] [--repeats R] [--quick]

The CPU is split into 2 logical devices first thing (before TensorFlow runs
any op), so a CPU-only machine gets a 2-replica ``MirroredStrategy``
(``cross_device_ops=ReductionToOneDevice()``, as ``--strategy=mirrored
--cpu_devices=2`` makes). For each model (LeNet-300-100 on 28x28x1 and
Conv-2 on 32x32x3 by default), in one process, six copies train on cached
random data (tf.data from random tensors; global batch 128: one pipeline of
128 per step, or one pipeline of 64 per replica; SGD lr 0.1, momentum 0.9;
the same steps per execution), each created and compiled under its
strategy's scope:

  replicas  1 = the default strategy, 2 = MirroredStrategy over the 2 CPUs;
  dense     training.compile_model on the plain model (TrainModel's step);
  wrapped   lottery_tf: pruning.wrap + 80%-sparse global masks +
            training.compile_model. The wrapper's forward pass is the inner
            layer's; TrainModel re-masks the kernels after each step;
  stock     tfmot's own PruneLowMagnitude (prune_low_magnitude with
            ConstantSparsity(0.5, begin_step=10**9), which never fires), the
            same masks, a plain keras Model + UpdatePruningStep. Its call runs,
            on every forward pass, a tf.cond on the schedule and
            ``kernel.assign(kernel * mask)`` through a cross-replica
            ``merge_call`` on the MEAN-aggregated mask variables.

Each copy runs two untimed warm-up executions (tracing); then the six take
turns, R times in rotating order so that machine noise hits all of them
alike, and the median time per step is reported. A timed segment calls the
model's Keras train function (what ``fit`` runs: steps_per_execution steps
per call) on an iterator made once, until the last step's loss is back.
Ratios are of time per step (variant ms/step / dense ms/step at the same
replica count: 1.00 = dense speed). After timing, the script asserts that
the 2-replica wrapped model's pruned weights are exactly 0 on BOTH replicas
and that the replicas' kernels are identical. Output: a table, the ratios,
the replica check, then one JSON line.

2 logical CPUs share the same 2 cores, so 2 replicas do not make training
faster here; what the comparison shows is the cost of the per-step mask work
and the cross-replica synchronisation it adds.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

REPLICAS = 2


def _split_cpu(n):
  """n logical CPUs; only possible before TensorFlow's runtime starts."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


# Before any TensorFlow op, and before importing lottery_tf or tfmot.
_split_cpu(REPLICAS)

import numpy as np  # noqa: E402

from lottery_tf import models, pruning, training  # noqa: E402
from lottery_tf._keras import keras  # noqa: E402
from lottery_tf.training.hparams import TrainingHparams  # noqa: E402

import tensorflow_model_optimization as tfmot  # noqa: E402

BATCH = 128
SPARSITY = 0.8
INPUT_SHAPES = {"lenet_300_100": (28, 28, 1)}
VARIANTS = ("dense", "wrapped", "stock")
# (timed steps, steps per execution) per model; full run and --quick.
# Conv-2 rather than Conv-4: a Conv-4 step at 32x32 takes 0.2-0.8 s on 2
# shared cores, so only a few steps would fit in the ~3 minute budget.
STEPS = {"lenet_300_100": (60, 20), "conv2": (3, 3), "conv4": (2, 2)}
QUICK_STEPS = {"lenet_300_100": (20, 10), "conv2": (2, 2), "conv4": (2, 2)}
# --quick: a smaller conv input (16x16x3), so the check runs in seconds.
QUICK_SHAPE = (16, 16, 3)


def _data(shape, batch, num_classes=10, batches=8, seed=0):
  """Random examples (the same for the same seed), cached, repeated."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batches * BATCH, *shape)).astype(np.float32)
  y = rng.integers(0, num_classes, size=batches * BATCH).astype(np.int32)
  options = tf.data.Options()
  # No tf.data autotuning thread: deleting an iterator waits for that
  # thread's next timed wake-up (seen: up to a minute, idle, per model).
  options.autotune.enabled = False
  return (tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
          .cache().repeat().prefetch(2).with_options(options))


def _strategies():
  cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
  assert len(cpus) == REPLICAS, cpus
  mirrored = tf.distribute.MirroredStrategy(
      cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
  assert mirrored.num_replicas_in_sync == REPLICAS
  return {1: tf.distribute.get_strategy(), REPLICAS: mirrored}


def _assign_masks(stock, masks):
  assigned = set()
  for layer in stock.layers:
    for kernel, mask, _ in getattr(layer, "pruning_vars", ()):
      value = masks[layer.layer.name]
      mask.assign(value)
      kernel.assign(kernel.numpy() * value)
      assigned.add(layer.layer.name)
  assert assigned == set(masks), (sorted(assigned), sorted(masks))


def _variants(strategy, name, shape, steps, spe):
  """{variant: (keras model to fit, extra callbacks)} under ``strategy``."""
  hp = TrainingHparams(optimizer="sgd", lr=0.1, momentum=0.9,
                       batch_size=BATCH, steps_per_execution=spe)
  out = {}
  with strategy.scope():
    dense = models.build(name, shape, 10, seed=0)
    out["dense"] = (training.compile_model(dense, hp, steps), [])

    wrapped = pruning.wrap(models.build(name, shape, 10, seed=0))
    masks = pruning.prune(wrapped, "global", fraction=SPARSITY)
    pruning.set_masks(wrapped, masks)
    out["wrapped"] = (training.compile_model(wrapped, hp, steps), [])

    stock = tfmot.sparsity.keras.prune_low_magnitude(
        models.build(name, shape, 10, seed=0),
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(
            0.5, begin_step=10**9))
    # The same masks: the stock wrapper trains the same ticket (its mask op
    # costs the same whatever the values). tfmot also wraps weightless
    # layers (Flatten), so pruning.set_masks does not apply; assign here.
    _assign_masks(stock, masks)
    stock.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(
                      name="accuracy")],
                  steps_per_execution=spe)
    out["stock"] = (stock, [tfmot.sparsity.keras.UpdatePruningStep()])
  return out


class _Runner:
  """Runs a compiled model's train function on its own endless iterator.

  What ``fit`` runs per step, without ``fit``'s per-call set-up (a new data
  handler and, under MirroredStrategy, a new distributed iterator: ~0.3 s a
  call on this machine), so that short timed segments measure steps only.
  """

  def __init__(self, strategy, model, callbacks, shape):
    self.model = model
    with strategy.scope():
      if strategy.num_replicas_in_sync > 1:
        # One pipeline per replica, batches of 64 (= 128 / 2), on its own
        # examples. (fit's default, one pipeline split over the devices by a
        # MultiDeviceIterator, leaves tf.data autotuning threads that make
        # each iterator's deletion wait up to a minute; see _data.)
        data = strategy.distribute_datasets_from_function(
            lambda ctx: _data(shape, ctx.get_per_replica_batch_size(BATCH),
                              seed=ctx.input_pipeline_id),
            tf.distribute.InputOptions(
                experimental_replication_mode=(
                    tf.distribute.InputReplicationMode.PER_REPLICA),
                experimental_fetch_to_device=False))
      else:
        data = _data(shape, BATCH)
      self.iterator = iter(data)
      self.train_function = model.make_train_function()
      for callback in callbacks:  # UpdatePruningStep: pruning_step -1 -> 0.
        callback.set_model(model)
        callback.on_train_begin()
    self.strategy, self.callbacks = strategy, callbacks
    spe = model._steps_per_execution  # pylint: disable=protected-access
    self.spe = int(spe.numpy())

  def seconds_per_step(self, steps: int) -> float:
    calls = max(1, steps // self.spe)
    began = time.perf_counter()
    for _ in range(calls):
      logs = self.train_function(self.iterator)
    float(logs["loss"])  # Waits for the last step.
    return (time.perf_counter() - began) / (calls * self.spe)

  def finish(self):
    # The stock recipe re-masks here (eagerly; as in fit, under the scope:
    # outside it tfmot's merge_call fails on MirroredVariables).
    with self.strategy.scope():
      for callback in self.callbacks:
        callback.on_epoch_end(0)


def _nonzero_pruned(strategy, model):
  """Pruned positions holding a non-zero weight, on the first replica."""
  count = 0
  for layer in model.layers:
    for kernel, mask, _ in getattr(layer, "pruning_vars", ()):
      k = strategy.experimental_local_results(kernel)[0].numpy()
      m = strategy.experimental_local_results(mask)[0].numpy()
      count += int(np.count_nonzero(k[m == 0]))
  return count


def check_replicas(strategy, model):
  """Pruned weights exactly 0 and kernels identical on every replica."""
  pairs = training.mask_pairs(model)
  assert pairs, "no wrapped layers"
  pruned = 0
  for kernel, mask in pairs:
    copies = [v.numpy() for v in strategy.experimental_local_results(kernel)]
    masks = [m.numpy() for m in strategy.experimental_local_results(mask)]
    assert len(copies) == strategy.num_replicas_in_sync == REPLICAS, (
        kernel.name, len(copies))
    for i, (k, m) in enumerate(zip(copies, masks)):
      assert np.array_equal(m, masks[0]), (kernel.name, "mask differs", i)
      assert np.all(k[m == 0] == 0), (kernel.name, "pruned weight != 0", i)
      assert np.array_equal(k, copies[0]), (kernel.name, "replicas differ", i)
    pruned += int((masks[0] == 0).sum())
  return {"layers": len(pairs), "pruned_weights": pruned,
          "replicas": REPLICAS}


def bench_model(name, shape, strategies, steps, spe, repeats):
  training.set_seed(0)
  runs = {}  # (replicas, variant) -> _Runner
  for n, strategy in strategies.items():
    for v, (model, callbacks) in _variants(strategy, name, shape, steps,
                                           spe).items():
      runs[(n, v)] = _Runner(strategy, model, callbacks, shape)
  for run in runs.values():  # Warm-up (tracing, first touch), not timed.
    run.seconds_per_step(2 * spe)
  order = list(runs)
  times = {k: [] for k in order}
  for r in range(repeats):
    shift = r % len(order)
    for key in order[shift:] + order[:shift]:
      times[key].append(runs[key].seconds_per_step(steps))
  # tfmot's recipe between steps: gradients are not masked, so after an
  # update pruned weights are non-zero until the next forward pass (or the
  # epoch-end re-mask) zeroes them. Shown for contrast with check_replicas.
  stock_nonzero = _nonzero_pruned(strategies[REPLICAS],
                                  runs[(REPLICAS, "stock")].model)
  for run in runs.values():
    run.finish()
  med = {k: statistics.median(t) for k, t in times.items()}
  rows = []
  for n in strategies:
    for v in VARIANTS:
      rows.append({
          "model": name, "replicas": n, "variant": v,
          "ms_per_step": round(1000 * med[(n, v)], 3),
          "examples_per_s": round(BATCH / med[(n, v)], 1),
          "over_dense": round(med[(n, v)] / med[(n, "dense")], 3),
      })
  ratios = {
      f"{v}/dense_{n}replica": round(med[(n, v)] / med[(n, "dense")], 3)
      for n in strategies for v in ("wrapped", "stock")}
  ratios.update({
      f"{v}_2replica/1replica": round(med[(REPLICAS, v)] / med[(1, v)], 3)
      for v in VARIANTS})
  check = check_replicas(strategies[REPLICAS],
                         runs[(REPLICAS, "wrapped")].model)
  check["stock_nonzero_pruned_before_epoch_end"] = stock_nonzero
  return rows, ratios, check


def _print_table(rows):
  head = (f"{'model':<14} {'replicas':>8} {'variant':<8} {'ms/step':>9} "
          f"{'examples/s':>11} {'x dense':>8}")
  print(head)
  print("-" * len(head))
  for r in rows:
    print(f"{r['model']:<14} {r['replicas']:>8} {r['variant']:<8} "
          f"{r['ms_per_step']:>9.2f} {r['examples_per_s']:>11.0f} "
          f"{r['over_dense']:>8.3f}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", default="",
                      help="comma-separated model names (default: "
                           "lenet_300_100,conv2; with --quick lenet_300_100)")
  parser.add_argument("--steps", type=int, default=0,
                      help="timed steps per fit (0 = a per-model default; "
                           "rounded up to a multiple of the steps per "
                           "execution)")
  parser.add_argument("--repeats", type=int, default=11)
  parser.add_argument("--quick", action="store_true",
                      help="a few steps, 1 repeat: checks that it runs (for "
                           "tests); the numbers mean nothing")
  args = parser.parse_args(argv)
  tf.get_logger().setLevel("ERROR")  # Retracing warnings: six models a run.
  names = args.models or ("lenet_300_100" if args.quick
                          else "lenet_300_100,conv2")
  repeats = 1 if args.quick else args.repeats
  table = STEPS if not args.quick else QUICK_STEPS
  strategies = _strategies()
  began = time.perf_counter()
  all_rows, report = [], {}
  for name in [m.strip() for m in names.split(",") if m.strip()]:
    steps, spe = table.get(name, (10, 10))
    if args.steps:
      steps = -(-args.steps // spe) * spe
    shape = INPUT_SHAPES.get(name, QUICK_SHAPE if args.quick else (32, 32, 3))
    rows, ratios, check = bench_model(name, shape, strategies, steps, spe,
                                      repeats)
    all_rows += rows
    report[name] = {"ratios": ratios, "input_shape": list(shape),
                    "steps": steps, "steps_per_execution": spe,
                    "repeats": repeats, "wrapped_2replica_check": check}
  print(f"\nglobal batch {BATCH}; {REPLICAS} replicas = MirroredStrategy over "
        f"{REPLICAS} logical CPUs (ReductionToOneDevice); median of "
        f"{repeats} repeat(s)\n")
  _print_table(all_rows)
  print("\nratios (time per step; 1.00 = dense at the same replica count):")
  for name, r in report.items():
    for n in (1, REPLICAS):
      print(f"ratio {name} {n} replica{'s' if n > 1 else ''}: "
            f"wrapped/dense {r['ratios'][f'wrapped/dense_{n}replica']:.3f}  "
            f"stock/dense {r['ratios'][f'stock/dense_{n}replica']:.3f}")
  print("\nreplica check (2 replicas, lottery_tf wrapped): ", end="")
  print("; ".join(
      f"{name}: {r['wrapped_2replica_check']['pruned_weights']} pruned "
      f"weights exactly 0 on both replicas, kernels identical"
      for name, r in report.items()))
  leaks = {name: r["wrapped_2replica_check"][
      "stock_nonzero_pruned_before_epoch_end"] for name, r in report.items()}
  print("for contrast, tfmot's stock wrapper (2 replicas) after its last "
        "step, before UpdatePruningStep's epoch-end re-mask: " + "; ".join(
            f"{name}: {n} pruned weights non-zero"
            for name, n in leaks.items()))
  print(json.dumps({"rows": all_rows, "models": report,
                    "seconds": round(time.perf_counter() - began, 1)}),
        flush=True)


if __name__ == "__main__":
  main()
