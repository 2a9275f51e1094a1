"""absl flags, generated from the hparam dataclasses' fields.

Flags exist only here; every command converts them into plain hparam objects
before calling the library.
"""
import dataclasses
import typing

from absl import flags

from lottery_tf.errors import UserError  # noqa: F401  (re-exported)

FLAGS = flags.FLAGS

_DEFINERS = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


def define_from(cls) -> None:
  """One flag per field of an hparam dataclass, help text from the field."""
  hints = typing.get_type_hints(cls)
  for f in dataclasses.fields(cls):
    if f.name in FLAGS:
      continue
    definer = _DEFINERS[hints[f.name]]
    help_text = f.metadata.get("help") or f.name
    definer(f.name, f.default, help_text)


def from_flags(cls, **overrides):
  """The hparam dataclass filled from the parsed flags."""
  values = {f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(cls)}
  values.update(overrides)
  return cls(**values)


def was_set(name: str) -> bool:
  return FLAGS[name].present > 0


flags.DEFINE_string(
    "output_dir", "runs",
    "Where experiments go: OUTPUT_DIR/<experiment name>-<hparams hash>/.")
flags.DEFINE_string(
    "experiment_name", "",
    "Name prefix of the experiment directory (default: command_model_dataset).")
flags.DEFINE_bool("quiet", False, "No Keras progress output.")
flags.DEFINE_string(
    "preset", "",
    "A paper preset by name (`lottery_tf presets` lists them), read as a "
    "--flagfile from the installed presets: works from any directory. Flags "
    "after it override it.")
