"""What a transfer-grid preset costs: its steps, counted, and a measured step.

    python benchmarks/grid_cost.py [--flagfile flags/morcos_grid_vgg19.cfg]
                                   [--steps 4]

Counts the training steps of every run the preset's `lottery_tf grid` makes
(each source find: levels 0..--levels, each --training_steps long at
--batch_size on the source's train split; each transfer cell: the
transferred ticket and its random-ticket control on the target; the
targets' own IMPs are the source finds of the same datasets, reused), from
the split sizes in lottery_tf's dataset registry (no download).

Then measures one training step of the preset's network as lottery_tf trains
it (pruning wrappers with a mask, TrainModel, the preset's optimizer, weight
decay and batch) on random 32x32x3 batches on this machine's device, and
counts its floating-point operations (multiply and add of every Conv2D and
Dense layer, forward x 3 for forward and backward). From these it prints:

  - the grid's time on this device at the measured step time;
  - an estimate in GPU-hours at an assumed sustained GPU throughput
    (--gpu_tflops, stated in the output: an estimate, not a measurement).

On a GPU machine the measured step time is the GPU's own (with the preset's
mixed precision), and the first figure is the measurement.
"""
import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: A V100 training ResNet-50 in mixed precision sustains ~1,300 images/s
#: (NVIDIA's published TensorFlow figure) x 24.6 GFLOP per image (3 x 2 x
#: 4.1 G multiply-adds) ~ 32 TFLOP/s; 64 32x32 images per GPU keep it
#: busier for less of the time, so the estimate assumes less.
DEFAULT_GPU_TFLOPS = 20.0


def read_flagfile(path: str) -> dict:
  """The preset's ``--name=value`` lines (comments and blanks skipped)."""
  out = {}
  with open(path) as f:
    for line in f:
      line = line.strip()
      if line.startswith("--"):
        name, _, value = line[2:].partition("=")
        out[name] = value if _ else "true"
  return out


def _num_train(dataset: str) -> int:
  from lottery_tf.data import registry  # pylint: disable=g-import-not-at-top
  n = registry.get(dataset.split("[")[0]).num_train
  if not n:
    raise SystemExit(f"{dataset}: the registry has no train-split size")
  return n


def count_steps(flags: dict) -> dict:
  """Steps of every run of the grid, by part (as lottery_tf counts them:
  ceil(train examples / batch) steps per epoch)."""
  from lottery_tf.training import durations  # pylint: disable=g-import-not-at-top
  batch = int(flags["batch_size"])
  length = durations.parse(flags["training_steps"])
  def run_steps(dataset):
    return length.to_steps(max(1, math.ceil(_num_train(dataset) / batch)))
  sources = flags["sources"].split(",")
  targets = flags["targets"].split(",")
  levels = int(flags["levels"])
  transfer_levels = [x for x in flags.get("transfer_levels", "").split(",")
                     if x] or list(range(levels + 1))
  replicates = int(flags.get("replicates", "1"))
  pairs = (len(flags.get("source_optimizers", "sgd").split(",")) *
           len(flags.get("target_optimizers", "sgd").split(",")))
  finds = sum(run_steps(s) * (levels + 1) for s in sources) * len(
      flags.get("source_optimizers", "sgd").split(","))
  # Two runs per cell: the transferred ticket and the random ticket.
  cells = len(sources) * len(transfer_levels) * pairs * replicates
  transfers = sum(2 * run_steps(t) for t in targets) * (
      len(sources) * len(transfer_levels) * pairs * replicates)
  big = [s for s in sources if _num_train(s) > 500_000]
  return {"finds": finds, "transfers": transfers, "total": finds + transfers,
          "cells": cells * len(targets), "sources": sources, "big": big,
          "big_steps": sum(run_steps(s) * (levels + 1) for s in big),
          "batch": batch}


def flops_per_image(model) -> float:
  """Forward multiply-adds x 2 of the Conv2D and Dense layers."""
  from lottery_tf._keras import keras  # pylint: disable=g-import-not-at-top
  total = 0.0
  for layer in _leaves(model):
    if isinstance(layer, keras.layers.Conv2D):
      kh, kw, cin, cout = layer.kernel.shape
      _, h, w, _ = layer.output_shape
      total += 2.0 * h * w * kh * kw * cin * cout
    elif isinstance(layer, keras.layers.Dense):
      cin, cout = layer.kernel.shape
      total += 2.0 * cin * cout
  return total


def _leaves(layer):
  subs = getattr(layer, "layers", None)
  if subs:
    for sub in subs:
      yield from _leaves(sub)
  else:
    yield layer


def measure_step(flags: dict, steps: int) -> dict:
  # pylint: disable=g-import-not-at-top
  from lottery_tf import models, pruning, training
  from lottery_tf.training import distribute
  from lottery_tf._keras import tf
  from lottery_tf.training.hparams import TrainingHparams
  gpu = bool(tf.config.list_physical_devices("GPU"))
  batch = int(flags["batch_size"])
  hp = TrainingHparams(
      optimizer="sgd", lr=float(flags.get("sgd_lr", 0.1)),
      momentum=float(flags.get("sgd_momentum", 0.9)), batch_size=batch,
      weight_decay=float(flags.get("weight_decay", 0.0)),
      weight_decay_on=flags.get("weight_decay_on", "kernels"),
      # Mixed precision where the preset's GPUs have it; float32 on a CPU
      # (float16 matmuls are emulated there, and slower).
      mixed_precision=flags.get("mixed_precision", "") if gpu else "",
      steps_per_execution=steps)
  shape = (int(flags.get("image_size", 32)), int(flags.get("image_size", 32)),
           int(flags.get("channels", 3)))
  training.set_seed(0)
  with distribute.policy_scope(hp.mixed_precision):
    model = pruning.wrap(models.build(flags["model"], shape, 10, seed=0))
  # A level-1 mask (80% of the weights): what every pruned level trains.
  pruning.set_masks(model, pruning.prune(model, flags.get(
      "pruning_strategy", "global"), fraction=0.2))
  train = training.compile_model(model, hp, steps)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2 * batch, *shape)).astype(np.float32)
  y = rng.integers(0, 10, size=2 * batch).astype(np.int32)
  data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache().repeat()
  train.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)  # tracing
  began = time.perf_counter()
  train.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
  seconds = (time.perf_counter() - began) / steps
  return {"seconds_per_step": seconds, "device": "GPU" if gpu else "CPU",
          "cores": os.cpu_count(), "precision": hp.mixed_precision or "float32",
          # Counted on the plain network (a wrapper's inner layer has no
          # output shape of its own).
          "flops_per_step": 3 * batch * flops_per_image(
              models.build(flags["model"], shape, 10, seed=0))}


def _hours(h: float) -> str:
  if h >= 24 * 365:
    return f"{h / 24 / 365:,.1f} years"
  if h >= 48:
    return f"{h / 24:,.0f} days"
  return f"{h:,.1f} h"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--flagfile",
                      default=os.path.join(ROOT, "flags",
                                           "morcos_grid_vgg19.cfg"))
  parser.add_argument("--steps", type=int, default=4,
                      help="training steps timed (after as many untimed)")
  parser.add_argument("--gpu_tflops", type=float, default=DEFAULT_GPU_TFLOPS,
                      help="assumed sustained TFLOP/s of one GPU")
  args = parser.parse_args()
  flags = read_flagfile(args.flagfile)
  counted = count_steps(flags)
  print(f"{os.path.basename(args.flagfile)}: {flags['model']}, batch "
        f"{counted['batch']}, {flags['training_steps']} per run")
  print(f"  source finds ({len(counted['sources'])} x levels 0-"
        f"{flags['levels']}): {counted['finds'] / 1e6:.1f}M steps "
        f"({counted['big_steps'] / 1e6:.1f}M of them "
        f"{' and '.join(counted['big'])})")
  print(f"  transfer cells ({counted['cells']} x 2 runs): "
        f"{counted['transfers'] / 1e6:.1f}M steps")
  print(f"  in all: {counted['total'] / 1e6:.1f}M steps")
  m = measure_step(flags, args.steps)
  flops = m["flops_per_step"]
  here = counted["total"] * m["seconds_per_step"] / 3600
  print(f"measured here ({m['device']}, {m['cores']} cores, "
        f"{m['precision']}): {m['seconds_per_step']:.2f} s per step of "
        f"{counted['batch']} = {flops / m['seconds_per_step'] / 1e12:.2f} "
        f"TFLOP/s ({flops / 1e9:,.0f} GFLOP per step, counted)")
  print(f"  the grid on this {m['device']}: {here:,.0f} hours "
        f"({_hours(here)})")
  gpu_seconds = flops / (args.gpu_tflops * 1e12)
  gpu_hours = counted["total"] * gpu_seconds / 3600
  print(f"estimate, not measured: at {args.gpu_tflops:g} TFLOP/s sustained "
        f"per GPU, {gpu_seconds:.3f} s per step, {gpu_hours:,.0f} GPU-hours "
        f"({_hours(gpu_hours / 8)} on 8 GPUs)")


if __name__ == "__main__":
  main()
