"""Every preset in flags/ has its header, parses, and runs on TFDS mock data."""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, clean_env

FLAGFILES = sorted(glob.glob(os.path.join(REPO, "flags", "*.cfg")))
HEADER = ("# Paper:", "# Expected", "# Hardware:", "# Run: lottery_tf ")


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_header_states_paper_expectation_hardware_and_command(path):
  text = open(path).read()
  for key in HEADER:
    if key == "# Paper:" and "demo" in os.path.basename(path):
      continue
    assert re.search("^" + re.escape(key), text, re.M), (path, key)
  name = os.path.basename(path)
  assert f"--flagfile=flags/{name}" in text


def test_every_preset_runs_a_few_steps_on_mock_data(tmp_path):
  # Two processes, one per core: TensorFlow starts once in each.
  halves = [FLAGFILES[0::2], FLAGFILES[1::2]]
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(REPO, "tests", "flagfile_smoke.py"),
       str(tmp_path / f"part{i}"), *half],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=clean_env(), cwd=REPO) for i, half in enumerate(halves) if half]
  results = {}
  for proc in procs:
    out, err = proc.communicate(timeout=1200)
    assert proc.returncode == 0, err[-4000:]
    results.update(json.loads(out.strip().splitlines()[-1]))
  assert sorted(results) == sorted(os.path.basename(p) for p in FLAGFILES)
  for name, path in results.items():
    assert os.path.exists(path), name
    summary = json.load(open(path))
    assert summary.get("rows") or summary.get("runs"), name
