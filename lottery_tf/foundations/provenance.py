"""Provenance: what produced a result, recorded in every result file."""
import platform
from typing import Dict


def library_versions() -> Dict[str, str]:
  """Versions of what produced a result, recorded in every result file."""
  import importlib.metadata as md  # pylint: disable=g-import-not-at-top
  out = {"python": platform.python_version()}
  for dist in ("lottery_tf", "tensorflow", "tf-keras",
               "tensorflow-model-optimization", "tensorflow-datasets", "numpy"):
    try:
      out[dist] = md.version(dist)
    except md.PackageNotFoundError:
      out[dist] = "not installed"
  return out
