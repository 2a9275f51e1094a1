"""absl flags, generated from the hparam dataclasses' fields.

Flags exist only here; every command converts them into plain hparam objects
before calling the library.
"""
import dataclasses
import textwrap
import typing
from typing import Dict, Tuple

from absl import flags

from lottery_tf.errors import UserError
from lottery_tf.foundations.hparams import check_field, show_choices

FLAGS = flags.FLAGS

_DEFINERS = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


#: Flags every command takes (--quiet and --verbose ask nothing of a
#: command that prints no progress, so scripts can pass them to all).
UNIVERSAL = ("preset", "quiet", "verbose")

#: Our flags (not absl's own): name -> the group its help lists it under.
GROUP_OF: Dict[str, str] = {}


def define(definer, name: str, default, help_text: str, group: str) -> None:
  """Defines one flag (``flags.DEFINE_*``) under ``group`` in --help."""
  if name in GROUP_OF:
    raise ValueError(f"flag --{name} is defined twice ({GROUP_OF[name]} and "
                     f"{group}): every flag has one meaning")
  definer(name, default, help_text)
  GROUP_OF[name] = group


def _help(f: dataclasses.Field, enum: bool) -> str:
  """The field's help, with its declared choices and interval."""
  md = f.metadata
  text = md.get("help") or f.name
  if md.get("choices") is not None and not enum:
    each = "comma-separated, each one of" if md.get("many") else "one of"
    text += f" ({each}: {show_choices(md['choices'])})"
  if md.get("interval") and md["interval"] not in text:
    also = "".join(f" or {a}" for a in md.get("also", ()))
    text += f" (in {md['interval']}{also})"
  return text


def _is_list(f: dataclasses.Field) -> bool:
  return bool(f.metadata.get("many"))


def _in_interval(f: dataclasses.Field):
  """absl's bounds for the field's declared interval (open or closed ends,
  and the ``also`` values outside it): a validator run as flags parse."""
  def check(value) -> bool:
    try:
      check_field(f, value)
    except UserError as e:
      raise flags.ValidationError(str(e).split(": ", 1)[1]) from None
    return True
  return check


def define_from(cls) -> None:
  """One flag per field of an hparam dataclass: its type, help, choices and
  interval from the field's declaration (hparams.field).

  A single choice among non-empty names is an absl enum (absl refuses other
  values and lists them in the help); a ``many`` field is an absl list
  (``DEFINE_list``: items split at commas and stripped, handed to the
  hparams joined by commas); a declared interval is the flag's bounds (a
  validator absl runs as it parses, so a value outside them exits 2 before
  anything runs). Every declaration is also checked by the group's
  ``check``, for hparams built without flags.
  """
  hints = typing.get_type_hints(cls)
  for f in dataclasses.fields(cls):
    choices = f.metadata.get("choices")
    if _is_list(f):
      define(flags.DEFINE_list, f.name, f.default, _help(f, False), cls.group)
    elif choices and all(choices):
      define(lambda name, default, text, c=choices: flags.DEFINE_enum(
          name, default, list(c), text), f.name, f.default, _help(f, True),
             cls.group)
    else:
      define(_DEFINERS[hints[f.name]], f.name, f.default, _help(f, False),
             cls.group)
    if f.metadata.get("interval"):
      flags.register_validator(f.name, _in_interval(f),
                               message=f"must be in {f.metadata['interval']}")


def names_of(*sources) -> Tuple[str, ...]:
  """Flag names: each source is an hparam class (all its fields) or a name."""
  out = []
  for s in sources:
    if isinstance(s, str):
      out.append(s)
    else:
      out.extend(f.name for f in dataclasses.fields(s))
  return tuple(out)


def check_used(command: str, allowed) -> None:
  """UserError naming the first flag given that ``command`` does not use.

  All commands share absl's one namespace; without this, a flag meant for
  another command (or a typo'd command) would be accepted and ignored.
  """
  allowed = set(allowed) | set(UNIVERSAL)
  for name in GROUP_OF:
    if name not in allowed and FLAGS[name].present:
      raise UserError(f"--{name}: not a flag of `{command}` (`lottery_tf "
                      f"{command} --help` lists its flags)")


def help_for(command: str, summary: str, allowed) -> str:
  """``lottery_tf COMMAND --help``: its flags by group, with defaults."""
  allowed = set(allowed)
  lines = [f"usage: lottery_tf {command} [--preset=NAME | --flagfile=FILE] "
           "[--flags...]", "", summary.strip(), ""]
  groups: Dict[str, list] = {}
  for name, group in GROUP_OF.items():
    if name in allowed:
      groups.setdefault(group, []).append(name)
  # The command's own groups first, where it writes last.
  for group, names in sorted(groups.items(), key=lambda g: g[0] == "output"):
    lines.append(f"{group}:")
    for name in names:
      flag = FLAGS[name]
      default = flag.default_as_str or "''"
      lines.append(f"  --{name} (default: {default})")
      lines.extend(textwrap.wrap(flag.help, 76, initial_indent="      ",
                                 subsequent_indent="      "))
    lines.append("")
  if not groups:
    lines.append("(no flags)")
  return "\n".join(lines).rstrip() + "\n"


def from_flags(cls, **overrides):
  """The hparam dataclass filled from the parsed flags."""
  values = {}
  for f in dataclasses.fields(cls):
    value = getattr(FLAGS, f.name)
    values[f.name] = ",".join(value) if _is_list(f) else value
  values.update(overrides)
  return cls(**values)


def was_set(name: str) -> bool:
  return FLAGS[name].present > 0


define(flags.DEFINE_string,
       "output_dir", "runs",
       "Where experiments go: OUTPUT_DIR/<experiment name>-<hparams hash>/.",
       "output")
define(flags.DEFINE_string,
       "experiment_name", "",
       "Name prefix of the experiment directory (default: "
       "command_model_dataset).", "output")
define(flags.DEFINE_bool, "quiet", False, "No Keras progress output.",
       "output")
define(flags.DEFINE_bool, "verbose", False,
       "Keras' epoch lines while a run trains (a progress bar on a terminal, "
       "one line per epoch elsewhere), instead of one progress line that is "
       "rewritten in place on a terminal (and nothing elsewhere).", "output")
define(
    flags.DEFINE_string, "preset", "",
    "A paper preset by name (`lottery_tf presets` lists them), read as a "
    "--flagfile from the installed presets: works from any directory. Flags "
    "after it override it.", "output")
