"""`import lottery_tf` routes tf.keras to Keras 2 in either import order."""
import subprocess
import sys

import pytest

from conftest import clean_env

_CHECK = ("import tf_keras; "
          "assert tf.keras.layers.Dense is tf_keras.layers.Dense, tf.keras; "
          "import tensorflow_model_optimization as tfmot; "
          "m = tf.keras.Sequential([tf.keras.Input((4,)), "
          "tf.keras.layers.Dense(2)]); "
          "tfmot.sparsity.keras.prune_low_magnitude(m); print('ok')")


def _run(code):
  return subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, env=clean_env(), timeout=300)


@pytest.mark.parametrize("code", [
    "import lottery_tf; import tensorflow as tf; " + _CHECK,
    "import tensorflow as tf; import lottery_tf; " + _CHECK,
])
def test_keras2_in_either_import_order(code):
  proc = _run(code)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip().endswith("ok")


def test_keras3_already_in_use_fails_with_one_clear_sentence():
  proc = _run("import tensorflow as tf; tf.keras.layers.Dense; "
              "import lottery_tf")
  assert proc.returncode != 0
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("ImportError: lottery_tf needs Keras 2 (tf_keras)")
  assert "TF_USE_LEGACY_KERAS=1" in last
