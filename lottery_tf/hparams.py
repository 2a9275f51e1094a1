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
from typing import Any, Dict, Optional

from lottery_tf.errors import UserError


def field(default, help: str, affects_results: bool = True, **kw):  # pylint: disable=redefined-builtin
  """A dataclass field with the help text its CLI flag will show."""
  return dataclasses.field(
      default=default,
      metadata={"help": help, "affects_results": affects_results, **kw})


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
      "resize", "How to reach --image_size: `resize` (bilinear) or `pad` "
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
      "", "Named preprocessing: empty = resize/pad per --resize_method (and, "
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
  optimizer: str = field("sgd", "`sgd` (with --momentum/--nesterov) or `adam`.")
  lr: float = field(0.1, "Peak learning rate.")
  momentum: float = field(0.0, "SGD momentum.")
  nesterov: bool = field(False, "Nesterov momentum (SGD).")
  weight_decay: float = field(
      0.0, "L2 penalty, coupled (added to the gradient) as PyTorch's SGD and "
      "Adam `weight_decay`; which weights it decays: --weight_decay_on.")
  weight_decay_on: str = field(
      "kernels", "What --weight_decay decays: `kernels` (conv/dense kernels "
      "only) or `all` (every trainable weight, biases and BatchNorm "
      "scale/offset included: PyTorch's `SGD(model.parameters(), "
      "weight_decay=...)`, as open_lth, Morcos et al., Mehta and the "
      "data-diet code apply it).")
  batch_size: int = field(128, "Global batch size.")
  training_steps: str = field(
      "10ep", "Training length: `160ep` (epochs) or `500it` (iterations).")
  lr_schedule: str = field(
      "constant", "`constant` or `step` (multiply by --gamma at --milestones).")
  milestones: str = field(
      "", "Comma-separated durations for the step schedule, e.g. `80ep,120ep`.")
  gamma: float = field(0.1, "Step-schedule factor.")
  warmup_steps: str = field(
      "0it", "Linear lr warm-up from 0, as a duration (`5ep`, `500it`).")
  label_smoothing: float = field(0.0, "Label smoothing of the loss.")
  seed: int = field(0, "Seed for initialisation, data order and augmentation.")
  jit_compile: bool = field(
      False, "XLA-compile the train step.", affects_results=False)
  steps_per_execution: int = field(
      0, "Steps per tf.function call (0 = automatic).", affects_results=False)
  mixed_precision: str = field(
      "", "`mixed_float16` (GPU) or `mixed_bfloat16` (TPU, recent CPUs): "
      "compute in half precision; weights, masks and pruning thresholds stay "
      "float32 (empty = float32 throughout).")
  strategy: str = field(
      "default", "tf.distribute strategy: `default` (one device), `mirrored` "
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


def experiment_hash(*groups: Optional[Hparams], extra: Optional[dict] = None) -> str:
  """Hash of the result-changing, non-default fields of the given groups."""
  payload = {}
  for g in groups:
    if g is None:
      continue
    payload[g.group] = g.result_fields()
  if extra:
    payload["extra"] = extra
  text = json.dumps(payload, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:10]


def to_json_dict(*groups: Optional[Hparams]) -> Dict[str, Dict[str, Any]]:
  return {g.group: g.to_dict() for g in groups if g is not None}
