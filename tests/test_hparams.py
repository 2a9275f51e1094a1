"""Experiment names: a hash of the result-changing, non-default hparams."""
import dataclasses

from lottery_tf.foundations import hparams
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams


def test_hash_is_pinned():
  # Changing this value renames every user's existing experiments: only do it
  # on purpose.
  h = hparams.experiment_hash(DatasetHparams(), ModelHparams(),
                              TrainingHparams())
  assert h == hparams.experiment_hash(DatasetHparams(), ModelHparams(),
                                      TrainingHparams())
  assert h == "efbed820cd"


def test_result_changing_fields_change_the_hash_and_others_do_not():
  base = hparams.experiment_hash(DatasetHparams(), TrainingHparams())
  assert hparams.experiment_hash(DatasetHparams(), TrainingHparams(lr=0.05)) != base
  assert hparams.experiment_hash(DatasetHparams(dataset="digits"),
                                 TrainingHparams()) != base
  assert hparams.experiment_hash(DatasetHparams(data_dir="/x"),
                                 TrainingHparams(jit_compile=True)) == base


def test_every_field_has_help_text():
  for cls in (DatasetHparams, ModelHparams, TrainingHparams):
    for f in dataclasses.fields(cls):
      assert len(f.metadata["help"]) > 10, (cls.__name__, f.name)


def test_round_trip_through_dict():
  thp = TrainingHparams(lr=0.3, training_steps="3ep")
  assert TrainingHparams.from_dict(thp.to_dict()) == thp


def _all_groups():
  from lottery_tf.analysis.hparams import LMCHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.diet.hparams import DietHparams, ScoreHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery.hparams import LotteryHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.pruning.hparams import PruningHparams  # pylint: disable=g-import-not-at-top
  from lottery_tf.transfer.hparams import GridHparams, TransferHparams  # pylint: disable=g-import-not-at-top
  return (DatasetHparams, ModelHparams, TrainingHparams, PruningHparams,
          LotteryHparams, TransferHparams, GridHparams, ScoreHparams,
          DietHparams, LMCHparams)


def test_declared_choices_and_intervals_drive_the_flags_and_the_checks():
  """One declaration per field (hparams.field): the absl flag's type and
  help, and the group's check, all come from it."""
  import pytest  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lottery_tf.cli import commands  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from lottery_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  declared = 0
  for cls in _all_groups():
    for f in dataclasses.fields(cls):
      md, flag = f.metadata, flags.FLAGS[f.name]
      # A comma list is an absl list flag (items split and stripped there).
      assert isinstance(flag.parser, flags.ListParser) == md["many"], f.name
      if md["choices"] is not None:
        declared += 1
        enum = not md["many"] and all(md["choices"])
        assert isinstance(flag.parser, flags.EnumParser) == enum, f.name
        for choice in md["choices"]:
          assert (choice or "''") in flag.help, f.name
          cls(**{f.name: choice}).check()
        with pytest.raises(UserError, match=f"^--{f.name}: 'no_such' is not "
                           "one of: "):
          cls(**{f.name: "no_such"}).check()
      if md["interval"]:
        declared += 1
        assert md["interval"] in flag.help, f.name
        # ... and the flag's bounds: absl refuses a value outside as it
        # parses (the CLI turns that into exit 2 naming the flag).
        assert flag.validators, f.name
        lo = float(md["interval"][1:-1].split(",")[0])
        below = lo - 1 if md["interval"][0] == "[" else lo
        if below in md["also"]:  # -1 = "off" beside [0, ...)
          below -= 1
        with pytest.raises(UserError, match=f"^--{f.name}: must be in "):
          cls(**{f.name: type(f.default)(below)}).check()
        for also in md["also"]:
          cls(**{f.name: also}).check()
  assert declared >= 30
