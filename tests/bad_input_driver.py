"""Runs many bad `lottery_tf` command lines in ONE process (TensorFlow starts
once): `python bad_input_driver.py CASES_JSON`, CASES_JSON a list of argv
lists. Prints one JSON line: [[exit status, stderr], ...] in order.

Each case goes through the CLI's own parse-and-run path (main._parse and
main._main), exactly as `lottery_tf ARGS` does.
"""
import contextlib
import io
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

from absl import flags  # noqa: E402

from lottery_tf.cli import main  # noqa: E402


def run(argv):
  err = io.StringIO()
  code = 0
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(
      io.StringIO()):
    try:
      flags.FLAGS.unparse_flags()
      rest = main._parse(["lottery_tf", *argv])  # pylint: disable=protected-access
      main._main(rest)  # pylint: disable=protected-access
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
    except Exception as e:  # pylint: disable=broad-except
      import traceback  # pylint: disable=g-import-not-at-top
      err.write("Traceback\n" + traceback.format_exc())
      code = 1
  return [code, err.getvalue()]


if __name__ == "__main__":
  print(json.dumps([run(a) for a in json.loads(sys.argv[1])]))
