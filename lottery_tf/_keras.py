"""Make sure the Keras in use is Keras 2 (``tf_keras``), the one tfmot 0.8.1 needs.

Every module of lottery_tf imports ``keras`` and ``tf`` from here, never
``tf.keras`` directly: ``tf.keras`` is a lazy loader that picks Keras 2 or
Keras 3 the first time it is touched, reading ``TF_USE_LEGACY_KERAS`` then.
"""
import os

# Must happen before tf.keras is first resolved (not merely before tensorflow
# is imported): the lazy loader reads the variable on first attribute access.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_KERAS3_MESSAGE = (
    "lottery_tf needs Keras 2 (tf_keras), but tf.keras was already resolved to "
    "Keras 3 in this process; import lottery_tf before touching tf.keras, or "
    "set TF_USE_LEGACY_KERAS=1 in the environment before importing tensorflow."
)


def _tf_keras_loader_version():
  """The Keras tf.keras routes to, resolving it if nobody has yet."""
  loader = tf.__dict__.get("keras")
  initialized = getattr(loader, "_tfll_initialized", None)
  if initialized is False:
    loader._initialize()  # pylint: disable=protected-access
  return getattr(loader, "_tfll_keras_version", None)


_version = _tf_keras_loader_version()
if _version not in (None, "tf_keras"):
  raise ImportError(_KERAS3_MESSAGE)

import tf_keras as keras  # noqa: E402

if not keras.__version__.startswith("2."):
  raise ImportError(
      f"lottery_tf needs tf_keras 2.x, found {keras.__version__}; "
      "reinstall with `pip install -e .` so tf-keras matches tensorflow.")

__all__ = ["keras", "tf"]
