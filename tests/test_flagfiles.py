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


def _flag_values(path):
  """{flag: value} of a flagfile's flag lines."""
  out = {}
  for line in open(path):
    if line.startswith("--"):
      key, _, value = line.strip()[2:].partition("=")
      out[key] = value
  return out


def _hardware_header(text):
  m = re.search(r"^# Hardware:.*(?:\n#  .*)*", text, re.M)
  return m.group(0) if m else ""


LARGE = ("imagenet", "places365")
LARGE_SOURCES = [p for p in FLAGFILES
                 if _flag_values(p).get("dataset", "").startswith(LARGE)]


def test_imagenet_and_places365_sources_are_set_up_for_8_gpus():
  names = sorted(os.path.basename(p) for p in LARGE_SOURCES)
  assert names == sorted(f"morcos_{m}_{d}.cfg" for m in ("resnet50", "vgg19")
                         for d in ("imagenet", "places365")), names
  for path in LARGE_SOURCES:
    values, text = _flag_values(path), open(path).read()
    name = os.path.basename(path)
    assert values.get("strategy") == "mirrored", name
    assert values.get("batch_size") == "1024", name
    assert values.get("warmup_steps") == "5ep", name
    assert values.get("mixed_precision") in ("mixed_float16",
                                             "mixed_bfloat16"), name
    assert values.get("preprocessing") == "imagenet", name
    assert values.get("image_size") == "224", name
    hardware = _hardware_header(text)
    assert "8 GPUs" in hardware, (name, hardware)
    assert "1024" in hardware, (name, hardware)
    assert re.search(r"^# Several machines:.*TF_CONFIG", text,
                     re.M | re.S), name
    assert "--strategy=multi_worker" in text, name


def test_grids_with_imagenet_or_places365_sources_run_mirrored():
  grids = [p for p in FLAGFILES if any(
      s.startswith(LARGE)
      for s in _flag_values(p).get("sources", "").split(","))]
  assert grids
  for path in grids:
    name = os.path.basename(path)
    assert _flag_values(path).get("strategy") == "mirrored", name
    assert "8 GPUs" in _hardware_header(open(path).read()), name


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
