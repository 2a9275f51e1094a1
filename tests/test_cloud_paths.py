"""`--output_dir=ram://...` (TensorFlow's in-memory filesystem, standing in
for gs:// and s3://) gives the same files and numbers as a local directory."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import clean_env

DRIVER = os.path.join(os.path.dirname(__file__), "cloud_paths_driver.py")
# Provenance that names where things are, or when: not results.
_PLACES = ("ticket", "experiment", "path", "versions", "source", "export_dir",
           "scores_file", "wall_seconds", "train_seconds", "ms_per_step",
           "eval_seconds", "seconds", "plots", "data_dir", "created",
           # sha256s of TensorFlow's SavedModel files: its fingerprint.pb
           # depends on where the SavedModel was written.
           "files", "manifest_sha256", "ticket_sha256")


def _files(root):
  """Relative paths; a transfer's hash left out: it is named by the ticket's
  ticket.json, whose sha256 of TensorFlow's fingerprint.pb depends on where
  the SavedModel was written."""
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      rel = os.path.relpath(os.path.join(d, f), root)
      key = re.sub(r"^(runs/transfer_[^/]*)-[0-9a-f]{10}/", r"\1-HASH/", rel)
      # An event file is named by its time, host and pid.
      key = re.sub(r"events\.out\.tfevents\..*$", "events.out.tfevents", key)
      out[key] = rel
  return out


def _numbers(obj):
  """The JSON without its paths and timings."""
  if isinstance(obj, dict):
    return {k: _numbers(v) for k, v in obj.items() if k not in _PLACES}
  if isinstance(obj, list):
    return [_numbers(v) for v in obj]
  if isinstance(obj, str) and (obj.startswith("/") or "://" in obj):
    return "<a path>"
  return obj


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("cloud")
  out = {}
  for kind, target in (("local", str(root / "local")),
                       ("ram", "ram://lottery_tf_test")):
    copy = str(root / f"{kind}_copy")
    proc = subprocess.run([sys.executable, DRIVER, target, copy],
                          capture_output=True, text=True, timeout=900,
                          env=clean_env(), cwd=str(root))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out[kind] = (target if kind == "local" else copy, proc.stdout)
  return out


def test_ram_gives_the_same_files_as_local_disk(runs):
  local, ram = runs["local"][0], runs["ram"][0]
  # Nothing was written to a local directory named after the scheme.
  assert not os.path.exists(os.path.join(os.path.dirname(local), "ram:"))
  a, b = set(_files(local)), set(_files(ram))
  assert a == b, (sorted(a - b), sorted(b - a))
  assert any(f.endswith("level_02/ticket/saved_model.pb") for f in a)
  assert any(f.startswith("export/") for f in a)
  assert any(f.endswith("scores.npz") for f in a)


def test_ram_gives_the_same_numbers_as_local_disk(runs):
  local, ram = runs["local"][0], runs["ram"][0]
  compared = 0
  ram_files = _files(ram)
  for key, rel in sorted(_files(local).items()):
    other = ram_files[key]
    if rel.endswith(".json"):
      with open(os.path.join(local, rel)) as f:
        one = _numbers(json.load(f))
      with open(os.path.join(ram, other)) as f:
        two = _numbers(json.load(f))
      assert one == two, rel
      compared += 1
    elif rel.endswith(".npz"):
      import numpy as np  # pylint: disable=g-import-not-at-top
      with np.load(os.path.join(local, rel)) as x, \
          np.load(os.path.join(ram, other)) as y:
        assert sorted(x.files) == sorted(y.files), rel
        for k in x.files:
          if k in _PLACES:
            continue
          np.testing.assert_array_equal(x[k], y[k], err_msg=f"{rel} {k}")
      compared += 1
  assert compared > 15


def test_resume_from_ram_skips_finished_levels(runs):
  # The driver reran find on the same output: every level was "(done)".
  stdout = runs["ram"][1]
  assert stdout.count("(done) level") == 3, stdout
