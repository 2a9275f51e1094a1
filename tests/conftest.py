"""Test set-up: Keras 2 before TensorFlow, quiet logs, a scratch TFDS dir."""
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clean_env(**extra):
  """The environment for a subprocess, without our Keras routing variable."""
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env.update(extra)
  return env


def found_all_done(lines):
  """Whether a rerun's stdout ``lines`` (header, level lines, results) says
  that every level was already done and prints each as ``(done)``."""
  levels = [l for l in lines if l.startswith(("level ", "(done) "))]
  header = lines[:lines.index(levels[0])] if levels else lines
  return (bool(levels) and any(l.strip().endswith("all done") for l in header)
          and all(l.startswith("(done) ") for l in levels)
          and lines[-1].startswith("results: "))


def run_cli_in_process(argv):
  """``lottery_tf ARGV`` through the CLI's own parse-and-run path
  (main._parse, main._main) in this process: (exit status, stdout, stderr).
  An exception escaping the CLI is exit status 1 with its traceback."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  import traceback  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lottery_tf.cli import main  # pylint: disable=g-import-not-at-top
  out, err, code = io.StringIO(), io.StringIO(), 0
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      flags.FLAGS.unparse_flags()
      rest = main._parse(["lottery_tf", *argv])  # pylint: disable=protected-access
      main._main(rest)  # pylint: disable=protected-access
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    except Exception:  # pylint: disable=broad-except
      err.write("Traceback\n" + traceback.format_exc())
      code = 1
  return code, out.getvalue(), err.getvalue()


def run_in_one_process(cwd, cases, timeout=900):
  """[(exit status, stderr)] of ``lottery_tf ARGV`` for each ARGV in
  ``cases``, all in one fresh process (bad_input_driver.py: TensorFlow
  starts once) run in ``cwd``."""
  import json  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "tests", "bad_input_driver.py"),
       json.dumps(cases)],
      cwd=str(cwd), capture_output=True, text=True, env=clean_env(),
      timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def cli(tmp_path):
  """Runs ``lottery_tf ARGS`` in a subprocess; returns CompletedProcess."""
  import subprocess  # pylint: disable=g-import-not-at-top

  def run(*args, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, "-m", "lottery_tf.cli.main", *args],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=timeout,
        env=env or clean_env())
  return run
