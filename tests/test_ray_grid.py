"""`lottery_tf grid --executor=ray` on a real local Ray cluster: a head and
one more worker node on 127.0.0.1, 1 CPU each, started and stopped here.

A reduced transfer grid (2 source finds, the target's own IMP, 2 cells with
their controls) runs on the cluster with one of its workers killed with
SIGKILL mid-task; Ray retries it, and grid.csv equals the sequential run's
value for value; the tasks ran on both nodes; running the command again
trains nothing and gives the same grid.csv; a cell that fails is reported
and the others go on.
"""
import csv
import json
import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import clean_env

ray = pytest.importorskip("ray")

RAY = os.path.join(os.path.dirname(sys.executable), "ray")
GRID = ["grid", "--sources=digits[0-4]", "--targets=digits[5-9]",
        "--source_optimizers=sgd,adam", "--target_optimizers=sgd",
        "--sgd_lr=0.05", "--adam_lr=1e-3", "--model=lenet_300_100",
        "--batch_size=64", "--training_steps=2ep", "--pruning_fraction=0.5",
        "--levels=1", "--transfer_levels=1", "--seed=4",
        "--output_dir=runs"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env():
  # Ray 2.5x turns token authentication on for `ray start --head`; a cluster
  # on loopback, inside the test, goes without.
  return clean_env(RAY_USAGE_STATS_ENABLED="0", RAY_DEDUP_LOGS="0",
                   RAY_AUTH_MODE="disabled")


@pytest.fixture(scope="module")
def cluster():
  """``ray start --head`` and one ``ray start --address``, 1 CPU each."""
  port = _free_port()
  # Short: Ray's unix sockets live under it (at most 107 bytes a path),
  # and pytest-xdist's temporary paths are long.
  temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
  address = f"127.0.0.1:{port}"
  common = ["--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
  def start(*args):
    # A node joining a head still starting (a busy machine) is refused:
    # it tries again.
    for attempt in range(3):
      proc = subprocess.run([RAY, "start", *args, *common],
                            capture_output=True, text=True, env=_env(),
                            timeout=180)
      if proc.returncode == 0:
        return
      time.sleep(5 * (attempt + 1))
    raise AssertionError(f"ray start {' '.join(args)} failed:\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")

  try:
    start("--head", f"--port={port}", "--node-ip-address=127.0.0.1",
          "--include-dashboard=false", f"--temp-dir={temp}")
    start(f"--address={address}", "--node-ip-address=127.0.0.1")
    yield address
  finally:
    subprocess.run([RAY, "stop", "--force"], capture_output=True, env=_env(),
                   timeout=180)
    shutil.rmtree(temp, ignore_errors=True)


def _grid(cwd, *extra, wait=True):
  cmd = [sys.executable, "-m", "lottery_tf.cli.main", *GRID, *extra]
  proc = subprocess.Popen(cmd, cwd=str(cwd), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=_env())
  if not wait:
    return proc
  out, err = proc.communicate(timeout=900)
  assert proc.returncode == 0, err[-3000:]
  return out


def _table(cwd):
  path = [os.path.join(r, "grid.csv") for r, _, files in
          os.walk(os.path.join(str(cwd), "runs")) if "grid.csv" in files]
  assert len(path) == 1, path
  with open(path[0]) as f:
    return list(csv.DictReader(f)), os.path.dirname(path[0])


def _task_pids():
  """The processes running a grid task (Ray titles them ray::_task)."""
  out = subprocess.run(["pgrep", "-f", "ray::_task"], capture_output=True,
                       text=True).stdout
  return [int(p) for p in out.split()]


def test_grid_on_a_two_node_cluster_equals_the_sequential_grid(
    cluster, tmp_path):
  sequential = tmp_path / "sequential"
  on_ray = tmp_path / "ray"
  sequential.mkdir()
  on_ray.mkdir()
  _grid(sequential)
  want, _ = _table(sequential)
  assert len(want) >= 6  # 2 transfers, random tickets, own ticket, dense

  proc = _grid(on_ray, "--executor=ray", f"--ray_address={cluster}",
               wait=False)
  # Kill one worker mid-task (a find or a cell): Ray retries its task.
  deadline = time.time() + 300
  killed = None
  while time.time() < deadline and proc.poll() is None:
    pids = _task_pids()
    if pids:
      time.sleep(4)  # into its training
      pids = _task_pids()
      if pids:
        killed = pids[0]
        os.kill(killed, signal.SIGKILL)
        break
    time.sleep(0.5)
  out, err = proc.communicate(timeout=900)
  assert killed is not None, "no task was seen running"
  assert proc.returncode == 0, err[-3000:]
  lines = out.strip().splitlines()
  assert any(l.startswith("[2/2] ") for l in lines), out
  got, grid_dir = _table(on_ray)
  assert got == want  # value for value

  with open(os.path.join(grid_dir, "ray_tasks.json")) as f:
    tasks = json.load(f)["tasks"]
  assert sorted(t["kind"] for t in tasks) == ["cell", "cell", "find", "find",
                                              "own"]
  assert len({t["node"] for t in tasks}) == 2, tasks
  assert killed not in {t["pid"] for t in tasks}  # its task was redone

  # Again: everything is found done, nothing trains, same table.
  began = time.time()
  _grid(on_ray, "--executor=ray", f"--ray_address={cluster}")
  again, _ = _table(on_ray)
  assert again == want
  assert time.time() - began < 120

  # A cell that fails (a damaged result of one of its controls) is reported
  # with its error, the other cell goes on, and the exit status is 1.
  damaged = [os.path.join(r, "metrics.json") for r, _, files in
             os.walk(os.path.join(str(on_ray), "runs"))
             if r.endswith("random_ticket") and "metrics.json" in files]
  assert len(damaged) == 2, damaged
  with open(damaged[0], "w") as f:
    f.write('{"metrics": ')
  proc = _grid(on_ray, "--executor=ray", f"--ray_address={cluster}",
               wait=False)
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 1, err[-3000:]
  assert any(" FAILED transfer_" in l and "is damaged" in l
             for l in out.splitlines()), out
  assert any(l.startswith("[2/2] ") for l in out.splitlines()), out
  assert err.strip().splitlines()[-1].startswith(
      "lottery_tf: grid: 1 task(s) failed"), err[-2000:]
  # Moved away, as the message says: the rerun recomputes it, same table.
  os.rename(damaged[0], damaged[0] + ".moved")
  _grid(on_ray, "--executor=ray", f"--ray_address={cluster}")
  assert _table(on_ray)[0] == want


def test_an_unreachable_cluster_is_one_line_and_exit_2(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "lottery_tf.cli.main", *GRID, "--executor=ray",
       f"--ray_address=127.0.0.1:{_free_port()}"],
      cwd=str(tmp_path), capture_output=True, text=True, env=_env(),
      timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith("lottery_tf: error: --ray_address"), (
      proc.stderr[-2000:])
  runs = tmp_path / "runs"
  assert not runs.exists() or not os.listdir(runs)  # no experiment begun
