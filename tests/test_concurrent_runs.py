"""Two processes started together on one experiment: one trains, the other
exits 2 naming the holder, and nothing is trained twice."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import clean_env, found_all_done
from lottery_tf.errors import UserError
from lottery_tf.foundations import fs, workspace

FIND = ["find", "--dataset=digits", "--training_steps=6ep", "--levels=3",
        "--seed=5", "--output_dir=runs"]


def test_second_process_on_the_same_experiment_exits_2(tmp_path):
  procs = [subprocess.Popen([sys.executable, "-m", "lottery_tf.cli.main",
                             *FIND], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=clean_env()) for _ in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  codes = sorted(p.returncode for p in procs)
  assert codes == [0, 2], [(p.returncode, err[-1500:]) for p, (_, err)
                           in zip(procs, outs)]
  loser = outs[[p.returncode for p in procs].index(2)]
  lines = loser[1].strip().splitlines()
  assert len(lines) == 1 and "is in use by pid" in lines[0], loser[1]
  assert "resumes" in lines[0]
  # The lock went with its holder: the same command now finds it all done.
  again = subprocess.run([sys.executable, "-m", "lottery_tf.cli.main", *FIND],
                         cwd=str(tmp_path), capture_output=True, text=True,
                         env=clean_env(), timeout=600)
  assert again.returncode == 0, again.stderr[-2000:]
  assert found_all_done(again.stdout.strip().splitlines()), again.stdout


def test_a_dead_holders_lock_is_taken_over(tmp_path):
  """A holder killed with SIGKILL leaves no lock behind (flock)."""
  code = ("import os, sys; os.environ['TF_USE_LEGACY_KERAS'] = '1'\n"
          "from lottery_tf.foundations import workspace\n"
          "with workspace.experiment_lock(sys.argv[1]):\n"
          "  print('held', flush=True); os.kill(os.getpid(), 9)\n")
  exp = str(tmp_path / "exp")
  proc = subprocess.run([sys.executable, "-c", code, exp],
                        capture_output=True, text=True, env=clean_env(),
                        timeout=300)
  assert "held" in proc.stdout and proc.returncode == -9
  with workspace.experiment_lock(exp):
    pass


# -- claims: the directory's holder across machines ------------------------


def _fake_claim(exp, host, pid, age):
  path = workspace.claim_path(exp)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump({"holder": f"pid {pid} on {host}", "host": host, "pid": pid,
               "token": "theirs", "heartbeat": time.time() - age}, f)
  return path


def test_a_live_claim_from_another_machine_keeps_the_directory(tmp_path):
  exp = str(tmp_path / "exp")
  path = _fake_claim(exp, "node-7", 4242, age=5)
  with pytest.raises(UserError, match=r"in use by pid 4242 on node-7"):
    with workspace.experiment_lock(exp):
      raise AssertionError("ran while another machine holds the claim")
  assert "theirs" in open(path).read()  # not taken, not removed


def test_a_claim_whose_heartbeat_stopped_is_taken_over(tmp_path, monkeypatch):
  exp = str(tmp_path / "exp")
  path = _fake_claim(exp, "node-7", 4242,
                     age=workspace.LEASE_SECONDS + 1)
  with workspace.experiment_lock(exp):
    claim = json.load(open(path))
    assert claim["pid"] == os.getpid() and claim["token"] != "theirs"
  assert not os.path.exists(path)  # released
  # A retried Ray task waits for a dead worker's lease to run out.
  monkeypatch.setattr(workspace, "LEASE_SECONDS", 1.5)
  monkeypatch.setattr(workspace, "claim_wait_seconds", 10.0)
  _fake_claim(exp, "node-7", 4242, age=0)
  with workspace.experiment_lock(exp):
    assert json.load(open(path))["pid"] == os.getpid()


def test_a_held_claim_keeps_its_heartbeat(tmp_path, monkeypatch):
  monkeypatch.setattr(workspace, "HEARTBEAT_SECONDS", 0.05)
  exp = str(tmp_path / "exp")
  with workspace.experiment_lock(exp):
    first = json.load(open(workspace.claim_path(exp)))["heartbeat"]
    time.sleep(0.5)
    later = json.load(open(workspace.claim_path(exp)))["heartbeat"]
    assert later > first


def test_two_takers_of_one_claim_cannot_both_win(tmp_path):
  """Machines racing for a free or stale claim: exactly one gets it."""
  for stale in (False, True):
    exp = str(tmp_path / f"exp{stale}")
    path = workspace.claim_path(exp)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if stale:
      _fake_claim(exp, "node-7", 4242, age=workspace.LEASE_SECONDS + 1)
    before = workspace._read_claim(path)  # pylint: disable=protected-access
    start, wins = threading.Barrier(8), []
    def take(i):
      start.wait()
      if workspace._try_take(path, before, f"t{i}"):  # pylint: disable=protected-access
        wins.append(i)
    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    assert len(wins) == 1, (stale, wins)


def test_a_claim_on_an_object_store_path(tmp_path):
  """ram:// (as gs://): no flock there, the claim alone keeps it."""
  exp = "ram://claims_test/out/exp"
  path = workspace.claim_path(exp)
  assert path == "ram://claims_test/out/.claims/exp.json"
  with workspace.experiment_lock(exp):
    assert fs.exists(path)
  assert not fs.exists(path)
  with fs.open(path, "w") as f:
    f.write('{"holder": "pid 1 on node-7", "host": "node-7", "pid": 1, '
            '"token": "theirs", "heartbeat": %f}' % time.time())
  with pytest.raises(UserError, match="in use by pid 1 on node-7"):
    with workspace.experiment_lock(exp):
      pass
