"""Two processes started together on one experiment: one trains, the other
exits 2 naming the holder, and nothing is trained twice."""
import subprocess
import sys

from conftest import clean_env, found_all_done

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
  from lottery_tf.foundations import workspace  # pylint: disable=g-import-not-at-top
  with workspace.experiment_lock(exp):
    pass
