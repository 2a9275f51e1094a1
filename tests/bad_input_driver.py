"""Runs many bad `lottery_tf` command lines in ONE process (TensorFlow starts
once): `python bad_input_driver.py CASES_JSON`, CASES_JSON a list of argv
lists. Prints one JSON line: [[exit status, stderr], ...] in order.

Each case goes through the CLI's own parse-and-run path (main._parse and
main._main), exactly as `lottery_tf ARGS` does.
"""
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

from conftest import run_cli_in_process  # noqa: E402


def run(argv):
  code, _, err = run_cli_in_process(argv)
  return [code, err]


if __name__ == "__main__":
  print(json.dumps([run(a) for a in json.loads(sys.argv[1])]))
