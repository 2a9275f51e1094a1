"""`lottery_tf list` answers from a stored catalog, without TensorFlow; the
catalog is what the registries say (or this fails and says how to rewrite
it)."""
import subprocess
import sys
import time

from conftest import clean_env

_LIST = """
import sys, time
began = time.perf_counter()
sys.argv = ["lottery_tf", "list"]
from lottery_tf.cli import main
try:
  main.run()
except SystemExit as e:
  code = e.code
print("EXIT", code, "TENSORFLOW", "tensorflow" in sys.modules,
      "SECONDS", time.perf_counter() - began)
"""


def test_the_catalog_is_what_the_registries_say():
  from lottery_tf import catalog  # pylint: disable=g-import-not-at-top
  assert catalog.load() == catalog.build(), (
      "lottery_tf/_catalog.py is out of date: run "
      "`python -m lottery_tf.catalog` and commit it")


def test_list_prints_the_catalog_without_loading_tensorflow():
  from lottery_tf import catalog  # pylint: disable=g-import-not-at-top
  began = time.perf_counter()
  proc = subprocess.run([sys.executable, "-c", _LIST], capture_output=True,
                        text=True, env=clean_env(), timeout=120)
  wall = time.perf_counter() - began
  assert proc.returncode == 0, proc.stderr[-3000:]
  *table, status = proc.stdout.strip().splitlines()
  assert table == catalog.lines(catalog.load())
  assert "resnet50" in "\n".join(table) and "mnist_5k" in "\n".join(table)
  words = status.split()
  assert words[1] in ("0", "None") and words[2:4] == ["TENSORFLOW", "False"], (
      status)
  # Well under a second on an idle machine; the bound leaves room for a
  # loaded one (TensorFlow's import alone takes longer than this).
  assert wall < 6, f"lottery_tf list took {wall:.1f} s"
  assert proc.stderr == "", proc.stderr
