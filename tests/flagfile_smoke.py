"""Runs flagfiles for a few steps on TFDS mock data: `python flagfile_smoke.py OUT CFG...`.

Each flagfile's `# Run: lottery_tf COMMAND --flagfile=...` header names its
command. One process for all of them: TensorFlow starts once. Prints one JSON
line: {flagfile: results path}.
"""
import json
import os
import re
import sys
import time

os.environ["TF_USE_LEGACY_KERAS"] = "1"

from absl import flags  # noqa: E402

import lottery_tf  # noqa: E402,F401
from lottery_tf.cli import commands  # noqa: E402
from lottery_tf.cli import flags as cli_flags  # noqa: E402
from lottery_tf.training.hparams import TrainingHparams  # noqa: E402
from lottery_tf.training import distribute  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

FLAGS = flags.FLAGS
# Small enough to run in seconds, whatever the preset asks for.
OVERRIDES = ["--training_steps=2it", "--levels=1", "--batch_size=4",
             "--rewind=1it", "--quiet",
             # One process runs many presets and a process has one strategy
             # (TensorFlow cannot reconfigure its devices): the 8-GPU presets'
             # --strategy=mirrored is validated (check_training_flags), then
             # replaced. Their --mixed_precision, --steps_per_execution,
             # --checkpoint_every and --warmup_steps are kept as they are.
             "--strategy=default",
             # Data diet / instability presets: 1 pre-training step (the
             # rewind step above), 2 scoring networks x 2 steps, 3 points on
             # the linear path.
             "--pretrain_steps=1it", "--score_steps=2it", "--ensemble_size=2",
             "--interpolation_points=3"]


# Per command, after OVERRIDES: a find smoke-runs the dense level only (big
# presets save VGG19/ResNet-50 tickets otherwise); a grid keeps its
# optimizers but only its first source and first target.
COMMAND_OVERRIDES = {
    "find": ["--levels=0", "--controls="],
    "grid": ["--levels=1", "--transfer_levels=", "--replicates=1"],
}


def _first_of(path, flag):
  with open(path) as f:
    for line in f:
      if line.startswith(f"--{flag}="):
        value = line.strip().split("=", 1)[1]
        depth, out = 0, ""
        for ch in value:
          if ch == "," and depth == 0:
            break
          depth += (ch == "[") - (ch == "]")
          out += ch
        return [f"--{flag}={out}"]
  return []


def _last_of(path, flag):
  with open(path) as f:
    for line in f:
      if line.startswith(f"--{flag}="):
        return [f"--{flag}=" + line.strip().split("=", 1)[1].split(",")[-1]]
  return []


#: Presets asking for bigger images (224x224 ImageNet/Places365 sources) run
#: at this size; --preprocessing=imagenet still crops and resizes to it.
SMOKE_IMAGE_SIZE = 32


def _image_size_override(path):
  with open(path) as f:
    for line in f:
      if line.startswith("--image_size="):
        if int(line.strip().split("=", 1)[1]) > SMOKE_IMAGE_SIZE:
          return [f"--image_size={SMOKE_IMAGE_SIZE}"]
  return []


def command_overrides(path, command):
  extra = list(COMMAND_OVERRIDES.get(command, [])) + _image_size_override(path)
  if command == "grid":
    extra += _first_of(path, "sources") + _first_of(path, "targets")
    # One cell: the first source optimizer, the last target optimizer
    # (sgd -> adam in the optimizer-transfer grid).
    extra += _first_of(path, "source_optimizers")
    extra += _last_of(path, "target_optimizers")
  return extra


def command_of(path):
  with open(path) as f:
    for line in f:
      m = re.match(r"#\s*Run:\s*lottery_tf\s+(\w+)\s", line)
      if m:
        return m.group(1)
  raise SystemExit(f"{path}: no '# Run: lottery_tf COMMAND' header line")


def check_training_flags(path):
  """The preset's own strategy/precision/checkpoint values are valid.

  Checked before OVERRIDES replace them (``--strategy=default`` above).
  """
  FLAGS.unparse_flags()
  FLAGS(["lottery_tf", f"--flagfile={path}"])
  distribute.validate(cli_flags.from_flags(TrainingHparams))


def _hparam_classes():
  from lottery_tf.analysis.hparams import LMCHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.diet.hparams import DietHparams, ScoreHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.data.hparams import DatasetHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.models.hparams import ModelHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.hparams import LotteryHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.pruning.hparams import PruningHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.transfer.hparams import GridHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.transfer.hparams import TransferHparams  # pylint: disable=g-import-not-at-top
  return (DatasetHparams, ModelHparams, TrainingHparams, PruningHparams,
          LotteryHparams, TransferHparams, GridHparams, ScoreHparams,
          DietHparams, LMCHparams)


def validate_only(paths):
  """Parses each preset as the CLI does and validates every hparam group
  its flags fill, without training: `flagfile_smoke.py --validate CFG...`."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  checked = {}
  for path in paths:
    command = command_of(path)
    check_training_flags(path)
    # Every flag the preset sets is one its command reads.
    commands.check_flags(command)
    groups = []
    for cls in _hparam_classes():
      names = [f.name for f in dataclasses.fields(cls)]
      if not all(n in FLAGS for n in names):
        continue
      hp = cli_flags.from_flags(cls)
      if cls.__name__ == "GridHparams":
        if command != "grid":
          continue  # Its default (no sources) is not a grid.
        hp.validate(FLAGS.levels)
      elif cls.__name__ == "LotteryHparams" and command == "diet":
        continue  # Each arm fills in its pre-training subset (DietHparams).
      elif hasattr(hp, "validate"):
        hp.validate()
      groups.append(cls.__name__)
    checked[os.path.basename(path)] = groups
  print(json.dumps(checked))


def main(out_dir, paths):
  results = {}
  with tfds.testing.mock_data(num_examples=24):
    for path in paths:
      command = command_of(path)
      check_training_flags(path)
      FLAGS.unparse_flags()
      FLAGS(["lottery_tf", f"--flagfile={path}", *OVERRIDES,
             *command_overrides(path, command), f"--output_dir={out_dir}"])
      began = time.time()
      results[os.path.basename(path)] = commands.COMMANDS[command]()
      print(f"{os.path.basename(path)}: {time.time() - began:.1f} s",
            file=sys.stderr, flush=True)
  print(json.dumps(results))


if __name__ == "__main__":
  if sys.argv[1] == "--validate":
    validate_only(sys.argv[2:])
  else:
    main(sys.argv[1], sys.argv[2:])
