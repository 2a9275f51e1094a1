"""Experiment names: a hash of the result-changing, non-default hparams."""
import dataclasses

from lottery_tf import hparams
from lottery_tf.hparams import DatasetHparams, ModelHparams, TrainingHparams


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
