"""tf.distribute: mirrored replicas, two workers, mid-level checkpoints, mixed precision.

The CLI runs in subprocesses: logical CPU devices and the multi-worker
collectives must be configured before TensorFlow starts, once per process.
"""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import clean_env

# Two IMP levels of LeNet on the embedded MNIST, a few seconds each.
FIND = ["find", "--dataset=mnist_5k", "--model=lenet_300_100", "--lr=0.1",
        "--batch_size=64", "--training_steps=2ep", "--rewind=10it",
        "--levels=1", "--controls=", "--seed=0"]
# (Controls resume like tickets: tests/test_lottery.py cuts each kind of run.)
RUNS = ("level_00/metrics.json", "level_01/metrics.json")


def _run(args, cwd, env=None, timeout=600):
  return subprocess.run([sys.executable, "-m", "lottery_tf.cli.main", *args],
                        cwd=str(cwd), capture_output=True, text=True,
                        timeout=timeout, env=env or clean_env())


def _exp(out_dir):
  (exp,) = glob.glob(os.path.join(str(out_dir), "find_*"))
  return exp


def _metrics(exp, rel):
  with open(os.path.join(exp, rel), encoding="utf-8") as f:
    return json.load(f)


def _masks(path):
  with np.load(path, allow_pickle=False) as z:
    return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The single-device run every distributed run is compared with."""
  cwd = tmp_path_factory.mktemp("reference")
  proc = _run(FIND + ["--output_dir=runs"], cwd)
  assert proc.returncode == 0, proc.stderr
  return _exp(cwd / "runs")


def test_mirrored_on_two_cpu_devices_matches_one_device(reference, tmp_path):
  proc = _run(FIND + ["--output_dir=runs", "--strategy=mirrored",
                      "--cpu_devices=2"], tmp_path)
  assert proc.returncode == 0, proc.stderr
  exp = _exp(tmp_path / "runs")
  # The strategy does not change results, so not the experiment's name.
  assert os.path.basename(exp) == os.path.basename(reference)
  for rel in RUNS:
    one, two = _metrics(reference, rel), _metrics(exp, rel)
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert two["hparams"]["training"]["strategy"] == "mirrored"
    # Same sums, split over two replicas: equal up to float rounding.
    assert abs(one["metrics"]["test_accuracy"]
               - two["metrics"]["test_accuracy"]) <= 0.01, rel
  for rel in ("level_01/mask.npz", "level_01/next_mask.npz"):
    one = _masks(os.path.join(reference, rel))
    two = _masks(os.path.join(exp, rel))
    assert one.keys() == two.keys()
    for name in one:
      # Float rounding differs (two partial sums per batch), and training
      # amplifies it, so a few borderline weights can fall on the other side.
      assert np.mean(one[name] != two[name]) <= 0.02, (rel, name)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_workers_write_identical_masks_and_only_the_chief_writes(
    tmp_path):
  ports = [_free_port(), _free_port()]
  cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
  procs = []
  for index in range(2):
    config = json.dumps({"cluster": cluster,
                         "task": {"type": "worker", "index": index}})
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "lottery_tf.cli.main", *FIND,
         "--output_dir=runs", "--strategy=multi_worker"],
        cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=clean_env(TF_CONFIG=config)))
  outs = []
  try:
    for p in procs:
      outs.append(p.communicate(timeout=420))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err
  exp = _exp(tmp_path / "runs")
  assert "results: " in outs[0][0] and "level 1/" in outs[0][0]
  assert "worker 1: level 01 done" in outs[1][0]
  # The chief wrote the experiment: every run's metrics, tickets, summary.
  for rel in RUNS + ("summary.json", "level_01/ticket/saved_model.pb",
                     "hparams.json"):
    assert os.path.exists(os.path.join(exp, rel)), rel
  assert _metrics(exp, "level_01/metrics.json")["replicas"] == 2
  # Worker 1 wrote only its own masks and rewind weights, to its scratch.
  scratch = os.path.join(str(tmp_path / "runs"), ".worker_1",
                         os.path.basename(exp))
  written = sorted(os.path.relpath(os.path.join(d, f), scratch)
                   for d, _, files in os.walk(scratch) for f in files)
  assert written == ["level_00/mask.npz", "level_00/next_mask.npz",
                     "level_01/mask.npz", "level_01/next_mask.npz",
                     "rewind.npz"], written
  for rel in written:
    chief = _masks(os.path.join(exp, rel))
    worker = _masks(os.path.join(scratch, rel))
    assert chief.keys() == worker.keys()
    for name in chief:
      np.testing.assert_array_equal(chief[name], worker[name], err_msg=rel)
  # Pruning happened: level 1's masks are 80% dense.
  masks = _masks(os.path.join(exp, "level_01", "mask.npz"))
  total = sum(m.size for m in masks.values())
  assert abs(sum(m.sum() for m in masks.values()) / total - 0.8) < 0.01


def test_killed_mid_level_resumes_from_checkpoint_with_same_numbers(
    reference, tmp_path):
  args = FIND + ["--output_dir=runs", "--checkpoint_every=20",
                 "--steps_per_execution=4"]
  proc = subprocess.Popen(
      [sys.executable, "-m", "lottery_tf.cli.main", *args], cwd=str(tmp_path),
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())
  pattern = str(tmp_path / "runs" / "find_*" / "level_01" / "checkpoint" /
                "checkpoint")
  deadline = time.time() + 300
  try:
    while not glob.glob(pattern):
      assert proc.poll() is None, "finished before a level-1 checkpoint"
      assert time.time() < deadline
      time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  finally:
    if proc.poll() is None:
      proc.kill()
  exp = _exp(tmp_path / "runs")
  assert not os.path.exists(os.path.join(exp, "level_01", "metrics.json"))
  resumed = _run(args, tmp_path)
  assert resumed.returncode == 0, resumed.stderr
  assert "resuming from the checkpoint at step" in resumed.stdout
  row = _metrics(exp, "level_01/metrics.json")
  assert row["resumed_from_step"] > row["start_step"]
  for rel in RUNS:
    assert _metrics(exp, rel)["metrics"] == _metrics(reference, rel)["metrics"]
  for rel in ("level_01/mask.npz", "level_01/next_mask.npz"):
    one = _masks(os.path.join(reference, rel))
    two = _masks(os.path.join(exp, rel))
    for name in one:
      np.testing.assert_array_equal(one[name], two[name])
  # Done runs leave no checkpoints behind.
  assert not glob.glob(os.path.join(exp, "**", "checkpoint"), recursive=True)


def test_every_replica_holds_the_same_masks_and_zeros(tmp_path):
  script = os.path.join(os.path.dirname(__file__), "mirrored_replicas.py")
  proc = subprocess.run([sys.executable, script, str(tmp_path / "exp")],
                        capture_output=True, text=True, timeout=300,
                        env=clean_env())
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip().endswith("OK")
