"""TFDS preparation, or one clear error at once when this machine cannot do it.

Left to itself, TFDS meets a dataset that is not prepared on a machine
without network by retrying every download (urllib3: 10 retries with
backoff, about three minutes) before failing with a traceback, and an
ImageNet without its archives fails deep in the builder's split generators.
`prepare` runs TFDS's own `download_and_prepare` with two checks hooked into
it, so they run only when TFDS really is about to prepare the data (never
for prepared data, nor under `tfds.testing.mock_data`, whose
`download_and_prepare` is a no-op):

  * a manual-download dataset (ImageNet) has its archives in TFDS's manual
    directory;
  * each host TFDS is about to download from answers a TCP connect within
    `CONNECT_TIMEOUT` seconds (through the proxy, if one is set).

Either failing raises a one-line UserError naming the dataset, the data dir
and how to prepare it on another machine.

The hooks are two TFDS 4.9 internals, `DatasetBuilder._make_download_manager`
(called by `download_and_prepare` only when it is about to prepare) and
`DownloadManager._download` (called only for a file not on disk yet);
without them TFDS prepares unguarded, and tests/test_tfds_builders.py fails.
"""
import socket
import threading
import urllib.parse
import urllib.request
from typing import Dict, Optional, Tuple

from lottery_tf._keras import tf
from lottery_tf.errors import UserError

#: Seconds a download host gets to answer (name lookup included) before the
#: network counts as absent.
CONNECT_TIMEOUT = 3.0

#: What TFDS's builder of a manual-download dataset reads from the manual
#: directory, and where to get it (imagenet2012_dataset_builder.py; our
#: "test" is its validation split, so both archives are needed).
MANUAL_FILES = {
    "imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
}
MANUAL_SOURCE = {"imagenet2012": "https://image-net.org/download-images"}

_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21}


def elsewhere(tfds_name: str) -> str:
  """How to prepare `tfds_name` on another machine and use it here."""
  return (f"run `tfds build {tfds_name} --data_dir=DIR` on a machine with "
          "network access, copy DIR to this machine and pass --data_dir=DIR")


def prepare(builder, name: str, tfds_name: str, where: str) -> None:
  """`builder.download_and_prepare()`, failing fast where it cannot succeed.

  `name` is the --dataset name, `tfds_name` what `tfds build` takes (with
  the config, e.g. `imagenet_resized/32x32`), `where` the data dir; all
  three for messages only.
  """
  guard = _Guard(builder, name, tfds_name, where)
  make = getattr(builder, "_make_download_manager", None)
  if make is not None:  # A TFDS without this hook prepares unguarded.
    builder._make_download_manager = guard.wrap(make)  # pylint: disable=protected-access
  try:
    builder.download_and_prepare()
  finally:
    # Back to the class's method: the builder may be used again.
    vars(builder).pop("_make_download_manager", None)


def download_address(url: str) -> Optional[Tuple[str, int]]:
  """(host, port) that fetching `url` connects to first: its proxy, if the
  environment sets one for it (as `requests` does), else its own host.
  None for URLs that are not fetched over the network by TFDS's downloader
  (local or gs:// paths)."""
  parts = urllib.parse.urlsplit(url)
  if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
    return None
  proxy = urllib.request.getproxies().get(parts.scheme)
  if proxy and not urllib.request.proxy_bypass(parts.hostname):
    proxy_parts = urllib.parse.urlsplit(
        proxy if "://" in proxy else f"http://{proxy}")
    if proxy_parts.hostname:
      return (proxy_parts.hostname,
              proxy_parts.port or _DEFAULT_PORTS.get(proxy_parts.scheme, 80))
  return parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]


def reachable(address: Tuple[str, int], timeout: float) -> bool:
  """Whether a TCP connection to `address` opens within `timeout` seconds.

  In a daemon thread, since a name lookup has no timeout of its own and may
  hang far longer than `timeout` on a machine without network.
  """
  opened = []

  def connect():
    try:
      with socket.create_connection(address, timeout=timeout):
        opened.append(True)
    except OSError:
      pass

  thread = threading.Thread(target=connect, daemon=True)
  thread.start()
  thread.join(timeout)
  return bool(opened)


def _has_files(path) -> bool:
  for _, _, files in tf.io.gfile.walk(str(path)):
    if files:
      return True
  return False


def _manual_dir(manager):
  """The manual directory of TFDS's download manager (by default, which is
  how lottery_tf prepares, `<data_dir>/downloads/manual`)."""
  return (getattr(manager, "_manual_dir", None)
          or manager.download_dir / "manual")


class _Guard:
  """The checks `prepare` hooks into TFDS's download manager."""

  def __init__(self, builder, name: str, tfds_name: str, where: str):
    self.builder = builder
    self.name = name
    self.tfds_name = tfds_name
    self.where = where
    self.checked: Dict[Tuple[str, int], bool] = {}

  def wrap(self, make):
    """`make` (the builder's `_make_download_manager`), checking first."""

    def make_download_manager(*args, **kwargs):
      manager = make(*args, **kwargs)
      self.check_manual(manager)
      # Nothing of this dataset downloaded yet (the common case: an empty
      # --data_dir): TFDS will fetch every URL it has checksums for, so
      # check their hosts now, before its progress bars start. With some
      # files there already, only what TFDS really fetches is checked, just
      # before the fetch.
      if not self.downloads_present(manager):
        for url in sorted(self.builder.url_infos or {}):
          self.check_url(url)
      fetch = getattr(manager, "_download", None)
      if fetch is not None:
        def download(resource, *a, **kw):
          self.check_url(resource.url)
          return fetch(resource, *a, **kw)
        manager._download = download  # pylint: disable=protected-access
      return manager

    return make_download_manager

  def downloads_present(self, manager) -> bool:
    """Whether TFDS may find some of its downloads already on disk: in the
    dataset's download dir, the manual dir, or loose in the download root
    (where older TFDS versions kept them)."""
    root = str(manager.download_dir)
    if (_has_files(f"{root}/{self.builder.name}")
        or _has_files(_manual_dir(manager))):
      return True
    if not tf.io.gfile.isdir(root):
      return False
    return any(not tf.io.gfile.isdir(f"{root}/{entry}")
               for entry in tf.io.gfile.listdir(root))

  def check_manual(self, manager):
    """The manual-download archives the builder needs are in place."""
    instructions = getattr(self.builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
    if not instructions:
      return
    manual_dir = _manual_dir(manager)
    expected = MANUAL_FILES.get(self.builder.name)
    tfds_name = self.tfds_name
    if expected is None:  # A manual dataset we know no file names of.
      if not _has_files(manual_dir):
        raise UserError(
            f"--dataset: {self.name} is not prepared in {self.where} "
            f"(--data_dir) and TFDS cannot download it: put its files in the "
            f"TFDS manual directory {manual_dir} "
            f"({' '.join(instructions.split())}) and rerun, or "
            f"{elsewhere(tfds_name)}")
      return
    missing = [f for f in expected
               if not tf.io.gfile.exists(str(manual_dir / f))]
    if missing:
      source = MANUAL_SOURCE.get(self.builder.name)
      raise UserError(
          f"--dataset: {self.name} is not prepared in {self.where} "
          f"(--data_dir) and TFDS cannot download it: put "
          f"{' and '.join(expected)}{f' (from {source})' if source else ''} "
          f"in the TFDS manual directory {manual_dir} (missing: "
          f"{', '.join(missing)}) and rerun, or run `tfds build {tfds_name} "
          f"--data_dir=DIR --manual_dir=MANUAL_DIR` on a machine with those "
          "files, copy DIR to this machine and pass --data_dir=DIR")

  def check_url(self, url: str):
    """The host of `url` answers, or a UserError at once."""
    address = download_address(url)
    if address is None:
      return
    if address not in self.checked:
      self.checked[address] = reachable(address, CONNECT_TIMEOUT)
    if not self.checked[address]:
      host, port = address
      raise UserError(
          f"--dataset: {self.name} is not prepared in {self.where} "
          f"(--data_dir) and cannot be downloaded: no connection to "
          f"{host}:{port} within {CONNECT_TIMEOUT:g} s; "
          f"{elsewhere(self.tfds_name)}")
