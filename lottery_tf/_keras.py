"""Make sure the Keras in use is Keras 2 (``tf_keras``), the one tfmot 0.8.1 needs.

Every module of lottery_tf imports ``keras`` and ``tf`` from here, never
``tf.keras`` directly: ``tf.keras`` is a lazy loader that picks Keras 2 or
Keras 3 the first time it is touched, reading ``TF_USE_LEGACY_KERAS`` then.
"""
import contextlib
import os
import re
import sys
import tempfile

# Must happen before tf.keras is first resolved (not merely before tensorflow
# is imported): the lazy loader reads the variable on first attribute access.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# TensorFlow's native start-up lines (oneDNN, CUDA probing, CPU features)
# are written to fd 2 before its logging is configured, so no log level hides
# them. They would bury the one-line errors the CLI promises; filter them.
_STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog|[IW]0000 |"
    r"To enable the following instructions:|E0000 .*cuInit)")


@contextlib.contextmanager
def _filtered_native_stderr():
  try:
    saved = os.dup(2)
  except OSError:  # no fd 2 (embedded interpreters): nothing to filter
    yield
    return
  with tempfile.TemporaryFile(mode="w+b") as capture:
    sys.stderr.flush()
    os.dup2(capture.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      text = capture.read().decode(errors="replace")
      kept = [line for line in text.splitlines()
              if line.strip() and not _STARTUP_NOISE.match(line)]
      if kept:
        sys.stderr.write("\n".join(kept) + "\n")


with _filtered_native_stderr():
  import tensorflow as tf  # noqa: E402
  # Device discovery prints the rest of the chatter (cuInit on GPU-less hosts).
  tf.config.list_physical_devices()

_KERAS3_MESSAGE = (
    "lottery_tf needs Keras 2 (tf_keras), but tf.keras was already resolved to "
    "Keras 3 in this process; import lottery_tf before touching tf.keras, or "
    "set TF_USE_LEGACY_KERAS=1 in the environment before importing tensorflow."
)


def _tf_keras_routes_to_keras2() -> bool:
  """Whether tf.keras is (or, once touched, will be) tf_keras."""
  loader = tf.__dict__.get("keras")
  if getattr(loader, "_tfll_initialized", None) is False:
    loader._initialize()  # pylint: disable=protected-access
  version = getattr(loader, "_tfll_keras_version", None)
  if version is not None:
    return version == "tf_keras"
  # Once resolved, the lazy loader replaces itself by the module it loaded.
  name = getattr(loader, "__name__", "")
  return loader is None or name.startswith("tf_keras")


if not _tf_keras_routes_to_keras2():
  raise ImportError(_KERAS3_MESSAGE)

import tf_keras as keras  # noqa: E402

if not keras.__version__.startswith("2."):
  raise ImportError(
      f"lottery_tf needs tf_keras 2.x, found {keras.__version__}; "
      "reinstall with `pip install -e .` so tf-keras matches tensorflow.")

__all__ = ["keras", "tf"]
