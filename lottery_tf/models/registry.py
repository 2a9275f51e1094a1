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
``keras.Model``, validating the input, checking the builder kept the
conventions below and counting parameters happen here.

The conventions, checked by every :func:`build` (so by ``lottery_tf list`` and
at the start of every command, before any work), each a one-line
:class:`~lottery_tf.errors.UserError` naming the model and what is wrong:

* the builder returns a (symbolic) tensor, built from the input it was given;
* the model's last layer is a ``Dense`` named ``logits`` with ``num_classes``
  units and no activation (raw logits);
* every layer with weights has an explicit name (not Keras's ``dense``,
  ``dense_3``, ...: masks and ticket transfer key on names, and automatic
  names depend on what else the process built);
* every random initializer of those layers was handed out by the builder's
  ``init``, each to one layer only, so the weights are a function of the seed.

The last check is structural (initializer seeds, no weights are read), so
``build`` stays as cheap as the build itself and works in the throwaway graph
:func:`param_count` uses. An initializer it cannot see (one without a
``seed`` attribute, or a layer calling ``add_weight`` with its own) is left to
the tests, which build every registered model twice with one seed and once
with another and compare the weights.
"""
import dataclasses
import functools
import re
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.models import base

Builder = Callable[..., "tf.Tensor"]
#: ``((height, width, channels), num_classes)``.
CanonicalInput = Tuple[Tuple[int, int, int], int]

#: The canonical input of a model registered without one: CIFAR-10.
DEFAULT_CANONICAL_INPUT: CanonicalInput = base.CIFAR10_INPUT


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A registered model.

  Attributes:
    name: the ``--model`` value.
    description: one line for ``lottery_tf list``.
    builder: ``builder(image, num_classes, init) -> logits`` (see module doc).
    min_image_size: the smallest height and width the model can take
      (e.g. 8 for three un-padded 2x2 max-pools).
    canonical_input: ``((height, width, channels), num_classes)``, the input
      the model was designed for (``lottery_tf list`` counts its parameters
      there).
  """
  name: str
  description: str
  builder: Builder
  min_image_size: int = 1
  canonical_input: CanonicalInput = DEFAULT_CANONICAL_INPUT

  @property
  def where(self) -> str:
    """``module.function`` of the builder, for error messages."""
    return (f"{getattr(self.builder, '__module__', '?')}."
            f"{getattr(self.builder, '__qualname__', repr(self.builder))}")


_REGISTRY: Dict[str, ModelSpec] = {}


def _is_positive_int(value) -> bool:
  return (isinstance(value, (int, np.integer)) and
          not isinstance(value, (bool, np.bool_)) and value >= 1)


def _check_registration(name, description, builder, min_image_size,
                        canonical_input) -> CanonicalInput:
  """The arguments of :func:`register`, checked; the canonical input tidied."""
  where = f"models.register({name!r})"
  if not isinstance(name, str) or not name or name.split() != [name]:
    raise UserError(f"{where}: the name must be a non-empty string without "
                    "spaces (it is a --model value)")
  if not isinstance(description, str) or not description.strip() or (
      "\n" in description):
    raise UserError(f"{where}: the description must be one non-empty line "
                    "(lottery_tf list prints it)")
  if not callable(builder):
    raise UserError(f"{where} decorates {builder!r}, which is not a function "
                    "builder(image, num_classes, init)")
  if not _is_positive_int(min_image_size):
    raise UserError(f"{where}: min_image_size must be a positive integer, "
                    f"got {min_image_size!r}")
  try:
    shape, num_classes = canonical_input
    shape = tuple(shape)
    ok = (len(shape) == 3 and all(_is_positive_int(d) for d in shape) and
          _is_positive_int(num_classes) and num_classes >= 2)
  except (TypeError, ValueError):
    ok = False
  if not ok:
    raise UserError(
        f"{where}: canonical_input must be ((height, width, channels), "
        f"num_classes) of positive integers and at least 2 classes, e.g. "
        f"((28, 28, 1), 10); got {canonical_input!r}")
  if min(shape[:2]) < min_image_size:
    raise UserError(
        f"{where}: canonical_input {shape!r} is smaller than the model's "
        f"min_image_size {min_image_size}")
  return tuple(int(d) for d in shape), int(num_classes)


def register(name: str, description: str, min_image_size: int = 1,
             canonical_input: CanonicalInput = DEFAULT_CANONICAL_INPUT):
  """Decorator adding ``builder`` to the registry under ``name``.

  Args:
    name: the ``--model`` value; registering a name twice is a UserError.
    description: one line for ``lottery_tf list``.
    min_image_size: the smallest height and width the builder can take.
    canonical_input: ``((height, width, channels), num_classes)`` the model
      was designed for, e.g. ``((28, 28, 1), 10)`` for MNIST; default
      CIFAR-10's ``((32, 32, 3), 10)``.

  :func:`unregister` undoes it.
  """

  def decorator(builder: Builder) -> Builder:
    if name in _REGISTRY:
      raise UserError(
          f"models.register: model {name!r} is registered twice (first by "
          f"{_REGISTRY[name].where}); pick another name")
    canonical = _check_registration(name, description, builder,
                                    min_image_size, canonical_input)
    _REGISTRY[name] = ModelSpec(name, description, builder, min_image_size,
                                canonical)
    _param_count.cache_clear()
    return builder

  return decorator


def unregister(name: str) -> ModelSpec:
  """Removes model ``name`` (UserError if unknown); returns its spec.

  For tests and plugins that register a model for a while.
  """
  spec = get(name)
  del _REGISTRY[name]
  _param_count.cache_clear()  # Its counts must not outlive it.
  return spec


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


def canonical_input(name: str) -> CanonicalInput:
  """``((height, width, channels), num_classes)`` model ``name`` was designed
  for, e.g. ``((28, 28, 1), 10)`` for ``lenet_300_100``.

  ``param_count(name, *canonical_input(name))`` is its parameter count as
  ``lottery_tf list`` shows it.
  """
  return get(name).canonical_input


def canonical_label(name: str) -> str:
  """The canonical input as text: ``"28x28x1, 10 classes"``."""
  shape, num_classes = canonical_input(name)
  return f"{'x'.join(map(str, shape))}, {num_classes} classes"


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
      or seed; or a builder that breaks the conventions (module doc).
  """
  spec = get(name)
  shape = _check_input_shape(spec, input_shape)
  num_classes = _check_num_classes(num_classes)
  init = base.Initializers(_check_seed(seed))
  image = keras.Input(shape=shape, name=base.INPUT_NAME)
  logits = spec.builder(image, num_classes, init)
  if not _is_symbolic_tensor(logits):
    hint = " (a missing `return`?)" if logits is None else (
        " (a layer not called on a tensor?)"
        if isinstance(logits, keras.layers.Layer) else "")
    raise UserError(
        f"{_who(spec)}: the builder returned {_kind(logits)}, not the logits "
        f"tensor{hint}")
  try:
    model = keras.Model(image, logits, name=spec.name)
  except ValueError as e:  # Duplicate layer names, a graph not from `image`.
    raise UserError(f"{_who(spec)}: its layers do not make a model of the "
                    f"input it was given: {_first_line(e)}") from e
  _check_conventions(spec, model, num_classes, init)
  return model


# ----------------------------------------------------------------------------
# The conventions a builder must keep (module doc).


def _who(spec: ModelSpec) -> str:
  return f"model {spec.name!r} ({spec.where})"


def _kind(value) -> str:
  if value is None:
    return "None"
  if isinstance(value, keras.layers.Layer):
    return f"a {type(value).__name__} layer {value.name!r}"
  return f"a {type(value).__name__}"


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def _is_symbolic_tensor(value) -> bool:
  try:
    return bool(keras.backend.is_keras_tensor(value))
  except ValueError:  # Not a tensor at all.
    return False


def _snake_case(class_name: str) -> str:
  """The base of Keras's automatic layer names (tf_keras ``to_snake_case``)."""
  name = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
  name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
  return name if not name.startswith("_") else "private" + name


def _auto_named(layer) -> bool:
  """Whether ``layer``'s name is one Keras makes up for an unnamed layer:
  the class name in snake case, then ``_N`` for the N+1-th in the process."""
  base_name = re.escape(_snake_case(type(layer).__name__))
  return re.fullmatch(base_name + r"(_\d+)?", layer.name) is not None


def _initializers(layer):
  """``(attribute, initializer)`` of a layer: ``kernel_initializer``, ..."""
  for attr, value in sorted(vars(layer).items()):
    if attr.endswith("_initializer") and value is not None:
      yield attr, value


def _check_conventions(spec: ModelSpec, model: keras.Model, num_classes: int,
                       init: base.Initializers) -> None:
  who = _who(spec)
  last = model.layers[-1]
  classifier = f"Dense(num_classes, name={base.CLASSIFIER_NAME!r})"
  if (not isinstance(last, keras.layers.Dense) or
      last.name != base.CLASSIFIER_NAME):
    raise UserError(
        f"{who}: its last layer is {type(last).__name__} {last.name!r}, not "
        f"the classifier {classifier}; end the builder with "
        f"`return base.classifier(x, num_classes, init.glorot_normal())`")
  if last.units != num_classes:
    raise UserError(
        f"{who}: its {base.CLASSIFIER_NAME!r} layer has {last.units} units "
        f"for {num_classes} classes; give it the builder's num_classes")
  if last.activation is not keras.activations.linear:
    raise UserError(
        f"{who}: its {base.CLASSIFIER_NAME!r} layer applies "
        f"{getattr(last.activation, '__name__', last.activation)!r}; it must "
        f"output raw logits (no activation: the loss applies the softmax)")

  handed_out = set(init.handed_out)
  seed_user = {}
  for layer in model.layers:
    if not layer.weights:
      continue
    if _auto_named(layer):
      raise UserError(
          f"{who}: layer {layer.name!r} ({type(layer).__name__}) has weights "
          f"but an automatic name; give it an explicit name= (masks and "
          f"ticket transfer find layers by name)")
    for attr, initializer in _initializers(layer):
      if not hasattr(initializer, "seed"):
        continue  # Zeros, Ones, Constant...: nothing random.
      kind = type(initializer).__name__
      seed = initializer.seed
      if seed is None:
        raise UserError(
            f"{who}: layer {layer.name!r} has an unseeded {attr} ({kind}); "
            f"take it from the builder's init (init.glorot_normal(), "
            f"init.he_normal()) so the weights follow --seed")
      if seed not in handed_out:
        raise UserError(
            f"{who}: layer {layer.name!r} has a {attr} ({kind}) with a fixed "
            f"seed {seed!r}, not one from the builder's init, so the weights "
            f"would not follow --seed; use init.glorot_normal(), "
            f"init.he_normal() or seed=init.next_seed()")
      user = f"{layer.name!r} ({attr})"
      if seed in seed_user:
        raise UserError(
            f"{who}: layers {seed_user[seed]} and {user} share one "
            f"initializer seed, so same-shaped weights start equal; call "
            f"init.glorot_normal() (or init.he_normal()) once per layer")
      seed_user[seed] = user


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
