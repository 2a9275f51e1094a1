"""What a transfer-grid preset costs: its steps, counted, and a measured step.

    python benchmarks/grid_cost.py [--flagfile flags/morcos_grid_vgg19.cfg]
                                   [--steps 4]

Reads the preset as `lottery_tf grid` does (its flag parsing: a preset's
name or path, the flagfiles it includes, the defaults) and counts the
training steps of every run the grid makes (each find: levels 0..--levels,
each --training_steps long at --batch_size on the dataset's train split, for
every source with every source optimizer and every target with every target
optimizer, a target's own IMP being the source find of the same dataset and
optimizer when there is one; each transfer cell, per --transfer_levels: the
transferred ticket and its random-ticket control on the target), from the
split sizes in lottery_tf's dataset registry (no download).

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


class Preset:
  """The preset's hparams as ``lottery_tf grid`` reads them: its own flag
  parsing (presets by name or path, flagfiles it includes, defaults)."""

  def __init__(self, flagfile: str):
    # pylint: disable=g-import-not-at-top
    from absl import flags
    from lottery_tf import presets
    # The CLI's flags, defined when its commands are imported.
    from lottery_tf.cli import commands  # noqa: F401  pylint: disable=unused-import
    from lottery_tf.cli import flags as cli_flags
    from lottery_tf.data.hparams import DatasetHparams
    from lottery_tf.lottery.hparams import LotteryHparams
    from lottery_tf.models.hparams import ModelHparams
    from lottery_tf.pruning.hparams import PruningHparams
    from lottery_tf.training.hparams import TrainingHparams
    from lottery_tf.transfer.hparams import GridHparams
    flags.FLAGS.unparse_flags()  # Defaults, not an earlier preset's values.
    flags.FLAGS(presets.resolve_argv(["grid_cost", f"--flagfile={flagfile}"]))
    self.grid = cli_flags.from_flags(GridHparams)
    self.grid.validate(flags.FLAGS.levels)
    self.levels = flags.FLAGS.levels
    self.training = cli_flags.from_flags(TrainingHparams)
    self.data = cli_flags.from_flags(DatasetHparams)
    self.model = cli_flags.from_flags(ModelHparams).model
    self.pruning = cli_flags.from_flags(PruningHparams)
    self.lottery = cli_flags.from_flags(LotteryHparams)


def _num_train(dataset: str) -> int:
  from lottery_tf.data import registry  # pylint: disable=g-import-not-at-top
  n = registry.get(dataset.split("[")[0]).num_train
  if not n:
    raise SystemExit(f"{dataset}: the registry has no train-split size")
  return n


def count_steps(preset: Preset) -> dict:
  """Steps of every run of the grid, by part (as lottery_tf counts them:
  ceil(train examples / batch) steps per epoch)."""
  # pylint: disable=g-import-not-at-top
  from lottery_tf.foundations.hparams import split_list
  from lottery_tf.training import durations
  from lottery_tf.transfer.hparams import parse_datasets
  g = preset.grid
  batch = preset.training.batch_size
  length = durations.parse(preset.training.training_steps)
  def run_steps(dataset):
    return length.to_steps(max(1, math.ceil(_num_train(dataset) / batch)))
  # (name, classes): a class subset is counted as its dataset's whole split.
  sources = [d for d, _ in parse_datasets(g.sources, "sources")]
  targets = [d for d, _ in parse_datasets(g.targets, "targets")]
  source_opts = split_list(g.source_optimizers)
  target_opts = split_list(g.target_optimizers)
  levels = g.levels(preset.levels)
  # IMP on every (source, optimizer), levels 0..--levels; a target's own
  # IMP (the own-ticket control) is one of these when the target is also a
  # source with that optimizer, else one more find.
  finds_of = {(s, o) for s in sources for o in source_opts}
  finds_of |= {(t, o) for t in targets for o in target_opts}
  finds = sum(run_steps(d) * (preset.levels + 1) for d, _ in finds_of)
  # Two runs per cell: the transferred ticket and the random ticket.
  cells = (len(sources) * len(targets) * len(levels) * len(source_opts) *
           len(target_opts) * g.replicates)
  transfers = sum(2 * run_steps(t) for t in targets) * (
      cells // len(targets))
  big = sorted({s for s, _ in finds_of if _num_train(s) > 500_000})
  return {"finds": finds, "transfers": transfers, "total": finds + transfers,
          "cells": cells, "find_count": len(finds_of), "big": big,
          "big_steps": sum(run_steps(d) * (preset.levels + 1)
                           for d, _ in finds_of if d in big),
          "batch": batch, "levels": levels}


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


def measure_step(preset: Preset, steps: int) -> dict:
  # pylint: disable=g-import-not-at-top
  import dataclasses
  from lottery_tf import models, pruning, training
  from lottery_tf.training import distribute
  from lottery_tf._keras import tf
  gpu = bool(tf.config.list_physical_devices("GPU"))
  batch = preset.training.batch_size
  # The grid's `sgd` recipe, as its source finds train; mixed precision
  # where the preset's GPUs have it, float32 on a CPU (float16 matmuls are
  # emulated there, and slower).
  hp = dataclasses.replace(
      preset.training, optimizer="sgd", lr=preset.grid.sgd_lr,
      momentum=preset.grid.sgd_momentum,
      mixed_precision=preset.training.mixed_precision if gpu else "",
      strategy="default", steps_per_execution=steps)
  size = preset.data.image_size or 32
  shape = (size, size, preset.data.channels or 3)
  training.set_seed(0)
  with distribute.policy_scope(hp.mixed_precision):
    model = pruning.wrap(models.build(preset.model, shape, 10, seed=0))
  # A level-1 mask (80% of the weights): what every pruned level trains.
  pruning.set_masks(model, pruning.prune(
      model, preset.pruning.pruning_strategy,
      fraction=preset.pruning.pruning_fraction))
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
              models.build(preset.model, shape, 10, seed=0))}


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
  from lottery_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  try:
    preset = Preset(args.flagfile)
  except UserError as e:
    print(f"grid_cost.py: {e}", file=sys.stderr)
    sys.exit(2)
  counted = count_steps(preset)
  print(f"{os.path.basename(args.flagfile)}: {preset.model}, batch "
        f"{counted['batch']}, {preset.training.training_steps} per run")
  print(f"  finds ({counted['find_count']} datasets x optimizers, levels 0-"
        f"{preset.levels}): {counted['finds'] / 1e6:.1f}M steps "
        f"({counted['big_steps'] / 1e6:.1f}M of them "
        f"{' and '.join(counted['big'])})")
  print(f"  transfer cells ({counted['cells']} x 2 runs, levels "
        f"{','.join(map(str, counted['levels']))}): "
        f"{counted['transfers'] / 1e6:.1f}M steps")
  print(f"  in all: {counted['total'] / 1e6:.1f}M steps")
  m = measure_step(preset, args.steps)
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
