"""Test set-up: Keras 2 before TensorFlow, quiet logs, a scratch TFDS dir."""
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clean_env(**extra):
  """The environment for a subprocess, without our Keras routing variable."""
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env.update(extra)
  return env


@pytest.fixture
def cli(tmp_path):
  """Runs ``lottery_tf ARGS`` in a subprocess; returns CompletedProcess."""
  import subprocess  # pylint: disable=g-import-not-at-top

  def run(*args, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, "-m", "lottery_tf.cli.main", *args],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=timeout,
        env=env or clean_env())
  return run
