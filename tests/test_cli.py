"""The CLI contract: commands, `results: PATH`, exit 2 with one line on bad input."""
import json
import os

import pytest

from conftest import run_in_one_process

# Through the installed entry point, one process each (`python -m
# lottery_tf.cli.main`, as `lottery_tf` runs): the words its single stderr
# line must contain.
ENTRY_POINT = [
    ([], "no command"),
    (["frobnicate"], "unknown command"),
    (["train", "extra"], "unexpected argument"),
    (["train", "--lr=abc"], "--lr"),
    # A strategy is set up once per process: these get one each.
    (["find", "--strategy=multi_worker"], "TF_CONFIG"),
    (["find", "--strategy=tpu"], "--tpu"),
    (["find", "--strategy=mirrored", "--cpu_devices=2", "--batch_size=65"],
     "--batch_size"),
]

# The same contract for many more, in one process (bad_input_driver.py runs
# each through the CLI's own parse-and-run path: TensorFlow starts once).
BAD_INPUTS = [
    (["train", "--dataset=nope"], "--dataset"),
    (["train", "--model=nope"], "--model"),
    (["train", "--lr=-1"], "--lr"),
    (["train", "--batch_size=0"], "--batch_size"),
    (["train", "--batch_size=-5"], "--batch_size"),
    (["train", "--training_steps=10"], "--training_steps"),
    (["train", "--training_steps=3epochs"], "--training_steps"),
    (["train", "--momentum=2"], "--momentum"),
    (["train", "--optimizer=rmsprop"], "--optimizer"),
    (["train", "--image_size=-3"], "--image_size"),
    (["train", "--channels=2"], "--channels"),
    (["train", "--classes=0-0"], "--classes"),
    (["train", "--validation_fraction=1.5"], "--validation_fraction"),
    (["train", "--lrr=0.1"], "lrr"),
    (["train", "--flagfile=missing.cfg"], "missing.cfg"),
    (["train", "--output_dir=afile"], "--output_dir"),
    (["train", "--output_dir=afile/sub"], "--output_dir"),
    (["find", "--strategy=horovod"], "--strategy"),
    (["find", "--mixed_precision=fp8"], "--mixed_precision"),
    (["find", "--checkpoint_every=-1"], "--checkpoint_every"),
    (["find", "--cpu_devices=-2"], "--cpu_devices"),
    (["train", "--preprocessing=inception"], "--preprocessing"),
    # A layer's own rate is refused when that layer is not pruned, never
    # moved to another layer.
    (["find", "--dataset=digits", "--layers_to_ignore=logits",
      "--output_layer_fraction=0.1"],
     ("--output_layer_fraction", "--layers_to_ignore")),
    (["find", "--dataset=digits", "--model=conv2", "--prune_only=conv",
      "--output_layer_fraction=0.1"],
     ("--output_layer_fraction", "--prune_only")),
    (["find", "--dataset=digits", "--conv_layer_fraction=0.1"],
     ("--conv_layer_fraction", "lenet_300_100")),
    # Nothing left to prune: not tickets at 100% density.
    (["find", "--dataset=digits", "--prune_only=conv"],
     ("--prune_only=conv", "nothing left to prune")),
]


@pytest.mark.parametrize("args,words", ENTRY_POINT,
                         ids=[" ".join(a) or "none" for a, _ in ENTRY_POINT])
def test_bad_input_exits_2_with_one_line(cli, tmp_path, args, words):
  (tmp_path / "afile").write_text("not a directory")
  proc = cli(*args, "--quiet")
  assert proc.returncode == 2, (proc.stdout, proc.stderr)
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  for word in (words,) if isinstance(words, str) else words:
    assert word in lines[0], lines[0]
  assert "Traceback" not in proc.stderr
  # Nothing that looks like a result was written.
  assert not (tmp_path / "runs").exists() or not any(
      (tmp_path / "runs").rglob("metrics.json"))


def _wrong(cases, results):
  """The cases whose result is not exit 2 with one line holding the words."""
  wrong = []
  for (args, words), (code, err) in zip(cases, results):
    lines = err.strip().splitlines()
    words = (words,) if isinstance(words, str) else words
    if (code != 2 or len(lines) != 1 or "Traceback" in err
        or not all(w in lines[0] for w in words)):
      wrong.append((args, code, err.strip()[-500:]))
  return wrong


def test_many_bad_inputs_exit_2_with_one_line(tmp_path):
  (tmp_path / "afile").write_text("not a directory")
  results = run_in_one_process(tmp_path, [[*a, "--quiet"] for a, _ in BAD_INPUTS])
  assert len(results) == len(BAD_INPUTS)
  assert not _wrong(BAD_INPUTS, results)
  # Nothing that looks like a result was written.
  assert not (tmp_path / "runs").exists() or not any(
      (tmp_path / "runs").rglob("metrics.json"))


def test_helpfull_lists_every_flag_with_help(cli):
  proc = cli("--helpfull")
  assert proc.returncode == 0
  for flag in ("--dataset:", "--model:", "--training_steps:", "--output_dir:",
               "--seed:", "--classes:", "--[no]augment:", "--[no]quiet:"):
    assert flag in proc.stdout


def test_list_shows_datasets_and_models_with_counts(cli):
  proc = cli("list")
  assert proc.returncode == 0, proc.stderr
  assert "mnist_5k" in proc.stdout and "cifar10" in proc.stdout
  assert "lenet_300_100" in proc.stdout and "resnet50" in proc.stdout
  assert "266,610" in proc.stdout and "25,557,032" in proc.stdout
  # The branches --controls can name, from their registry.
  branches = proc.stdout.split("branches (--controls")[1].splitlines()[1:]
  assert [line.split()[0] for line in branches] == [
      "reinit", "random_mask", "lmc"]


def test_train_on_digits_reaches_90_percent_and_resumes(cli, tmp_path):
  args = ["train", "--dataset=digits", "--model=lenet_300_100",
          "--training_steps=30ep", "--batch_size=32", "--lr=0.05",
          "--momentum=0.9", "--quiet", "--output_dir=out"]
  proc = cli(*args)
  assert proc.returncode == 0, proc.stderr
  last = proc.stdout.strip().splitlines()[-1]
  assert last.startswith("results: ")
  path = os.path.join(tmp_path, last[len("results: "):])
  assert os.path.dirname(path).startswith(
      os.path.join(tmp_path, "out", "train_lenet_300_100_digits-"))
  result = json.load(open(path))
  assert result["metrics"]["test_accuracy"] >= 0.90
  assert result["seed"] == 0
  assert result["hparams"]["training"]["lr"] == 0.05
  assert "tensorflow" in result["versions"]
  # The same command again finds the finished run and keeps it.
  mtime = os.path.getmtime(path)
  again = cli(*args)
  assert again.returncode == 0
  assert again.stdout.strip().splitlines()[-1] == last
  assert os.path.getmtime(path) == mtime
  # A different hparam is a different experiment directory.
  other = cli(*args[:-1], "--lr=0.04", "--training_steps=1ep", "--output_dir=out")
  assert other.returncode == 0, other.stderr
  assert other.stdout.strip().splitlines()[-1] != last


# Checked before any work starts, many in one process (bad_input_driver.py):
# (argv, words the one stderr line must hold).
BAD_VALUES = [
    (["find", "--seed=-1"], "--seed"),
    (["find", f"--seed={2**32}"], "--seed"),
    (["find", "--batch_size=100000000000000000000"], "--batch_size"),
    (["find", "--training_steps=99999999999999999999it"], "--training_steps"),
    (["find", "--warmup_steps=99999999999999999999it"], "--warmup_steps"),
    (["find", "--weight_decay=nan"], "--weight_decay"),
    (["find", "--lr=inf"], "--lr"),
    (["find", "--experiment_name=" + "x" * 300], "--experiment_name"),
    (["find", "--dataset=digits", "--data_dir=afile"], ("--data_dir",
                                                        "is a file")),
    (["find", "--flagfile=latin1.cfg"], ("--flagfile", "not UTF-8")),
    (["find", "--flagfile=loop.cfg"], ("--flagfile", "includes itself")),
]


def test_bad_values_exit_2_with_one_line_before_any_work(tmp_path):
  (tmp_path / "afile").write_text("not a directory")
  (tmp_path / "latin1.cfg").write_bytes("--lr=0.1 # caf\xe9\n".encode(
      "latin-1"))
  (tmp_path / "loop.cfg").write_text("--lr=0.1\n--flagfile=loop.cfg\n")
  results = run_in_one_process(tmp_path, [[*args, "--quiet", "--output_dir=runs"]
                                   for args, _ in BAD_VALUES], timeout=600)
  assert not _wrong(BAD_VALUES, results)
  # Nothing written: at most the (empty) --output_dir itself.
  assert not (tmp_path / "runs").exists() or not any(
      (tmp_path / "runs").iterdir())


# Every flag with a numeric or enumerated value, generated from the hparam
# fields: a flag added later is covered without editing this file.
ENUMERATED = ("dataset", "model", "resize_method", "preprocessing",
              "optimizer", "weight_decay_on", "lr_schedule",
              "mixed_precision", "strategy", "lmc_from", "score",
              "pruning_strategy", "prune_only", "transfer_weights", "head",
              "head_mask", "controls", "transfer_controls",
              "source_optimizers", "target_optimizers")


def _generated_bad_values():
  import dataclasses  # pylint: disable=g-import-not-at-top
  from lottery_tf.analysis.hparams import LMCHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.diet.hparams import DietHparams, ScoreHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.data.hparams import DatasetHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.models.hparams import ModelHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.training.hparams import TrainingHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.hparams import LotteryHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.pruning.hparams import PruningHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.transfer.hparams import GridHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.transfer.hparams import TransferHparams  # pylint: disable=g-import-not-at-top
  command = {DatasetHparams: ["find"], ModelHparams: ["find"],
             TrainingHparams: ["find"], PruningHparams: ["find"],
             LotteryHparams: ["find"], ScoreHparams: ["score"],
             DietHparams: ["diet"], LMCHparams: ["lmc"],
             # A grid with its datasets, so the flag is what is wrong.
             TransferHparams: ["grid", "--sources=digits", "--targets=digits"],
             GridHparams: ["grid", "--sources=digits", "--targets=digits"]}
  cases, enumerated = [], set()
  for cls, argv in command.items():
    for f in dataclasses.fields(cls):
      if f.type in (float, "float"):
        cases.append([*argv, f"--{f.name}=nan"])
      elif f.type in (int, "int"):
        cases.append([*argv, f"--{f.name}=-99999999999"])
      elif f.name in ENUMERATED:
        enumerated.add(f.name)
        cases.append([*argv, f"--{f.name}=no_such_choice"])
  assert enumerated == set(ENUMERATED), set(ENUMERATED) - enumerated
  return cases


def test_every_numeric_and_enumerated_flag_refuses_a_bad_value(tmp_path):
  cases = _generated_bad_values()
  assert len(cases) > 40
  results = run_in_one_process(tmp_path, [[*c, "--quiet", "--output_dir=runs"]
                                   for c in cases])
  # Each line names the flag given the bad value.
  expected = [(argv, [a for a in argv if a.startswith("--") and (
      "nan" in a or "-99999999999" in a or "no_such_choice" in a)][0]
               .split("=")[0]) for argv in cases]
  assert not _wrong(expected, results)


# -- each command its own flags ------------------------------------------------


NOT_ITS_FLAG = [
    (["export", "--lr=5", "--sources=foo"], "--lr"),
    (["train", "--pruning_fraction=0.5"], "--pruning_fraction"),
    (["grid", "--experiment_name=x", "--sources=digits", "--targets=digits"],
     "--experiment_name"),
    (["list", "--lr=1"], "--lr"),
]


def test_a_flag_the_command_does_not_use_is_refused(tmp_path):
  results = run_in_one_process(tmp_path, [argv for argv, _ in NOT_ITS_FLAG])
  for (argv, flag), (code, err) in zip(NOT_ITS_FLAG, results):
    assert code == 2, (argv, err)
    assert err.strip() == (
        f"lottery_tf: error: {flag}: not a flag of `{argv[0]}` (`lottery_tf "
        f"{argv[0]} --help` lists its flags)")
  assert not (tmp_path / "runs").exists()


def test_command_help_lists_its_own_flags_by_group(cli):
  proc = cli("find", "--help")
  assert proc.returncode == 0, proc.stderr
  out = proc.stdout
  assert out.startswith("usage: lottery_tf find ")
  groups = [line[:-1] for line in out.splitlines()
            if line.endswith(":") and not line.startswith(" ")]
  assert groups == ["dataset", "model", "training", "pruning", "lottery",
                    "output"]
  pruning = out.split("\npruning:\n")[1].split("\nlottery:\n")[0]
  assert "  --pruning_fraction (default: '0.2')" in pruning
  assert "--sources" not in out and "--export_dir" not in out
  export = cli("export", "-h").stdout
  assert "--export_dir" in export and "--lr" not in export


def test_every_flag_belongs_to_a_command_and_is_defined_once():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lottery_tf.cli import commands, flags as cli_flags  # pylint: disable=g-import-not-at-top
  used = set()
  for command in commands.COMMANDS:
    names = set(commands.flags_of(command))
    assert names <= set(cli_flags.GROUP_OF), (command, names - set(
        cli_flags.GROUP_OF))
    used |= names
  assert set(cli_flags.GROUP_OF) - used == {"preset"}
  assert "quiet" in commands.flags_of("find")
  with pytest.raises(ValueError, match="--lr is defined twice"):
    cli_flags.define(flags.DEFINE_float, "lr", 0.1, "again", "elsewhere")
