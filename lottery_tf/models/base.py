"""What every model family shares: seeded initialisers, BatchNorm, the classifier.

Two properties the rest of lottery_tf relies on are made here:

* Names. Masks are stored keyed by layer name and a ticket is transferred to a
  new dataset by matching layers by name, so every layer gets an explicit name
  chosen by the family module (never Keras's ``dense_3``-style counters, which
  depend on what else was built in the process).
* Seeds. Each randomly initialised layer gets its own initializer seed derived
  from ``(seed, layer index)``. Keras's seeded initializers are stateless, so
  ``build(name, ..., seed=s)`` gives the same weights whatever the global RNG
  state, and two layers of the same shape never share values. Because the
  classifier is always the last layer built, the same seed gives the same body
  weights whatever the number of classes.
"""
import numpy as np

from lottery_tf._keras import keras
from lottery_tf.foundations.hparams import CLASSIFIER

#: Name of the final Dense layer that maps features to raw logits. Ticket
#: transfer re-initialises exactly this layer for the target's classes.
CLASSIFIER_NAME = CLASSIFIER  # (hparams.CLASSIFIER: one definition)

#: Name of the model's input layer.
INPUT_NAME = "image"

#: Canonical inputs, ``(shape, num_classes)``: what a model was designed for,
#: on which ``lottery_tf list`` counts its parameters (``register``'s
#: ``canonical_input``; CIFAR-10's is the default).
MNIST_INPUT = ((28, 28, 1), 10)
CIFAR10_INPUT = ((32, 32, 3), 10)
IMAGENET_INPUT = ((224, 224, 3), 1000)

# PyTorch's BatchNorm2d defaults (momentum 0.1 on the new statistic, eps 1e-5),
# which the reference implementations (open_lth, torchvision) were tuned with.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


class Initializers:
  """Hands out one freshly seeded initializer per layer, in build order.

  Args:
    seed: the model seed (a non-negative integer).
  """

  def __init__(self, seed: int):
    self.seed = int(seed)
    self.index = 0
    #: Every seed handed out so far, in order. ``models.build`` checks that
    #: each random initializer of the model has one of them (so the weights
    #: follow the model seed), and each its own.
    self.handed_out = []

  def next_seed(self) -> int:
    """The seed for the next layer: a hash of (model seed, layer index)."""
    state = np.random.SeedSequence([self.seed, self.index]).generate_state(1)
    self.index += 1
    seed = int(state[0] >> 1)  # A non-negative int32, as Keras expects.
    self.handed_out.append(seed)
    return seed

  def glorot_normal(self) -> keras.initializers.Initializer:
    """Glorot (Xavier) truncated normal, as Frankle & Carbin's TF code."""
    return keras.initializers.GlorotNormal(seed=self.next_seed())

  def he_normal(self) -> keras.initializers.Initializer:
    """PyTorch's ``kaiming_normal_`` (fan_in, untruncated), as open_lth.

    Keras's own ``HeNormal`` draws from a truncated normal; open_lth's default
    ``kaiming_normal`` initialiser does not truncate.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal",
        seed=self.next_seed())


def batch_norm(name: str) -> keras.layers.BatchNormalization:
  """BatchNorm with PyTorch's momentum and epsilon; gamma 1, beta 0."""
  return keras.layers.BatchNormalization(
      momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def classifier(x, num_classes: int, kernel_initializer):
  """The final ``Dense(num_classes, name="logits")``: raw logits, no softmax."""
  return keras.layers.Dense(
      num_classes, kernel_initializer=kernel_initializer,
      bias_initializer="zeros", name=CLASSIFIER_NAME)(x)
