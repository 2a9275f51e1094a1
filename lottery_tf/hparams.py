"""Hyperparameters, grouped by concern, as plain frozen dataclasses.

The CLI generates its flags from these fields (help text lives in each field's
metadata), and the library only ever sees the dataclasses, never absl flags.

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

  The value's constraints are declared here, once: ``choices`` (with
  ``many``, a comma-separated list of them), ``interval`` (``"(0, 1)"``,
  ``"[0, inf)"``; ``also``: values allowed outside it, e.g. -1 for "off").
  They drive the flag's type (an enum), its help and :meth:`Hparams.check`.
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


#: How --image_size is reached (data/preprocess.py).
RESIZE_METHODS = ("resize", "pad")
#: Named preprocessings; "" is resize/pad per --resize_method.
PREPROCESSINGS = ("", "imagenet")
#: tf.distribute strategies by --strategy name (training/distribute.py).
STRATEGIES = ("default", "mirrored", "multi_worker", "one_device", "tpu")


@dataclasses.dataclass(frozen=True)
class DatasetHparams(Hparams):
  group = "dataset"
  dataset: str = field(
      "mnist_5k", "Dataset name (see `lottery_tf list`).", always_hashed=True)
  image_size: int = field(
      0, "Bring images to this height and width (0 = the dataset's own).")
  channels: int = field(
      0, "Bring images to 1 or 3 channels (0 = the dataset's own).")
  resize_method: str = field(
      "resize", choices=RESIZE_METHODS, help= "How to reach --image_size: `resize` (bilinear) or `pad` "
      "(zero-pad, or centre-crop when smaller).")
  normalize: bool = field(
      True, "Subtract the dataset's per-channel mean, divide by its std.")
  augment: bool = field(
      False, "Train-time augmentation: pad 4 + random crop + horizontal flip.")
  classes: str = field(
      "", "Keep only these classes, relabelled 0..k-1 in the order given, "
      "e.g. `0-4` or `5,6,7,8,9` (empty = all).")
  validation_fraction: float = field(
      0.0, "Hold out this fraction of train (its tail) as the validation split.")
  train_examples: int = field(
      0, "Use only the first N training examples (0 = all).")
  preprocessing: str = field(
      "", choices=PREPROCESSINGS, help= "Named preprocessing: empty = resize/pad per --resize_method (and, "
      "with --augment, pad + random crop + flip); `imagenet` = train: "
      "random-resized crop to --image_size + horizontal flip, eval: resize "
      "to --image_size*256/224 + centre crop (needs --image_size; replaces "
      "--augment, which it excludes).")
  data_dir: str = field(
      "", "TFDS data directory (empty = TFDS's default).", affects_results=False)


@dataclasses.dataclass(frozen=True)
class ModelHparams(Hparams):
  group = "model"
  model: str = field(
      "lenet_300_100", "Model name (see `lottery_tf list`).", always_hashed=True)


@dataclasses.dataclass(frozen=True)
class TrainingHparams(Hparams):
  group = "training"
  optimizer: str = field("sgd", "`sgd` (with --momentum/--nesterov) or `adam`.",
                         choices=("sgd", "adam"))
  lr: float = field(0.1, "Peak learning rate.", interval="(0, inf)")
  momentum: float = field(0.0, "SGD momentum.", interval="[0, 1)")
  nesterov: bool = field(False, "Nesterov momentum (SGD).")
  weight_decay: float = field(
      0.0, "L2 penalty, coupled (added to the gradient) as PyTorch's SGD and "
      "Adam `weight_decay`; which weights it decays: --weight_decay_on.",
      interval="[0, inf)")
  weight_decay_on: str = field(
      "kernels", choices=("kernels", "all"), help= "What --weight_decay decays: `kernels` (conv/dense kernels "
      "only) or `all` (every trainable weight, biases and BatchNorm "
      "scale/offset included: PyTorch's `SGD(model.parameters(), "
      "weight_decay=...)`, as open_lth, Morcos et al., Mehta and the "
      "data-diet code apply it).")
  batch_size: int = field(128, "Global batch size.",
                          interval="[1, 2147483647]")
  training_steps: str = field(
      "10ep", "Training length: `160ep` (epochs) or `500it` (iterations).")
  lr_schedule: str = field(
      "constant", choices=("constant", "step"), help= "`constant` or `step` (multiply by --gamma at --milestones).")
  milestones: str = field(
      "", "Comma-separated durations for the step schedule, e.g. `80ep,120ep`.")
  gamma: float = field(0.1, "Step-schedule factor.", interval="(0, 1]")
  warmup_steps: str = field(
      "0it", "Linear lr warm-up from 0, as a duration (`5ep`, `500it`).")
  label_smoothing: float = field(0.0, "Label smoothing of the loss.",
                                 interval="[0, 1)")
  seed: int = field(0, "Seed for initialisation, data order and augmentation.",
                    interval="[0, 4294967295]")
  jit_compile: bool = field(
      False, "XLA-compile the train step.", affects_results=False)
  steps_per_execution: int = field(
      0, "Steps per tf.function call (0 = automatic).", affects_results=False)
  mixed_precision: str = field(
      "", choices=("", "mixed_float16", "mixed_bfloat16"), help= "`mixed_float16` (GPU) or `mixed_bfloat16` (TPU, recent CPUs): "
      "compute in half precision; weights, masks and pruning thresholds stay "
      "float32 (empty = float32 throughout).")
  strategy: str = field(
      "default", choices=STRATEGIES, help= "tf.distribute strategy: `default` (one device), `mirrored` "
      "(all local GPUs, or --cpu_devices), `multi_worker` (TF_CONFIG), "
      "`one_device` or `tpu` (--tpu). --batch_size is the global batch.",
      affects_results=False)
  cpu_devices: int = field(
      0, "Split the CPU into this many logical devices (0 = one), e.g. to run "
      "`--strategy=mirrored` on a machine without GPUs.",
      affects_results=False)
  tpu: str = field(
      "", "--strategy=tpu: the TPU name or grpc:// address (empty = the "
      "local TPU or $TPU_NAME).", affects_results=False)
  checkpoint_every: int = field(
      0, "Checkpoint the model, masks and optimizer every N steps inside a "
      "run, so a killed run resumes mid-level (0 = only between runs).",
      affects_results=False)


def digest(payload: Dict[str, Any]) -> str:
  """The 10 hex digits naming an experiment: sha256 of ``payload`` as
  sorted-key JSON (lottery_tf.descriptions builds the payloads)."""
  text = json.dumps(payload, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:10]


def experiment_hash(*groups: Optional[Hparams], extra: Optional[dict] = None) -> str:
  """Hash of the result-changing, non-default fields of the given groups."""
  payload = {g.group: g.result_fields() for g in groups if g is not None}
  if extra:
    payload["extra"] = extra
  return digest(payload)


def to_json_dict(*groups: Optional[Hparams]) -> Dict[str, Dict[str, Any]]:
  return {g.group: g.to_dict() for g in groups if g is not None}
