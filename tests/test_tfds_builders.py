"""TFDS's real builders on small files in each dataset's real format; and a
dataset that cannot be prepared fails at once, in one line.

Only the network is replaced: a loopback HTTP server serves the archives,
written here in the formats the builders parse (MNIST idx gzips, the CIFAR
binary tarballs, SVHN .mat files, smallNORB's gzipped binary matrices), and
TFDS's downloader fetches them from it (`requests`, checksums, extraction,
split generators and record writing all run for real) when lottery_tf's
data pipeline asks TFDS to prepare them. The registered checksums are those
of our files, laid over TFDS's own (which TFDS still reads from the
checksums file beside each builder, as in a real preparation).
"""
import contextlib
import gzip
import hashlib
import http.server
import io
import os
import socket
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import types
import urllib.parse

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core import utils as tfds_utils
from tensorflow_datasets.core.download import checksums as tfds_checksums
from tensorflow_datasets.core.download import downloader as tfds_downloader

from conftest import REPO, clean_env
from lottery_tf import data, training
from lottery_tf.data import prepare, preprocess
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.task import Task

N_TRAIN, N_TEST = 20, 10
LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: The preprocessing flags/*.cfg use for each dataset (frankle_lenet300100_
#: mnist, morcos_*_{fashion_mnist,cifar10,cifar100,svhn}, mehta_*_smallnorb).
PRESETS = {
    "mnist": dict(),
    "fashion_mnist": dict(image_size=32, channels=3, resize_method="pad",
                          augment=True),
    "cifar10": dict(image_size=32, channels=3, resize_method="resize",
                    augment=True),
    "cifar100": dict(image_size=32, channels=3, resize_method="resize",
                     augment=True),
    "svhn_cropped": dict(image_size=32, channels=3, resize_method="resize",
                         augment=True),
    "smallnorb": dict(image_size=32, channels=3, augment=True),
}
NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10,
               "cifar100": 100, "svhn_cropped": 10, "smallnorb": 5}


# ----------------------------------------------------------------------------
# The files, in each builder's format (read from its source in
# tensorflow_datasets/image_classification/{mnist,cifar}.py and
# tensorflow_datasets/datasets/{svhn_cropped,smallnorb}/).


def _images(seed, n, shape):
  return np.random.default_rng(seed).integers(0, 256, (n, *shape), np.uint8)


def _gz(payload: bytes) -> bytes:
  return gzip.compress(payload, mtime=0)


def _mnist_files(name, seed):
  """idx3/idx1 gzips at the builder's URL; labels 0..9."""
  base = tfds.builder_cls(name).URL
  files, splits = {}, {}
  for split, prefix, n in (("train", "train", N_TRAIN),
                           ("test", "t10k", N_TEST)):
    images = _images(seed + n, n, (28, 28, 1))
    labels = (np.arange(n) * 3 + seed) % 10
    files[urllib.parse.urljoin(base, f"{prefix}-images-idx3-ubyte.gz")] = _gz(
        struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
    files[urllib.parse.urljoin(base, f"{prefix}-labels-idx1-ubyte.gz")] = _gz(
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())
    splits[split] = (images, labels)
  return files, splits


def _tar_gz(members) -> bytes:
  out = io.BytesIO()
  with tarfile.open(fileobj=out, mode="w:gz") as tar:
    for name, payload in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(payload)
      tar.addfile(info, io.BytesIO(payload))
  return out.getvalue()


def _cifar_files(name, seed):
  """The binary tarball as the builder's CifarInfo describes it: records of
  label byte(s) + 3072 bytes, R then G then B plane."""
  cifar_info = tfds.builder_cls(name)._cifar_info.fget(  # pylint: disable=protected-access
      types.SimpleNamespace(name=name))
  fine = NUM_CLASSES[name]
  members, splits = {}, {}
  for split, names, n in (("train", cifar_info.train_files, N_TRAIN),
                          ("test", cifar_info.test_files, N_TEST)):
    images = _images(seed + n, n, (32, 32, 3))
    labels = (np.arange(n) * 7 + seed) % fine
    records = []
    for image, label in zip(images, labels):
      head = ([label // 5, label] if len(cifar_info.label_keys) == 2
              else [label])  # CIFAR-100: coarse, fine.
      records.append(bytes(head) + image.transpose(2, 0, 1).tobytes())
    per_file = np.array_split(np.arange(n), len(names))
    for file_name, rows in zip(names, per_file):
      members[cifar_info.prefix + file_name] = b"".join(
          records[i] for i in rows)
    splits[split] = (images, labels)
  sizes = {"label": fine, "coarse_label": 20}
  for key, file_name in zip(cifar_info.label_keys, cifar_info.label_files):
    members[cifar_info.prefix + file_name] = "\n".join(
        f"{key}_{i}" for i in range(sizes[key])).encode() + b"\n"
  return {cifar_info.url: _tar_gz(members)}, splits


def _svhn_files(name, seed):
  """train/test/extra_32x32.mat: X [32, 32, 3, N] uint8, y [N, 1] in 1..10
  (10 is the digit 0)."""
  import scipy.io  # pylint: disable=g-import-not-at-top
  module = sys.modules[tfds.builder_cls(name).__module__]
  files, splits = {}, {}
  for split, n in (("train", N_TRAIN), ("test", N_TEST), ("extra", 3)):
    images = _images(seed + n, n, (32, 32, 3))
    digits = (np.arange(n) + seed) % 10 + 1
    out = io.BytesIO()
    scipy.io.savemat(out, {"X": np.moveaxis(images, 0, -1),
                           "y": digits.astype(np.uint8)[:, None]})
    files[urllib.parse.urljoin(module.URL, f"{split}_32x32.mat")] = (
        out.getvalue())
    splits[split] = (images, digits % 10)
  return files, splits


def _norb_matrix(array: np.ndarray) -> bytes:
  """smallNORB's binary matrix: magic, ndim, max(3, ndim) dims, data (LE)."""
  magic = {np.uint8: 507333717, np.int32: 507333716}[array.dtype.type]
  dims = list(array.shape) + [1] * (3 - array.ndim)
  return (np.array([magic, array.ndim, *dims], "<i4").tobytes()
          + array.astype(array.dtype.newbyteorder("<")).tobytes())


def _smallnorb_files(name, seed):
  """{training,testing}-{dat,cat,info}.mat.gz. Left-camera images are one
  grey level each (so even the resize to 32x32 has a known value), the right
  camera the complement."""
  module = sys.modules[tfds.builder_cls(name).__module__]
  files, splits = {}, {}
  for split, template, n in (
      ("train", module._TRAINING_URL_TEMPLATE, N_TRAIN),  # pylint: disable=protected-access
      ("test", module._TESTING_URL_TEMPLATE, N_TEST)):  # pylint: disable=protected-access
    levels = ((np.arange(n) * 11 + seed + n) % 256).astype(np.uint8)
    left = np.broadcast_to(levels[:, None, None], (n, 96, 96))
    dat = np.stack([left, 255 - left], axis=1).astype(np.uint8)
    categories = ((np.arange(n) + seed) % 5).astype(np.int32)
    info = np.stack([np.arange(n) % 10, np.arange(n) % 9,
                     (np.arange(n) % 18) * 2, np.arange(n) % 6],
                    axis=1).astype(np.int32)
    for kind, array in (("dat", dat), ("cat", categories), ("info", info)):
      files[template.format(type=kind)] = _gz(_norb_matrix(array))
    splits[split] = (left[..., None], categories)
  return files, splits


MAKERS = {"mnist": _mnist_files, "fashion_mnist": _mnist_files,
          "cifar10": _cifar_files, "cifar100": _cifar_files,
          "svhn_cropped": _svhn_files, "smallnorb": _smallnorb_files}


def fake_dataset(name):
  """({url: file bytes}, {split: (uint8 images [N, H, W, C], labels)})."""
  return MAKERS[name](name, seed=sorted(MAKERS).index(name))


# ----------------------------------------------------------------------------
# The network, on loopback.


class _Handler(http.server.BaseHTTPRequestHandler):

  def do_GET(self):  # pylint: disable=invalid-name
    payload = self.server.files.get(self.path)
    self.server.hits.append(self.path)
    if payload is None:
      self.send_error(404)
      return
    self.send_response(200)
    self.send_header("Content-Length", str(len(payload)))
    self.end_headers()
    self.wfile.write(payload)

  def log_message(self, *args):  # Quiet.
    pass


@contextlib.contextmanager
def fake_network(files):
  """TFDS downloads `files` ({real url: bytes}) from a server on 127.0.0.1.

  Replaced: the URL TFDS's downloader opens (the same path on our server)
  and the checksums it validates against (ours laid over its own); and
  lottery_tf's reachability check connects to our server. Names other than
  loopback do not resolve, so nothing leaves the machine. Yields the server
  (its `.hits` are the paths fetched).
  """
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  server.files, server.hits = {}, []
  port = server.server_address[1]

  def local(url):
    parts = urllib.parse.urlsplit(url)
    return f"http://127.0.0.1:{port}/{parts.hostname}{parts.path}"

  for url, payload in files.items():
    server.files[urllib.parse.urlsplit(local(url)).path] = payload
  ours = {url: tfds_checksums.UrlInfo(
      size=tfds_utils.Size(len(payload)),
      checksum=hashlib.sha256(payload).hexdigest(),
      filename=os.path.basename(urllib.parse.urlsplit(url).path))
          for url, payload in files.items()}
  real_url_infos = tfds.core.DatasetBuilder.__dict__["url_infos"]

  class UrlInfos:
    """`url_infos` as TFDS reads it (beside the builder's code), ours over."""

    def __get__(self, obj, cls):
      infos = dict(real_url_infos.__get__(obj, cls) or {})
      infos.update({u: i for u, i in ours.items() if u in infos})
      return infos

  open_url = tfds_downloader._open_url  # pylint: disable=protected-access
  address = prepare.download_address
  getaddrinfo = socket.getaddrinfo

  def loopback_only(host, *args, **kwargs):
    if host not in LOOPBACK:
      raise socket.gaierror(f"{host}: not on loopback (test)")
    return getaddrinfo(host, *args, **kwargs)

  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(socket, "getaddrinfo", loopback_only)
    mp.setattr(tfds_downloader, "_open_url",
               lambda url, **kw: open_url(local(url), **kw))
    mp.setattr(prepare, "download_address", lambda url: address(local(url)))
    # By hand: monkeypatch would read the old value, i.e. run TFDS's own.
    tfds.core.DatasetBuilder.url_infos = UrlInfos()
    # The MNIST builder reads exactly 60,000 / 10,000 images, whatever the
    # idx header says: the one size knob, not the format.
    mnist = sys.modules[tfds.builder_cls("mnist").__module__]
    mp.setattr(mnist, "_TRAIN_EXAMPLES", N_TRAIN)
    mp.setattr(mnist, "_TEST_EXAMPLES", N_TEST)
    try:
      yield server
    finally:
      tfds.core.DatasetBuilder.url_infos = real_url_infos
      server.shutdown()
      server.server_close()


# ----------------------------------------------------------------------------
# Every dataset prepared by TFDS, then read through lottery_tf.


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """data dir, {name: splits}, server hits, files served."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  files, splits = {}, {}
  for name in MAKERS:
    f, splits[name] = fake_dataset(name)
    files.update(f)
  with fake_network(files) as server:
    for name in MAKERS:
      # lottery_tf's pipeline: TFDS's download_and_prepare, guarded.
      data.info(DatasetHparams(dataset=name, data_dir=data_dir))
  # The network is gone again: reading prepared data needs none.
  return data_dir, splits, list(server.hits), server.files


def test_the_builders_fetched_every_file_they_register_once(prepared):
  _, _, hits, served = prepared
  assert sorted(hits) == sorted(served)
  # What we serve is exactly what TFDS registers for these builders.
  registered = set()
  for name in MAKERS:
    registered |= set(tfds.builder_cls(name).url_infos)
  assert {path.lstrip("/") for path in served} == {
      u.split("://", 1)[1] for u in registered}


def _native(name, data_dir, split):
  """Images (back to uint8) and labels of `split` as lottery_tf reads it."""
  hp = DatasetHparams(dataset=name, data_dir=data_dir, normalize=False)
  (x, y), = list(data.load(hp, split, batch_size=100).as_numpy_iterator())
  assert x.dtype == np.float32
  # Exactly k / 255: rounding only undoes float32's last bit.
  np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)
  return np.round(x * 255).astype(np.uint8), y


def _no_network_wanted(address, timeout):
  raise AssertionError(f"connects to {address} for prepared data")


def _tfds_order(images, loaded):
  """Positions in `images` (as written) of the `loaded` images: TFDS's
  writer shuffles the examples of a split (by key hash)."""
  where = {image.tobytes(): i for i, image in enumerate(images)}
  order = np.array([where[image.tobytes()] for image in loaded])
  assert sorted(order) == list(range(len(images)))
  return order


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_native_pixels_and_labels_are_the_ones_written(prepared, name):
  data_dir, splits, _, _ = prepared
  builder = tfds.builder(name, data_dir=data_dir)
  assert builder.is_prepared()
  with pytest.MonkeyPatch.context() as mp:
    # Prepared data never asks for the network.
    mp.setattr(prepare, "reachable", _no_network_wanted)
    info = data.info(DatasetHparams(dataset=name, data_dir=data_dir))
  assert info.num_classes == NUM_CLASSES[name]
  assert info.num_examples == {"train": N_TRAIN, "validation": 0,
                               "test": N_TEST}
  for split in ("train", "test"):
    images, labels = splits[name][split]
    x, y = _native(name, data_dir, split)
    assert x.shape == images.shape
    order = _tfds_order(images, x)  # Every image written, each once.
    np.testing.assert_array_equal(x, images[order])
    np.testing.assert_array_equal(y, labels[order])


def _expected(name, images, hp):
  """The eval transform of the presets, by hand from the written pixels."""
  plan = preprocess.make_plan(hp)
  x = images.astype(np.float64) / 255
  if name == "fashion_mnist":  # pad 28 -> 32: two black rows/columns a side.
    x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
  elif name == "smallnorb":  # One grey level an image: any resize keeps it.
    x = np.broadcast_to(x[:, :1, :1], (len(x), 32, 32, 1))
  if x.shape[-1] == 1 and plan.channels == 3:
    x = np.repeat(x, 3, axis=-1)
  return (x - np.array(plan.mean)) / np.array(plan.std)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_preset_preprocessing_and_a_few_training_steps(prepared, name):
  data_dir, splits, _, _ = prepared
  hp = DatasetHparams(dataset=name, data_dir=data_dir, **PRESETS[name])
  info = data.info(hp)
  size = PRESETS[name].get("image_size") or splits[name]["test"][0].shape[1]
  channels = PRESETS[name].get("channels") or splits[name]["test"][0].shape[3]
  assert info.input_shape == (size, size, channels)
  assert info.num_classes == NUM_CLASSES[name]
  images, labels = splits[name]["test"]
  order = _tfds_order(images, _native(name, data_dir, "test")[0])
  (x, y), = list(data.load(hp, "test", batch_size=100).as_numpy_iterator())
  np.testing.assert_allclose(x, _expected(name, images[order], hp),
                             atol=2e-5)
  np.testing.assert_array_equal(y, labels[order])
  # The augmented, shuffled training stream: right shape, written labels.
  x, y = next(data.load(hp, "train", batch_size=8, seed=1, training=True,
                        start_batch=0).as_numpy_iterator())
  assert x.shape == (8, size, size, channels)
  assert set(y) <= set(splits[name]["train"][1])

  thp = TrainingHparams(lr=0.01, batch_size=8, training_steps="3it", seed=0)
  task = Task(hp, ModelHparams(model="lenet_300_100"), thp)
  assert task.info == info
  training.set_seed(0)
  with task.scope():
    model = task.build_model()
    train_model = training.compile_model(model, thp, task.steps_per_epoch)
  result = training.fit(train_model, task.train_data(),
                        steps_per_epoch=task.steps_per_epoch, start_step=0,
                        end_step=3, verbose=0)
  assert int(train_model.optimizer.iterations.numpy()) == 3
  assert np.all(np.isfinite(result.history["loss"]))


# ----------------------------------------------------------------------------
# The dependency TFDS's download path needs (and declares only for Python <
# 3.9): hidden, preparation fails on it; back, the same preparation works.

HIDE_AND_PREPARE = textwrap.dedent("""
    import importlib.abc, sys
    sys.path.insert(0, {tests!r})

    class Hide(importlib.abc.MetaPathFinder):
      # As on a fresh install without the module.
      def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "importlib_resources":
          raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, Hide())

    import test_tfds_builders as t
    from lottery_tf import data
    from lottery_tf.errors import UserError
    from lottery_tf.data.hparams import DatasetHparams
    files, _ = t.fake_dataset("mnist")
    hp = DatasetHparams(dataset="mnist", data_dir={data_dir!r})
    with t.fake_network(files):
      try:
        data.info(hp)
        print("HIDDEN: prepared")
      except UserError as e:
        print("HIDDEN:", e)
      sys.meta_path.pop(0)
      data.info(hp)
      print("SHOWN: prepared", data.info(hp).num_examples["train"])
""")


def test_preparation_needs_importlib_resources(tmp_path):
  result = subprocess.run(
      [sys.executable, "-c", HIDE_AND_PREPARE.format(
          tests=os.path.join(REPO, "tests"), data_dir=str(tmp_path / "tfds"))],
      capture_output=True, text=True, timeout=300, env=clean_env())
  lines = [l for l in result.stdout.splitlines() if l.endswith("prepared")
           or l.startswith(("HIDDEN:", "SHOWN:"))]
  assert result.returncode == 0, result.stderr[-3000:]
  hidden, shown = lines
  assert "No module named 'importlib_resources'" in hidden, hidden
  assert "pip install importlib_resources" in hidden, hidden
  assert shown == f"SHOWN: prepared {N_TRAIN}"


def test_setup_py_declares_what_the_builders_import():
  import ast  # pylint: disable=g-import-not-at-top
  with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  requires = next(
      kw.value for node in ast.walk(tree) if isinstance(node, ast.Call)
      for kw in node.keywords if kw.arg == "install_requires")
  names = {e.value.split("<")[0].split(">")[0].split("=")[0].split(";")[0]
           .strip().lower().replace("-", "_")
           for e in requires.elts if isinstance(e, ast.Constant)}
  # importlib_resources: TFDS's download path; scipy: the SVHN builder.
  assert {"importlib_resources", "scipy"} <= names


# ----------------------------------------------------------------------------
# No network, no data: one line, at once.

#: A network that never answers: every name but loopback's lookup hangs (the
#: worst case: no error for TFDS to give up on).
NO_NETWORK = textwrap.dedent("""
    import socket, time
    _getaddrinfo = socket.getaddrinfo
    def getaddrinfo(host, *args, **kwargs):
      if host not in {loopback!r}:
        time.sleep(3600)
      return _getaddrinfo(host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo
""").format(loopback=LOOPBACK)

_BASELINE = []


@pytest.fixture
def offline(tmp_path):
  """(env, data dir, startup seconds): a subprocess environment without
  network, an empty data dir, and how long `lottery_tf find` takes to fail
  on a bad flag (the startup the 10 s come on top of, on a loaded machine)."""
  site = tmp_path / "offline_site"
  site.mkdir()
  (site / "sitecustomize.py").write_text(NO_NETWORK)
  path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH"))
                         if p)
  env = clean_env(PYTHONPATH=path)
  empty = tmp_path / "empty"
  empty.mkdir()
  return env, str(empty)


def _startup(cli, env):
  if not _BASELINE:
    began = time.perf_counter()
    result = cli("find", "--dataset=no_such_dataset", "--quiet", env=env,
                 timeout=60)
    assert result.returncode == 2 and "--dataset" in result.stderr
    _BASELINE.append(time.perf_counter() - began)
  return _BASELINE[0]


def _fails_at_once(cli, env, *args):
  startup = _startup(cli, env)
  began = time.perf_counter()
  # TFDS alone would hang on this network for good: fail after a minute.
  result = cli("find", *args, env=env, timeout=60)
  seconds = time.perf_counter() - began
  assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  # Within 10 s of a run that fails on a flag (TensorFlow's import alone
  # takes seconds on a busy machine).
  assert seconds - startup < 10, (seconds, startup)
  return lines[0]


def test_no_network_fails_at_once_naming_the_fix(cli, offline):
  env, empty = offline
  line = _fails_at_once(cli, env, "--dataset=mnist", f"--data_dir={empty}")
  assert "mnist" in line and "--data_dir" in line and empty in line, line
  assert "tfds build mnist --data_dir=DIR" in line, line
  assert "storage.googleapis.com" in line, line


def test_imagenet_without_its_archives_names_the_manual_dir(cli, offline):
  env, empty = offline
  line = _fails_at_once(cli, env, "--dataset=imagenet2012", "--image_size=64",
                        f"--data_dir={empty}")
  manual = os.path.join(empty, "downloads", "manual")
  assert "imagenet2012" in line and "--data_dir" in line, line
  assert manual in line, line
  assert "ILSVRC2012_img_train.tar" in line, line
  assert "ILSVRC2012_img_val.tar" in line, line
  assert "tfds build imagenet2012" in line, line


def test_a_preset_fails_at_once_too(cli, offline, tmp_path):
  env, empty = offline
  line = _fails_at_once(
      cli, env, f"--flagfile={os.path.join(REPO, 'flags', 'morcos_vgg19_cifar10.cfg')}",
      f"--data_dir={empty}", f"--output_dir={tmp_path / 'runs'}")
  assert "cifar10" in line and "tfds build cifar10" in line, line


def test_places365_is_a_download_like_any_other(tmp_path):
  """Without network, places365_small fails in the guard, in-process."""
  hp = DatasetHparams(dataset="places365_small", image_size=64,
                      preprocessing="imagenet", data_dir=str(tmp_path))
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(prepare, "reachable", lambda address, timeout: False)
    began = time.perf_counter()
    with pytest.raises(UserError, match=r"places365_small .*--data_dir.*"
                       r"data\.csail\.mit\.edu:80.*tfds build places365_small"):
      data.info(hp)
    assert time.perf_counter() - began < 10


def test_with_some_downloads_there_the_fetch_itself_is_checked(tmp_path):
  """A partial download dir skips the up-front check; the download TFDS
  really attempts is checked instead, as fast."""
  stray = tmp_path / "downloads" / "mnist" / "t10k-labels-idx1-ubyte.gz"
  stray.parent.mkdir(parents=True)
  stray.write_bytes(b"not the file TFDS has checksums for")
  addresses = []

  def unreachable(address, timeout):
    addresses.append(address)
    return False

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(prepare, "reachable", unreachable)
    began = time.perf_counter()
    with pytest.raises(UserError, match=r"mnist .*--data_dir.*"
                       r"storage\.googleapis\.com:443.*tfds build mnist"):
      data.info(DatasetHparams(dataset="mnist", data_dir=str(tmp_path)))
    assert time.perf_counter() - began < 10
  assert addresses == [("storage.googleapis.com", 443)]
