"""Runs find, transfer, export and score in ONE process (ram:// is process
memory) through the CLI's own parse-and-run path, then copies the output
tree to a local directory so the test can compare it with a local run.

usage: python cloud_paths_driver.py OUTPUT_ROOT COPY_TO
"""
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

from absl import flags  # noqa: E402

from lottery_tf.foundations import fs  # noqa: E402
from lottery_tf.cli import main  # noqa: E402
from conftest import found_all_done  # noqa: E402  (tests/ is on the path)

FLAGS = flags.FLAGS


def command(*argv):
  """One `lottery_tf ...` invocation; returns its stdout lines."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  FLAGS.unparse_flags()
  rest = main._parse(["lottery_tf", *argv])  # pylint: disable=protected-access
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    main._main(rest)  # pylint: disable=protected-access
  lines = out.getvalue().strip().splitlines()
  print("\n".join(lines), flush=True)
  return lines


def result(lines):
  assert lines[-1].startswith("results: "), lines
  return lines[-1][len("results: "):]


def run(root: str):
  common = [f"--output_dir={root}/runs"]
  find = ["find", "--dataset=digits", "--model=lenet_300_100",
          "--training_steps=3ep", "--batch_size=64", "--lr=0.05",
          "--momentum=0.9", "--levels=2", "--controls=reinit",
          "--rewind=2it", "--seed=3", *common]
  summary = result(command(*find))
  exp = summary.rsplit("/", 1)[0]
  ticket = f"{exp}/level_02/ticket"
  # A rerun resumes: every level is found done.
  again = command(*find)
  assert found_all_done(again), again
  result(command("transfer", f"--ticket={ticket}", "--dataset=digits",
                 "--classes=5-9", "--training_steps=2ep", "--batch_size=64",
                 "--lr=0.05", "--transfer_controls=random_ticket", *common))
  result(command("export", f"--ticket={ticket}",
                 f"--export_dir={root}/export"))
  result(command("score", "--dataset=digits", "--model=lenet_300_100",
                 "--training_steps=3ep", "--batch_size=64", "--lr=0.05",
                 "--ensemble_size=2", "--score_steps=5it", *common))


if __name__ == "__main__":
  out_root, copy_to = sys.argv[1], sys.argv[2]
  run(out_root)
  if fs.is_url(out_root):
    fs.copytree(out_root, copy_to)
