"""The input pipeline for long runs: resumable epoch-keyed streams, sharding,
--preprocessing=imagenet, and the benchmark that shows it keeps up."""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REPO, clean_env
from lottery_tf import data
from lottery_tf._keras import tf
from lottery_tf.data import pipeline, preprocess
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
# The global seed's getter (tf.random has only the setter).
from tensorflow.python.eager import context as tf_context  # noqa: E402

MOCK_EXAMPLES = 12


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def _batches(ds, n=None):
  ds = ds if n is None else ds.take(n)
  return [[t.numpy() for t in batch] for batch in ds]


def _assert_same(a, b):
  assert len(a) == len(b)
  for batch_a, batch_b in zip(a, b):
    assert len(batch_a) == len(batch_b)
    for x, y in zip(batch_a, batch_b):
      np.testing.assert_array_equal(x, y)


class _DecodeCounter:
  """Wraps pipeline._decoder so every decoded image is counted."""

  def __init__(self, monkeypatch):
    self.count = 0
    original = pipeline._decoder  # pylint: disable=protected-access

    def counting(builder, spec):
      decode = original(builder, spec)

      def fn(image):
        tick = tf.py_function(self._tick, [], tf.int64)
        with tf.control_dependencies([tick]):
          return tf.identity(decode(image))
      return fn
    monkeypatch.setattr(pipeline, "_decoder", counting)

  def _tick(self):
    self.count += 1
    return np.int64(0)


# ---------------------------------------------------------------------------
# start_batch: an endless stream, random access into it.

MNIST_AUG = dict(dataset="mnist_5k", augment=True, train_examples=300)


@pytest.mark.parametrize("name,kw,cache_bytes,drop_remainder", [
    ("mnist_5k", MNIST_AUG, None, False),  # Cached as inputs.
    ("mnist_5k", MNIST_AUG, 500_000, False),  # Cached as decoded uint8.
    ("mnist_5k", MNIST_AUG, 0, False),  # Not cached.
    ("mnist_5k", MNIST_AUG, 0, True),
    ("imagenet2012", dict(image_size=32, preprocessing="imagenet"), None,
     False),  # JPEG, per-example random crops, never cached.
    ("places365_small", dict(image_size=32, preprocessing="imagenet"), None,
     False),  # PNG, decoded images cached.
])
def test_start_batch_equals_skipping_the_stream(
    data_dir, monkeypatch, name, kw, cache_bytes, drop_remainder):
  if cache_bytes is not None:
    monkeypatch.setattr(pipeline, "CACHE_BYTES", cache_bytes)
  mocked = name != "mnist_5k"
  hp = DatasetHparams(**{"dataset": name, **kw},
                      data_dir="" if mocked else data_dir)
  batch = 5 if mocked else 64
  n = MOCK_EXAMPLES if mocked else 300
  bpe = n // batch if drop_remainder else -(-n // batch)
  k, m = bpe - 2, 2 * bpe + 1  # Crosses two epoch boundaries.

  def stream(start):
    return data.load(hp, "train", batch_size=batch, seed=4, training=True,
                     with_index=True, start_batch=start,
                     drop_remainder=drop_remainder)

  mock = (tfds.testing.mock_data(num_examples=MOCK_EXAMPLES) if mocked
          else contextlib.nullcontext())
  with mock:
    resumed = _batches(stream(k), m)
    unbroken = _batches(stream(0).skip(k), m)
    one_epoch = _batches(data.load(
        hp, "train", batch_size=batch, seed=4, training=True, with_index=True,
        drop_remainder=drop_remainder))
    first_epoch = _batches(stream(0), bpe)
  _assert_same(resumed, unbroken)
  sizes = [len(b[2]) for b in resumed]
  last = batch if drop_remainder else n - (bpe - 1) * batch
  assert sizes[1] == last and sizes[1 + bpe] == last  # Epoch ends.
  # Without start_batch: epoch 0 of the stream, and only it.
  _assert_same(one_epoch, first_epoch)
  assert len(one_epoch) == bpe


def test_same_call_same_stream_and_every_epoch_its_own_order(data_dir):
  hp = DatasetHparams(dataset="digits", data_dir=data_dir, augment=True)

  def epochs(seed, count=3):
    ds = data.load(hp, "train", batch_size=512, seed=seed, training=True,
                   with_index=True, start_batch=0)
    batches = _batches(ds, 3 * count)  # 1437 examples: 3 batches an epoch.
    return [np.concatenate([b[2] for b in batches[3 * e:3 * e + 3]])
            for e in range(count)], batches

  (e0, e1, e2), a = epochs(3)
  _, b = epochs(3)
  _assert_same(a, b)
  for order in (e0, e1, e2):
    np.testing.assert_array_equal(np.sort(order), np.arange(1437))
  assert not np.array_equal(e0, e1) and not np.array_equal(e1, e2)
  (f0, _, _), _ = epochs(4)
  assert not np.array_equal(e0, f0)
  # A one-epoch dataset is epoch 0 however often it is iterated.
  once = data.load(hp, "train", batch_size=512, seed=3, training=True,
                   with_index=True)
  _assert_same(_batches(once), _batches(once))
  np.testing.assert_array_equal(
      np.concatenate([b[2] for b in _batches(once)]), e0)


def test_the_global_seed_changes_the_stream(data_dir):
  hp = DatasetHparams(dataset="digits", data_dir=data_dir, augment=True)

  def first():
    return _batches(data.load(hp, "train", batch_size=64, seed=1,
                              training=True, with_index=True, start_batch=30),
                    1)[0]

  saved = tf_context.global_seed()  # Another test's, maybe.
  runs = {}
  try:
    for global_seed in (0, 0, 7, None):
      tf.random.set_seed(global_seed)
      runs.setdefault(global_seed, []).append(first())
  finally:
    tf.random.set_seed(saved)
  _assert_same([runs[0][0]], [runs[0][1]])
  assert not np.array_equal(runs[0][0][2], runs[7][0][2])
  assert not np.array_equal(runs[0][0][2], runs[None][0][2])


def test_the_cache_is_shared_by_all_epochs(data_dir, monkeypatch):
  counter = _DecodeCounter(monkeypatch)
  hp = DatasetHparams(dataset="digits", data_dir=data_dir, augment=True)
  ds = data.load(hp, "train", batch_size=100, seed=0, training=True,
                 start_batch=0)
  for _ in ds.take(4 * 15):  # 4 epochs of 15 batches.
    pass
  assert counter.count == 1437  # Decoded once, not once an epoch.


def test_resuming_does_not_decode_what_it_skips(data_dir, monkeypatch):
  monkeypatch.setattr(pipeline, "CACHE_BYTES", 0)  # Decode every epoch.
  counter = _DecodeCounter(monkeypatch)
  hp = DatasetHparams(dataset="digits", data_dir=data_dir, augment=True)
  # Batch 40 = epoch 2, batch 10: 2 epochs and 1000 examples skipped.
  ds = data.load(hp, "train", batch_size=100, seed=0, training=True,
                 start_batch=40)
  for _ in ds.take(1):
    pass
  assert 100 <= counter.count <= 500  # One batch and read-ahead.


def test_start_batch_is_validated(data_dir):
  hp = DatasetHparams(dataset="digits", data_dir=data_dir)
  with pytest.raises(ValueError, match="^start_batch: only a training"):
    data.load(hp, "test", batch_size=8, start_batch=0)
  with pytest.raises(ValueError, match="^start_batch must be"):
    data.load(hp, "train", batch_size=8, training=True, start_batch=-1)
  with pytest.raises(ValueError, match="at least one batch an epoch"):
    data.load(hp, "train", batch_size=2000, training=True, start_batch=0,
              drop_remainder=True)


# ---------------------------------------------------------------------------
# Shards and options.


def test_shards_split_the_examples_and_keep_split_indices(data_dir):
  hp = DatasetHparams(dataset="digits", data_dir=data_dir, augment=True)
  wanted = np.arange(0, 1437, 5)  # 288 examples: shards of 96.
  seen = []
  for shard in range(3):
    kw = dict(batch_size=40, seed=2, training=True, indices=wanted,
              with_index=True, num_shards=3, shard_index=shard)
    stream = data.load(hp, "train", start_batch=0, **kw)
    assert stream.options().experimental_distribute.auto_shard_policy == (
        tf.data.experimental.AutoShardPolicy.OFF)
    batches = _batches(stream, 5)
    epoch = batches[:3]  # ceil(96 / 40) batches an epoch.
    assert [len(b[2]) for b in batches] == [40, 40, 16, 40, 40]
    index = np.concatenate([b[2] for b in epoch])
    # Every 3rd kept example, from the shard's own; positions in the split.
    np.testing.assert_array_equal(np.sort(index), wanted[shard::3])
    # Each shard is a stream of its own, resumable like any other.
    _assert_same(_batches(data.load(hp, "train", start_batch=2, **kw), 3),
                 batches[2:])
    seen.append(index)
  np.testing.assert_array_equal(np.sort(np.concatenate(seen)), wanted)
  with pytest.raises(ValueError, match="^shard_index"):
    data.load(hp, "train", batch_size=8, num_shards=3, shard_index=3)
  with pytest.raises(ValueError, match="^shard_index"):
    data.load(hp, "train", batch_size=8, num_shards=2, shard_index=-1)
  with pytest.raises(ValueError, match="^num_shards"):
    data.load(hp, "train", batch_size=8, num_shards=0)


def test_options_are_deterministic_and_never_file_sharded(data_dir):
  hp = DatasetHparams(dataset="digits", data_dir=data_dir)
  for kw in (dict(), dict(training=True), dict(training=True, start_batch=5)):
    options = data.load(hp, "train", batch_size=8, **kw).options()
    assert options.deterministic is True
    assert options.experimental_distribute.auto_shard_policy == (
        tf.data.experimental.AutoShardPolicy.DATA)
  ds = data.load(hp, "train", batch_size=8, training=True, start_batch=5)
  assert ds.cardinality() == tf.data.INFINITE_CARDINALITY


# ---------------------------------------------------------------------------
# --preprocessing=imagenet.

IMAGENET = dict(image_size=32, preprocessing="imagenet")


@pytest.mark.parametrize("name,kw,shape", [
    ("imagenet2012", IMAGENET, (32, 32, 3)),
    ("places365_small", dict(IMAGENET, channels=1), (32, 32, 1)),
])
def test_imagenet_preprocessing_mocked(name, kw, shape):
  hp = DatasetHparams(dataset=name, **kw)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    info = data.info(hp)
    train = _batches(data.load(hp, "train", batch_size=5, seed=1,
                               training=True, with_index=True))
    again = _batches(data.load(hp, "train", batch_size=5, seed=1,
                               training=True, with_index=True))
    other = _batches(data.load(hp, "train", batch_size=5, seed=2,
                               training=True, with_index=True))
    plain = _batches(data.load(hp, "train", batch_size=5, with_index=True))
    raw_eval = np.concatenate([b[0] for b in _batches(data.load(
        hp.replace(normalize=False), "test", batch_size=5))])
    sources = _source_images(name)
  assert info.input_shape == shape
  assert info.transforms[-3].startswith("train: random-resized crop")
  assert info.transforms[-2] == (
      "eval: resize shorter side -> 37 (bilinear), centre-crop 32x32")
  x = np.concatenate([b[0] for b in train])
  index = np.concatenate([b[2] for b in train])
  assert x.shape == (MOCK_EXAMPLES,) + shape and x.dtype == np.float32
  assert sorted(index) == list(range(MOCK_EXAMPLES))
  _assert_same(train, again)
  assert not np.allclose(x, np.concatenate([b[0] for b in other]))
  # Training crops are not the evaluation centre crops.
  x_eval = np.concatenate([b[0] for b in plain])
  order = np.argsort(index)
  assert not np.allclose(x[order], x_eval)
  # Evaluation: shorter side to round(32 * 256 / 224) = 37, centre 32x32.
  plan = preprocess.make_plan(hp)
  assert plan.eval_resize == 37
  assert raw_eval.shape == (MOCK_EXAMPLES,) + shape
  for image, out in zip(sources, raw_eval):
    h, w = image.shape[:2]
    size = (37, 37 * w // h) if h <= w else (37 * h // w, 37)
    expected = tf.image.resize(image.astype(np.float32) / 255, size,
                               antialias=True).numpy()
    if shape[2] == 1:
      expected = (expected * np.array(preprocess.LUMA)).sum(-1, keepdims=True)
    top, left = (size[0] - 32) // 2, (size[1] - 32) // 2
    np.testing.assert_allclose(out, expected[top:top + 32, left:left + 32],
                               atol=1e-4)


def _source_images(name):
  """The mock split's images, decoded, in split order."""
  spec = data.REGISTRY[name]
  builder = tfds.builder(spec.tfds_name)
  decode = builder.info.features[spec.image_key].decode_example
  ds = pipeline._read(  # pylint: disable=protected-access
      builder, spec, spec.test_split)
  return [decode(ex[spec.image_key]).numpy() for ex in ds]


def test_random_resized_crop_box():
  areas, ratios = [], []
  for i in range(300):
    h, w = [(300, 400), (40, 40), (17, 90)][i % 3]
    top, left, ch, cw = [int(v) for v in preprocess.random_resized_crop_box(
        h, w, tf.constant([i, 1], tf.int64))]
    assert 0 <= top <= h - ch and 0 <= left <= w - cw and ch > 0 and cw > 0
    if i % 3 == 0:
      areas.append(ch * cw / (h * w))
      ratios.append(cw / ch)
  # torchvision's ranges: area 8-100%, aspect 3/4-4/3 (up to rounding).
  assert 0.07 <= min(areas) < 0.2 and 0.8 < max(areas) <= 1.0
  assert 0.74 <= min(ratios) < 0.85 and 1.2 < max(ratios) <= 1.34
  # No box fits a 4x200 strip: the centred 4x5 (aspect 4/3, rounded) box.
  box = [int(v) for v in preprocess.random_resized_crop_box(
      4, 200, tf.constant([0, 0], tf.int64))]
  assert box == [0, 97, 4, 5]


def test_jpeg_is_decoded_inside_the_crop_only():
  """decode_and_crop_jpeg gives the pixels of decode + crop (exactly, for
  JPEGs without chroma subsampling); PNGs take the decode + crop path."""
  plan = preprocess.make_plan(DatasetHparams(dataset="imagenet2012",
                                             **IMAGENET))
  rng = np.random.default_rng(0)

  def decode(encoded):
    return tf.image.decode_image(encoded, channels=3, expand_animations=False)

  for i in range(6):
    h, w = rng.integers(20, 200, size=2)
    image = (np.cumsum(rng.integers(-8, 9, (h, w, 3)), axis=1) % 256
             ).astype(np.uint8)
    seed = tf.constant([i, 3], tf.int64)
    want = preprocess.imagenet_train_input(image, seed, plan).numpy()
    jpeg = tf.io.encode_jpeg(image, chroma_downsampling=False, quality=100)
    from_jpeg = preprocess.imagenet_train_input(jpeg, seed, plan,
                                                decode=decode).numpy()
    np.testing.assert_array_equal(
        from_jpeg, preprocess.imagenet_train_input(decode(jpeg), seed,
                                                   plan).numpy())
    png = tf.io.encode_png(image)
    np.testing.assert_array_equal(
        preprocess.imagenet_train_input(png, seed, plan, decode=decode), want)


@pytest.mark.parametrize("kw,flag", [
    (dict(preprocessing="inception", image_size=32), "--preprocessing"),
    (dict(preprocessing="imagenet"), "--image_size"),
    (dict(preprocessing="imagenet", image_size=32, augment=True),
     "--augment"),
    (dict(preprocessing="imagenet", image_size=32, resize_method="pad"),
     "--resize_method"),
])
def test_imagenet_preprocessing_flags(kw, flag):
  with pytest.raises(UserError) as e:
    preprocess.make_plan(DatasetHparams(dataset="cifar10", **kw))
  assert str(e.value).startswith(flag + ":"), str(e.value)


# ---------------------------------------------------------------------------
# The benchmark.


def test_benchmark_runs_quick():
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "benchmarks", "input_pipeline.py"),
       "--quick"], cwd=REPO, capture_output=True, text=True, timeout=300,
      env=clean_env())
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert "pipeline_examples_per_s / training_examples_per_s" in out, out
  rows = [line for line in out.splitlines() if line.startswith("| ")]
  assert any("mnist_5k" in r for r in rows) and any(
      "imagenet2012" in r for r in rows), out
