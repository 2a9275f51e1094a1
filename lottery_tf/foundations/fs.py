"""Every file operation of lottery_tf, through ``tf.io.gfile``.

So ``--output_dir=gs://bucket/runs`` (or ``s3://``, TensorFlow's in-memory
``ram://``) behaves like a local directory: experiment directories, atomic
writes, tickets, scores, exports, plots, checkpoints and the resume checks
all come through here. Object stores have no directories of their own (a
"directory" exists when a file is under it) and no atomic directory rename:
callers that need a finished-marker write it last (see ``foundations.store``).
"""
import os
import posixpath
from typing import List

from lottery_tf._keras import tf

gfile = tf.io.gfile


def is_url(path: str) -> bool:
  """``scheme://...`` (gs, s3, ram, hdfs): not a local path."""
  return "://" in str(path)


def join(*parts: str) -> str:
  if parts and is_url(parts[0]):
    return posixpath.join(*parts)
  return os.path.join(*parts)


def abspath(path: str) -> str:
  """The absolute local path, or the URL as it is."""
  return path if is_url(path) else os.path.abspath(path)


def exists(path: str) -> bool:
  return gfile.exists(path)


def isdir(path: str) -> bool:
  return gfile.isdir(path)


def isfile(path: str) -> bool:
  if not is_url(path):
    return os.path.isfile(path)
  # Object stores call every prefix of a file a directory: a file is
  # whatever has a size.
  try:
    gfile.stat(path)
  except tf.errors.OpError:
    return False
  return not any(True for _ in _children(path))


def _children(path: str):
  try:
    return gfile.listdir(path)
  except tf.errors.OpError:
    return []


def listdir(path: str) -> List[str]:
  # GCS lists subdirectories with a trailing slash.
  return sorted({name.rstrip("/") for name in gfile.listdir(path)})


def glob(pattern: str) -> List[str]:
  return sorted(gfile.glob(pattern))


def makedirs(path: str) -> None:
  gfile.makedirs(path)


def open(path: str, mode: str = "r"):  # pylint: disable=redefined-builtin
  return gfile.GFile(path, mode)


def read_bytes(path: str) -> bytes:
  with gfile.GFile(path, "rb") as f:
    return f.read()


def getsize(path: str) -> int:
  return gfile.stat(path).length


def remove(path: str) -> None:
  gfile.remove(path)


def rename(src: str, dst: str, overwrite: bool = True) -> None:
  gfile.rename(src, dst, overwrite=overwrite)


def rmtree(path: str) -> None:
  """Deletes ``path`` and everything under it; nothing there is no error."""
  if not gfile.exists(path):
    return
  try:
    gfile.rmtree(path)
  except tf.errors.NotFoundError:
    # ram:// (and object stores) may hold files under a "directory" that
    # has no entry of its own: delete the files.
    for root, _, files in list(gfile.walk(path)):
      for name in files:
        try:
          gfile.remove(join(root, name))
        except tf.errors.NotFoundError:
          pass


def walk_files(path: str) -> List[str]:
  """Every file under ``path``, relative to it, sorted ("/"-separated)."""
  out = []
  url = is_url(path)
  for root, _, files in gfile.walk(path):
    rel = root[len(path):].strip("/")
    for name in files:
      # ram:// lists by name prefix: beside `transfer.json` a directory
      # `transfer/` seems to hold a `.json`. Keep what really is a file.
      if url and not gfile.exists(join(root, name)):
        continue
      out.append(f"{rel}/{name}" if rel else name)
  return sorted(out)


def copytree(src: str, dst: str) -> None:
  """Copies the files under ``src`` to ``dst`` (any filesystems)."""
  for rel in walk_files(src):
    target = join(dst, *rel.split("/"))
    gfile.makedirs(posixpath.dirname(target) if is_url(target)
                   else os.path.dirname(target))
    gfile.copy(join(src, *rel.split("/")), target, overwrite=True)
