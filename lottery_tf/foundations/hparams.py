"""The hparams base: groups of hyperparameters as plain frozen dataclasses.

Each concept keeps its group beside it (``data/hparams.py``,
``models/hparams.py``, ``training/hparams.py``, ``pruning/hparams.py``...).
The CLI generates its flags from the fields (help text, choices and intervals
live in each field's metadata), and the library only ever sees the
dataclasses, never absl flags.

Following open_lth, an experiment's directory name is a hash of the fields that
change results and differ from their defaults: adding a field with a no-op
default keeps every existing experiment's name valid. Fields marked
``affects_results=False`` (paths, verbosity) never enter the hash.
"""
import dataclasses
import hashlib
import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from lottery_tf.errors import UserError


#: The classifier layer of every model (models.CLASSIFIER_NAME): transfer
#: re-initialises it, --output_layer_fraction is its rate.
CLASSIFIER = "logits"


def field(default, help: str, affects_results: bool = True, *,  # pylint: disable=redefined-builtin
          choices: Optional[Sequence[str]] = None, many: bool = False,
          interval: str = "", also: Tuple = (), **kw):
  """A dataclass field with the help text its CLI flag will show.

  The value's constraints are declared here, once: ``many`` (a
  comma-separated list, held as one string), ``choices`` (of the value, or
  with ``many`` of each item), ``interval`` (``"(0, 1)"``, ``"[0, inf)"``;
  ``also``: values allowed outside it, e.g. -1 for "off"). They drive the
  flag's type (``DEFINE_enum``, ``DEFINE_list``) and bounds
  (lottery_tf.cli.flags), its help and :meth:`Hparams.check`.
  """
  return dataclasses.field(
      default=default,
      metadata={"help": help, "affects_results": affects_results,
                "choices": tuple(choices) if choices is not None else None,
                "many": many, "interval": interval, "also": tuple(also),
                **kw})


def split_list(text: str) -> List[str]:
  """A comma-separated flag value as its items: ``"a, b,,c"`` -> a, b, c."""
  return [p.strip() for p in str(text).split(",") if p.strip()]


def show_choices(choices: Sequence[str]) -> str:
  return ", ".join(c if c else "''" for c in choices)


def _in_interval(value, interval: str) -> bool:
  lo, hi = (float(x) for x in interval[1:-1].split(","))
  above = value > lo if interval[0] == "(" else value >= lo
  below = value < hi if interval[-1] == ")" else value <= hi
  return above and below


def check_field(f: dataclasses.Field, value) -> None:
  """UserError naming the flag unless ``value`` keeps ``f``'s declaration."""
  md = f.metadata
  if isinstance(value, float) and not math.isfinite(value):
    raise UserError(f"--{f.name}: must be a finite number, got {value}")
  choices = md.get("choices")
  if choices is not None:
    values = split_list(value) if md.get("many") else [value]
    for v in values:
      if v not in choices:
        raise UserError(f"--{f.name}: {v!r} is not one of: "
                        f"{show_choices(choices)}")
  interval = md.get("interval")
  if interval and value not in md.get("also", ()) and not _in_interval(
      value, interval):
    also = "".join(f" or {a}" for a in md.get("also", ()))
    raise UserError(f"--{f.name}: must be in {interval}{also}, got {value}")


class Hparams:
  """Mixin: conversion to/from dicts and the result-changing subset."""

  #: Prefix of this group in summaries (e.g. "dataset").
  group = "hparams"

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
      raise UserError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    return cls(**d)

  def result_fields(self) -> Dict[str, Any]:
    """Fields that change results and are not at their default."""
    out = {}
    for f in dataclasses.fields(self):
      if not f.metadata.get("affects_results", True):
        continue
      value = getattr(self, f.name)
      if f.metadata.get("always_hashed") or value != f.default:
        out[f.name] = value
    return out

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  def check(self) -> None:
    """Every field against its declared choices and interval."""
    for f in dataclasses.fields(self):
      check_field(f, getattr(self, f.name))

  def validate(self) -> None:
    """:meth:`check`; groups add the checks that span fields."""
    self.check()


def result_fields(*groups: Optional[Hparams]) -> Dict[str, Dict[str, Any]]:
  """Group name -> :meth:`Hparams.result_fields`: what the hparams give an
  experiment's hash (a description may amend a group's entry)."""
  return {g.group: g.result_fields() for g in groups if g is not None}


def payload(fields: Dict[str, Dict[str, Any]],
            extra: Optional[dict] = None) -> Dict[str, Any]:
  """What an experiment's hash digests: the groups' ``fields`` and, under
  ``"extra"``, what else names it (the command, a source's digest).

  Assembled here only (:func:`experiment_hash` and every
  ``lottery_tf.descriptions.Description.hash`` call it): a second copy
  that drifted would silently rename users' experiments.
  """
  out = dict(fields)
  if extra:
    out["extra"] = extra
  return out


def digest(content: Dict[str, Any]) -> str:
  """The 10 hex digits naming an experiment: sha256 of a :func:`payload`
  as sorted-key JSON."""
  text = json.dumps(content, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:10]


def experiment_hash(*groups: Optional[Hparams],
                    extra: Optional[dict] = None) -> str:
  """Hash of the result-changing, non-default fields of the given groups."""
  return digest(payload(result_fields(*groups), extra))


def to_json_dict(*groups: Optional[Hparams]) -> Dict[str, Dict[str, Any]]:
  return {g.group: g.to_dict() for g in groups if g is not None}
