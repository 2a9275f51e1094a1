"""CIFAR VGG with BatchNorm, as open_lth's ``cifar_vgg`` (used by Morcos et al.).

Each stage is 3x3 "same" convolutions (no bias) + BatchNorm + relu; a 2x2
max-pool sits between stages; global average pooling and ONE
``Dense(num_classes)`` classifier end the net (open_lth: ``AvgPool2d(2)`` on
the last 2x2 map, then ``Linear(512, outputs)``). The pools pad ("same"), so
28x28 and smaller inputs work. He (kaiming) normal initialisation for every
kernel, as open_lth's default.
"""
from lottery_tf._keras import keras
from lottery_tf.models import base
from lottery_tf.models.registry import register

# Filters per conv, stage by stage (the standard VGG configurations A, D, E).
_STAGES = {
    11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512),
         (512, 512, 512)),
    19: ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512),
         (512, 512, 512, 512)),
}


def _vgg(image, num_classes, init, depth: int):
  x = image
  stages = _STAGES[depth]
  for s, filters in enumerate(stages, start=1):
    if s > 1:
      x = keras.layers.MaxPooling2D(2, padding="same", name=f"stage{s}_pool")(x)
    for i, f in enumerate(filters, start=1):
      x = keras.layers.Conv2D(
          f, 3, padding="same", use_bias=False,
          kernel_initializer=init.he_normal(), name=f"stage{s}_conv{i}")(x)
      x = base.batch_norm(f"stage{s}_bn{i}")(x)
      x = keras.layers.ReLU(name=f"stage{s}_relu{i}")(x)
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  return base.classifier(x, num_classes, init.he_normal())


@register("vgg11", "VGG-11 with BatchNorm for CIFAR (open_lth cifar_vgg): "
          "8 convs, one linear classifier; ~9.23M weights on CIFAR-10",
          canonical_input=base.CIFAR10_INPUT)
def vgg11(image, num_classes, init):
  return _vgg(image, num_classes, init, 11)


@register("vgg16", "VGG-16 with BatchNorm for CIFAR (open_lth cifar_vgg): "
          "13 convs, one linear classifier; ~14.72M weights on CIFAR-10",
          canonical_input=base.CIFAR10_INPUT)
def vgg16(image, num_classes, init):
  return _vgg(image, num_classes, init, 16)


@register("vgg19", "VGG-19 with BatchNorm for CIFAR (open_lth cifar_vgg, "
          "Morcos et al. 2019): 16 convs, one linear classifier; ~20.0M "
          "weights on CIFAR-10", canonical_input=base.CIFAR10_INPUT)
def vgg19(image, num_classes, init):
  return _vgg(image, num_classes, init, 19)
