"""benchmarks/distributed.py --quick runs and reports its ratios.

It splits the CPU into 2 logical devices before TensorFlow starts, so it
needs a process of its own. Times nothing: the quick numbers mean nothing;
the script itself asserts that the 2-replica wrapped model's pruned weights
are exactly 0 on both replicas, and that the replicas agree.
"""
import json
import os
import re
import subprocess
import sys

from conftest import REPO, clean_env


def test_quick_run_prints_table_ratios_and_replica_check():
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "benchmarks", "distributed.py"),
       "--quick"],
      capture_output=True, text=True, timeout=300, env=clean_env(), cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-4000:]
  out = proc.stdout
  for replicas in ("1 replica:", "2 replicas:"):
    line = next((l for l in out.splitlines()
                 if l.startswith("ratio lenet_300_100 " + replicas)), None)
    assert line, out
    assert re.search(r"wrapped/dense \d+\.\d+\s+stock/dense \d+\.\d+", line), (
        line)
  assert "exactly 0 on both replicas, kernels identical" in out
  report = json.loads(out.strip().splitlines()[-1])
  rows = report["rows"]
  assert {(r["replicas"], r["variant"]) for r in rows} == {
      (n, v) for n in (1, 2) for v in ("dense", "wrapped", "stock")}
  assert all(r["examples_per_s"] > 0 for r in rows)
  check = report["models"]["lenet_300_100"]["wrapped_2replica_check"]
  assert check["replicas"] == 2 and check["pruned_weights"] > 0
  ratios = report["models"]["lenet_300_100"]["ratios"]
  for key in ("wrapped/dense_1replica", "stock/dense_1replica",
              "wrapped/dense_2replica", "stock/dense_2replica"):
    assert ratios[key] > 0, key
