"""Conv-2, Conv-4 and Conv-6: the VGG-like CIFAR-10 nets of Frankle & Carbin (2019).

Pairs of 3x3 "same" convolutions (64, 64 | 128, 128 | 256, 256), each pair
followed by a 2x2 max-pool, then FC 256, FC 256 and the classifier, all with
relu and Glorot normal initialisation as in the paper's TensorFlow code. The
pools are un-padded, so Conv-N needs images of at least 2^(N/2) pixels a side.

The paper's Figure 2 gives Conv-6 1.7M weights (1.1M in convolutions), but the
architecture it describes, and every reimplementation, has 2,262,602 on
CIFAR-10: the 4x4x256 -> 256 FC layer alone holds 1.05M. Conv-2 (4.3M) and
Conv-4 (2.4M) agree with the paper.
"""
from lottery_tf._keras import keras
from lottery_tf.models import base
from lottery_tf.models.registry import register

_FILTERS = (64, 128, 256)


def _conv_net(image, num_classes, init, num_pairs: int):
  x = image
  for pair in range(num_pairs):
    for i in (1, 2):
      x = keras.layers.Conv2D(
          _FILTERS[pair], 3, padding="same", activation="relu",
          kernel_initializer=init.glorot_normal(), bias_initializer="zeros",
          name=f"conv{2 * pair + i}")(x)
    x = keras.layers.MaxPooling2D(2, name=f"pool{pair + 1}")(x)
  x = keras.layers.Flatten(name="flatten")(x)
  for i in (1, 2):
    x = keras.layers.Dense(
        256, activation="relu", kernel_initializer=init.glorot_normal(),
        bias_initializer="zeros", name=f"fc{i}")(x)
  return base.classifier(x, num_classes, init.glorot_normal())


@register("conv2",
          "Conv-2 (Frankle & Carbin 2019): conv 64-64, pool, FC 256-256; "
          "~4.3M weights on CIFAR-10", min_image_size=2,
          canonical_input=base.CIFAR10_INPUT)
def conv2(image, num_classes, init):
  return _conv_net(image, num_classes, init, num_pairs=1)


@register("conv4",
          "Conv-4 (Frankle & Carbin 2019): conv 64-64, 128-128 with pools, "
          "FC 256-256; ~2.4M weights on CIFAR-10", min_image_size=4,
          canonical_input=base.CIFAR10_INPUT)
def conv4(image, num_classes, init):
  return _conv_net(image, num_classes, init, num_pairs=2)


@register("conv6",
          "Conv-6 (Frankle & Carbin 2019): conv 64-64, 128-128, 256-256 with "
          "pools, FC 256-256; 2.26M weights on CIFAR-10", min_image_size=8,
          canonical_input=base.CIFAR10_INPUT)
def conv6(image, num_classes, init):
  return _conv_net(image, num_classes, init, num_pairs=3)
