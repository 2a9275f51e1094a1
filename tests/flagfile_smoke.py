"""Runs flagfiles for a few steps on TFDS mock data: `python flagfile_smoke.py OUT CFG...`.

Each flagfile's `# Run: lottery_tf COMMAND --flagfile=...` header names its
command. One process for all of them: TensorFlow starts once. Prints one JSON
line: {flagfile: results path}.
"""
import json
import os
import re
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

from absl import flags  # noqa: E402

import lottery_tf  # noqa: E402,F401
from lottery_tf.cli import commands  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

FLAGS = flags.FLAGS
# Small enough to run in seconds, whatever the preset asks for.
OVERRIDES = ["--training_steps=2it", "--levels=1", "--batch_size=4",
             "--rewind=1it", "--quiet"]


def command_of(path):
  with open(path) as f:
    for line in f:
      m = re.match(r"#\s*Run:\s*lottery_tf\s+(\w+)\s", line)
      if m:
        return m.group(1)
  raise SystemExit(f"{path}: no '# Run: lottery_tf COMMAND' header line")


def main(out_dir, paths):
  results = {}
  with tfds.testing.mock_data(num_examples=24):
    for path in paths:
      FLAGS.unparse_flags()
      FLAGS(["lottery_tf", f"--flagfile={path}", *OVERRIDES,
             f"--output_dir={out_dir}"])
      results[os.path.basename(path)] = commands.COMMANDS[command_of(path)]()
  print(json.dumps(results))


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2:])
