"""Input pipeline vs training throughput: the pipeline is not the bottleneck.

    python benchmarks/input_pipeline.py [--quick] [--cases mnist_5k,imagenet]

Two cases, in one process, on the machine's CPU:

  mnist_5k    LeNet-300-100 on the embedded 4,000 MNIST images (28x28x1,
              normalised), batch 128: the cached path (decoded once into
              memory, an epoch costs a shuffle).
  imagenet    ResNet-18 on imagenet2012 with --preprocessing=imagenet at
              96x96, batch 32: the uncached path (every epoch decodes; a
              random-resized crop + flip per example, a JPEG decoded only
              inside its crop). TFDS cannot download here, so the split is
              `tfds.testing.mock_data` serving ImageNet-like JPEGs (smooth
              content plus noise, 300-500 px a side, ~100 KB each like
              ImageNet's) from memory: the decode and crop costs are real,
              the disk reads are not.

For each case, three numbers (examples/s, the median of 3 timed runs):

  pipeline     iterate `data.load(..., training=True, start_batch=0)` alone
               (all cores to itself), after warm-up batches;
  training     `training.compile_model` on a `pruning.wrap`ped
               `models.build(...)` model, fit on the same stream, input and
               model sharing the cores as in a real run; each run is one fit
               of two epochs, the first (the pipeline's start: a shuffle
               buffer to fill, mnist_5k's cache) untimed, and run r resumes
               the stream where run r-1 stopped (`start_batch`);
  training on cached batches
               the same model fit on batches already in memory (no input
               work): what training would reach with a free pipeline. Its
               runs alternate with the previous row's.

`pipeline / training` well above 1, and training on the live stream close
to training on cached batches, mean the pipeline keeps up.

--quick is a smoke test (a few seconds of work): 32x32 inputs, conv2 in
place of ResNet-18, a handful of steps; its numbers mean little.
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from lottery_tf import data, models, pruning, training  # noqa: E402
from lottery_tf._keras import keras, tf  # noqa: E402
from lottery_tf.data.hparams import DatasetHparams  # noqa: E402
from lottery_tf.training.hparams import TrainingHparams  # noqa: E402

import tensorflow_datasets as tfds  # noqa: E402

RATIO = "pipeline_examples_per_s / training_examples_per_s"

# Per case: dataset hparams, model, batch, warm-up batches of the pipeline
# alone (mnist_5k: one epoch, to fill its cache), timed steps per repeat,
# repeats (the median is reported); and what --quick changes (a smoke test:
# tiny sizes, conv2 for ResNet-18's tracing).
CASES = {
    "mnist_5k": dict(hp=DatasetHparams(dataset="mnist_5k"),
                     model="lenet_300_100", batch=128, warmup=32, steps=256,
                     repeats=3, quick=dict(warmup=4, steps=8, repeats=1)),
    "imagenet": dict(hp=DatasetHparams(dataset="imagenet2012", image_size=96,
                                       preprocessing="imagenet"),
                     model="resnet18", batch=32, warmup=3, steps=12,
                     repeats=3, quick=dict(image_size=32, model="conv2",
                                           batch=8, warmup=1, steps=2,
                                           repeats=1)),
}
# Distinct JPEGs the mock serves, round robin, and the split's size.
MOCK_JPEGS = 48
MOCK_EXAMPLES = 4096


class _EpochTimer(keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.seconds = []

  def on_epoch_begin(self, epoch, logs=None):
    self._t0 = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds.append(time.perf_counter() - self._t0)


def _imagenet_like_jpegs(count: int, seed: int = 0):
  """JPEGs of ImageNet's size and weight: smooth colour fields plus noise."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    h, w = (int(v) for v in rng.integers(300, 501, size=2))
    low = rng.uniform(0, 255, size=(h // 24 + 2, w // 24 + 2, 3))
    image = tf.image.resize(low[None].astype(np.float32), (h, w),
                            method="bicubic")[0].numpy()
    image += rng.normal(0, 10, size=image.shape)
    out.append(tf.io.encode_jpeg(np.clip(image, 0, 255).astype(np.uint8),
                                 quality=90).numpy())
  return out


@contextlib.contextmanager
def _mock_imagenet(num_examples: int, num_jpegs: int):
  """imagenet2012 under tfds.testing.mock_data, from realistic JPEGs."""
  jpegs = tf.constant(_imagenet_like_jpegs(num_jpegs))

  def as_dataset(self, split, decoders=None, read_config=None,
                 shuffle_files=False):
    del self, split, decoders, read_config, shuffle_files
    return tf.data.Dataset.range(num_examples).map(lambda i: {
        "image": tf.gather(jpegs, i % num_jpegs), "label": i % 1000})

  with tfds.testing.mock_data(num_examples=num_examples,
                              as_dataset_fn=as_dataset):
    yield float(np.mean([len(j) for j in jpegs.numpy()]))


def _pipeline_rate(hp, batch, warmup, steps, repeats) -> float:
  """Median examples/s over `repeats` runs of `steps` batches."""
  it = iter(data.load(hp, "train", batch_size=batch, seed=0, training=True,
                      start_batch=0))
  for _ in range(warmup):
    next(it)
  seconds = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
      images, _ = next(it)
    images.numpy()
    seconds.append(time.perf_counter() - t0)
  return steps * batch / statistics.median(seconds)


def _fit_seconds(model, ds, steps, untimed_epochs) -> float:
  """Seconds of the last of `untimed_epochs` + 1 epochs of `steps` steps."""
  timer = _EpochTimer()
  model.fit(ds, epochs=untimed_epochs + 1, steps_per_epoch=steps, verbose=0,
            callbacks=[timer])
  return timer.seconds[-1]


def bench(name: str, quick: bool) -> dict:
  case = dict(CASES[name])
  if quick:
    q = dict(case["quick"])
    size = q.pop("image_size", 0)
    if size:
      case["hp"] = case["hp"].replace(image_size=size)
    case.update(q)
  hp, batch, warmup, steps, repeats = (
      case["hp"], case["batch"], case["warmup"], case["steps"],
      case["repeats"])
  mocked = name == "imagenet"
  if mocked:
    context = _mock_imagenet(64 if quick else MOCK_EXAMPLES,
                             4 if quick else MOCK_JPEGS)
  else:
    context = contextlib.nullcontext(None)
  with context as jpeg_bytes:
    info = data.info(hp)
    training.set_seed(0)
    pipeline = _pipeline_rate(hp, batch, warmup, steps, repeats)

    thp = TrainingHparams(optimizer="sgd", lr=0.01, momentum=0.9,
                          batch_size=batch)
    model = training.compile_model(
        pruning.wrap(models.build(case["model"], info.input_shape,
                                  info.num_classes, seed=0)), thp, steps)
    fixed = data.load(hp, "train", batch_size=batch, seed=0, training=True,
                      start_batch=0).take(steps).cache()
    for _ in fixed:  # Into memory before the clock starts.
      pass
    seconds = {"live": [], "cached": []}
    for r in range(repeats):
      # Alternating, so machine noise hits both alike; the first fit (live)
      # also absorbs tracing in its untimed epoch.
      for kind in (("live", "cached") if r % 2 == 0 else ("cached", "live")):
        if kind == "live":
          # Round r resumes the stream where round r - 1 stopped.
          stream = data.load(hp, "train", batch_size=batch, seed=0,
                             training=True, start_batch=2 * steps * r)
          seconds[kind].append(_fit_seconds(model, stream, steps, 1))
        else:
          seconds[kind].append(_fit_seconds(model, fixed.repeat(), steps, 0))
    live, cached = (steps * batch / statistics.median(seconds[k])
                    for k in ("live", "cached"))
  h, w, c = info.input_shape
  return {
      "case": f"{hp.dataset}" + (" (mock JPEGs)" if mocked else ""),
      "model": case["model"],
      "input": f"{h}x{w}x{c}" + (f" {hp.preprocessing}" if hp.preprocessing
                                 else ""),
      "batch": batch, "steps": f"{repeats} x {steps}",
      "pipeline": pipeline, "training": live, "cached": cached,
      "ratio": pipeline / live, "jpeg_kb": (jpeg_bytes or 0) / 1000,
  }


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true",
                      help="a few steps at a small size: checks it runs")
  parser.add_argument("--cases", default=",".join(CASES))
  args = parser.parse_args(argv)
  began = time.perf_counter()
  rows = []
  for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
    if name not in CASES:
      parser.error(f"--cases: unknown case {name!r}; choose from "
                   f"{', '.join(CASES)}")
    rows.append(bench(name, args.quick))
  print(f"{os.cpu_count()} CPU cores; TensorFlow {tf.__version__}"
        f"{'; --quick (sizes too small to mean much)' if args.quick else ''}")
  print()
  print("| case | model | input | batch | timed steps | pipeline ex/s | "
        "training ex/s | training on cached batches ex/s | "
        "pipeline / training |")
  print("|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['case']} | {r['model']} | {r['input']} | {r['batch']} | "
          f"{r['steps']} | {r['pipeline']:.0f} | {r['training']:.0f} | "
          f"{r['cached']:.0f} | {r['ratio']:.1f}x |")
  print()
  for r in rows:
    note = (f"; mock JPEGs {r['jpeg_kb']:.0f} KB on average"
            if r["jpeg_kb"] else "")
    print(f"{RATIO}: {r['case'].split()[0]} = {r['ratio']:.1f} "
          f"(training reaches {r['training'] / r['cached']:.0%} of its speed "
          f"on cached batches{note})")
  print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
  main()
