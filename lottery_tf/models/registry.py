"""Model registry: name -> builder, so adding a model is one function + one line.

A family module (``lenet.py``, ``conv.py``, ...) decorates one function per
model::

    @register("conv2", "Conv-2 (Frankle & Carbin 2019): ...", min_image_size=2)
    def conv2(image, num_classes, init):
      ...
      return logits

The builder receives the input tensor, the number of classes and an
:class:`~lottery_tf.models.base.Initializers` that hands out one seeded
initializer per layer; it returns the logits tensor of its final
``Dense(num_classes, name="logits")``. Wrapping that into a functional
``keras.Model``, validating the input and counting parameters happen here.
"""
import dataclasses
import functools
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.models import base

Builder = Callable[..., "tf.Tensor"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A registered model.

  Attributes:
    name: the ``--model`` value.
    description: one line for ``lottery_tf list``.
    builder: ``builder(image, num_classes, init) -> logits`` (see module doc).
    min_image_size: the smallest height and width the model can take
      (e.g. 8 for three un-padded 2x2 max-pools).
  """
  name: str
  description: str
  builder: Builder
  min_image_size: int = 1


_REGISTRY: Dict[str, ModelSpec] = {}


def register(name: str, description: str, min_image_size: int = 1):
  """Decorator adding ``builder`` to the registry under ``name``."""

  def decorator(builder: Builder) -> Builder:
    if name in _REGISTRY:
      raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = ModelSpec(name, description, builder, min_image_size)
    return builder

  return decorator


def names() -> List[str]:
  """The registered model names, sorted."""
  return sorted(_REGISTRY)


def get(name: str) -> ModelSpec:
  """The :class:`ModelSpec` registered as ``name``; UserError if unknown."""
  try:
    return _REGISTRY[name]
  except (KeyError, TypeError):
    raise UserError(f"--model: unknown model {name!r}; choose from: "
                    f"{', '.join(names())}") from None


def describe(name: str) -> str:
  """One-line description of model ``name`` (for ``lottery_tf list``)."""
  return get(name).description


def _check_input_shape(spec: ModelSpec, input_shape) -> Tuple[int, int, int]:
  try:
    shape = tuple(int(d) for d in input_shape)
    ok = (len(shape) == 3 and all(d >= 1 for d in shape) and
          all(int(d) == d for d in input_shape))
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise UserError(
        f"--image_size/--channels: model {spec.name!r} needs an input shape "
        f"(height, width, channels) of positive integers, got {input_shape!r}")
  height, width, _ = shape
  if min(height, width) < spec.min_image_size:
    raise UserError(
        f"--image_size: model {spec.name!r} needs images of at least "
        f"{spec.min_image_size}x{spec.min_image_size}, got {height}x{width}")
  return shape


def _check_num_classes(num_classes) -> int:
  if (isinstance(num_classes, (bool, np.bool_)) or
      not isinstance(num_classes, (int, np.integer)) or num_classes < 2):
    raise UserError(
        f"--classes: a classifier needs at least 2 classes, got {num_classes!r}")
  return int(num_classes)


def _check_seed(seed) -> int:
  if (isinstance(seed, (bool, np.bool_)) or
      not isinstance(seed, (int, np.integer)) or seed < 0):
    raise UserError(f"--seed: must be a non-negative integer, got {seed!r}")
  return int(seed)


def build(name: str, input_shape: Sequence[int], num_classes: int,
          seed: int = 0) -> keras.Model:
  """A functional Keras model ``name`` for ``input_shape`` images.

  Args:
    name: a registered model name (see :func:`names`).
    input_shape: ``(height, width, channels)``.
    num_classes: units of the final ``Dense`` layer named ``"logits"``.
    seed: initialisation seed; the same seed gives the same weights.

  Returns:
    An uncompiled ``keras.Model`` mapping images to raw logits.

  Raises:
    UserError: unknown model, bad or too small input shape, bad class count
      or seed.
  """
  spec = get(name)
  shape = _check_input_shape(spec, input_shape)
  num_classes = _check_num_classes(num_classes)
  init = base.Initializers(_check_seed(seed))
  image = keras.Input(shape=shape, name=base.INPUT_NAME)
  logits = spec.builder(image, num_classes, init)
  return keras.Model(image, logits, name=spec.name)


@functools.lru_cache(maxsize=128)
def _param_count(name: str, shape: Tuple[int, int, int],
                 num_classes: int) -> int:
  # Build in a throwaway graph: variables there are declared but never
  # initialised, so counting ResNet-50's weights allocates none of them.
  with tf.Graph().as_default():
    model = build(name, shape, num_classes)
    return int(sum(np.prod(w.shape.as_list()) for w in model.trainable_weights))


def param_count(name: str, input_shape: Sequence[int], num_classes: int) -> int:
  """Trainable parameters of model ``name`` (BatchNorm moving stats excluded)."""
  spec = get(name)
  shape = _check_input_shape(spec, input_shape)
  return _param_count(name, shape, _check_num_classes(num_classes))
