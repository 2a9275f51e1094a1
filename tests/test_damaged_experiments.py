"""A damaged experiment directory is recomputed or refused in one line.

Every lottery_tf write is atomic, so a truncated, empty or foreign file comes
from outside (a copy cut short, another tool, a hand edit). On resume the
runner keeps such a file as NAME.damaged and recomputes what it held from the
last good state, to the same numbers; files of other levels are not touched.
"""
import hashlib
import io
import json
import os
import shutil

import numpy as np
import pytest

from conftest import found_all_done

FIND = ["find", "--dataset=digits", "--model=lenet_300_100",
        "--training_steps=2ep", "--batch_size=64", "--lr=0.05",
        "--momentum=0.9", "--levels=2", "--controls=reinit,random_mask",
        "--rewind=2it", "--seed=4", "--output_dir=runs"]
#: How a run ran, not what it computed: its times, and how many runs of its
#: level trained together with it (a recomputed run may stack with fewer).
_TIMES = ("wall_seconds", "train_seconds", "ms_per_step", "eval_seconds",
          "seconds", "created", "stacked_runs")


def _numbers(obj):
  if isinstance(obj, dict):
    return {k: _numbers(v) for k, v in obj.items() if k not in _TIMES}
  if isinstance(obj, list):
    return [_numbers(v) for v in obj]
  return obj


def _tree(root):
  """{relative path: (sha256, mtime_ns)} of every file under root."""
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      p = os.path.join(d, f)
      with open(p, "rb") as fh:
        out[os.path.relpath(p, root)] = (hashlib.sha256(fh.read()).hexdigest(),
                                         os.stat(p).st_mtime_ns)
  return out


@pytest.fixture(scope="module")
def original(tmp_path_factory):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from conftest import clean_env  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("damaged")
  proc = subprocess.run([sys.executable, "-m", "lottery_tf.cli.main", *FIND],
                        cwd=str(root), capture_output=True, text=True,
                        timeout=600, env=clean_env())
  assert proc.returncode == 0, proc.stderr[-3000:]
  summary = proc.stdout.strip().splitlines()[-1].split("results: ")[1]
  return os.path.dirname(os.path.join(str(root), summary))


def _truncate(path):
  data = open(path, "rb").read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])


def _empty(path):
  open(path, "wb").close()


def _object_arrays(path):
  with np.load(path) as z:
    arrays = {k: z[k] for k in z.files}
  buf = io.BytesIO()
  np.savez(buf, **{k: np.array([v, "x"], dtype=object)
                   for k, v in arrays.items()})
  with open(path, "wb") as f:
    f.write(buf.getvalue())


def _wrong_shapes(path):
  with np.load(path) as z:
    arrays = {k: z[k] for k in z.files}
  arrays["fc1"] = arrays["fc1"][:, :10]
  np.savez(path.replace(".npz", ""), **arrays)  # np.savez adds .npz


CASES = {
    # Damaged files -> the levels that must be recomputed. Each case leaves
    # a level alone, to check nothing there is touched.
    "one_level": (
        {"level_01/metrics.json": _truncate,
         "level_01/reinit/metrics.json": _empty,
         "level_01/next_mask.npz": _object_arrays,
         "level_01/mask.npz": _wrong_shapes}, ("level_01",)),
    "rewind_and_another_level": (
        {"rewind.npz": _object_arrays,
         "level_02/mask.npz": _truncate,
         "level_02/random_mask/metrics.json": _truncate},
        ("level_00", "level_02")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damage_is_kept_aside_and_recomputed(original, tmp_path, cli, case):
  damage, levels = CASES[case]
  exp = tmp_path / "runs" / os.path.basename(original)
  shutil.copytree(original, exp)
  for rel, how in damage.items():
    how(str(exp / rel))
  before = _tree(exp)

  proc = cli(*FIND)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  for rel in damage:
    assert f"{rel.split('/')[-1]} is damaged" in proc.stdout, proc.stdout
    # The damaged file is kept beside its recomputed replacement.
    with open(exp / (rel + ".damaged"), "rb") as f, \
        open(str(exp / rel) + "", "rb") as g:
      assert f.read() != g.read()
  after = _tree(exp)
  # Nothing outside the damaged level changed, not even its timestamp.
  for rel, (digest, mtime) in before.items():
    if rel.split(os.sep)[0] in levels or rel in damage or rel.startswith(
        ("summary.", "hparams.json", "accuracy_vs_density",
         # TensorBoard's files: the level summary is rewritten after every
         # level; a recomputed run's curves go into a new event file.
         "tensorboard")):
      continue
    assert after[rel] == (digest, mtime), rel
  # Recomputed to the same numbers: every run's metrics, every mask.
  for rel in sorted(after):
    if rel.endswith("metrics.json") and not rel.endswith(".damaged"):
      with open(exp / rel) as f, open(os.path.join(original, rel)) as g:
        assert _numbers(json.load(f)) == _numbers(json.load(g)), rel
    if rel.endswith(".npz") and not rel.endswith(".damaged"):
      with np.load(exp / rel) as x, np.load(os.path.join(original, rel)) as y:
        assert sorted(x.files) == sorted(y.files), rel
        for k in x.files:
          np.testing.assert_array_equal(x[k], y[k], err_msg=f"{rel} {k}")
  if case != "rewind_and_another_level":
    return
  # A second rerun finds everything done.
  again = cli(*FIND)
  assert again.returncode == 0
  assert found_all_done(again.stdout.strip().splitlines()), again.stdout


def test_reading_a_damaged_file_names_it(original, tmp_path):
  """Every other reader gets DamagedFile, a UserError: exit 2 and one line
  naming the file at the CLI."""
  from lottery_tf.foundations import store  # pylint: disable=g-import-not-at-top
  from lottery_tf.errors import DamagedFile  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "mask.npz")
  shutil.copy(os.path.join(original, "level_01", "mask.npz"), path)
  _object_arrays(path)
  with pytest.raises(DamagedFile, match="mask.npz is damaged.*object arrays"):
    store.read_npz(path)
  shutil.copy(os.path.join(original, "rewind.npz"), path)
  _truncate(path)
  with pytest.raises(DamagedFile, match="mask.npz is damaged"):
    store.read_npz(path)
  _empty(path)
  with pytest.raises(DamagedFile, match="mask.npz is damaged.*empty"):
    store.read_npz(path)
  json_path = str(tmp_path / "m.json")
  with open(json_path, "w") as f:
    f.write('{"metrics": {"test_acc')
  with pytest.raises(DamagedFile, match="m.json is damaged.*not whole JSON"):
    store.read_json(json_path)
