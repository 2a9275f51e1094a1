"""lottery_tf: lottery tickets with rewinding, and their transfer, on Keras 2.

The public surface (everything else is internal and may change):

* ``find``, ``train``, ``transfer``, ``grid``, ``score``, ``lmc``, ``diet``,
  ``export``: the commands, with their flags as keywords; each returns a
  :class:`Result` (its ``directory``, ``summary`` DataFrame, ``hparams``,
  ``ticket(level)`` and ``figures``). See :mod:`lottery_tf.api`.
* ``load_ticket(path)``: a ticket directory read as tensors (never
  executed); ``.build()`` makes its Keras model, ``.masks`` and ``.weights``
  are NumPy arrays.
* ``UserError``: what bad input raises (a ``ValueError``).
* ``keras``: lottery tickets for your own Keras model and ``fit`` loop
  (``wrap``, ``LotteryCallback``, ``prune``, ``rewind``; see
  :mod:`lottery_tf.keras`); every other name in it is Keras 2's (tf_keras),
  the Keras the pruning wrappers need: ``lt.keras.layers.Dense``.
* ``tf``: TensorFlow, as lottery_tf uses it.

``import lottery_tf`` routes ``tf.keras`` to Keras 2 (tf_keras), the Keras
that tensorflow-model-optimization 0.8.1 works with (see ``_keras.py``). It
does not load TensorFlow itself: the names above load it on first use, so
commands that need no TensorFlow (``lottery_tf list``) answer at once. If TensorFlow is already loaded, the routing is
checked now (a tf.keras already resolved to Keras 3 is an ImportError).
"""
import importlib
import os
import sys

# Read by TensorFlow's lazy tf.keras loader the first time tf.keras is touched.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

#: Attributes loaded on first use: name -> (module, attribute or None).
_LAZY = {"keras": ("lottery_tf.keras", None),
         "tf": ("lottery_tf._keras", "tf"),
         "load_ticket": ("lottery_tf.tickets", "load"),
         "UserError": ("lottery_tf.errors", "UserError")}
_LAZY.update({name: ("lottery_tf.api", name) for name in (
    "Result", "find", "train", "grid", "score", "lmc", "export")})
# Subpackages named like their command: the package itself, which calls the
# command (lottery_tf.api.command_package), so `from lottery_tf import
# transfer` is the package whether or not `lt.transfer(...)` came first.
_LAZY.update({name: (f"lottery_tf.{name}", None) for name in ("transfer", "diet")})

__all__ = ["__version__", *_LAZY]

if "tensorflow" in sys.modules:
  importlib.import_module("lottery_tf._keras")


def __getattr__(name):
  if name in _LAZY:
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
      value = getattr(value, attr)
    globals()[name] = value
    return value
  # Submodules (lottery_tf.data, ...) are found by the import system; this
  # is only reached for names that are neither.
  raise AttributeError(f"module 'lottery_tf' has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(_LAZY))
