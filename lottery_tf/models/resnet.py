"""Residual networks: CIFAR ResNet-20/56 and ImageNet ResNet-18/50.

* CIFAR (He et al. 2016, Sec. 4.2; open_lth ``cifar_resnet``): a 3x3 conv with
  16 filters, three stages of n basic blocks with 16, 32, 64 filters (stride 2
  at the start of stages 2 and 3), global average pooling, the classifier.
  Depth = 6n + 2. Where a block changes shape, the shortcut is a 1x1 conv +
  BatchNorm projection, as in open_lth (He et al.'s option A pads with zeros
  instead; the projections add 0.9% to ResNet-20's weights).
* ImageNet (torchvision): 7x7/2 conv stem + BatchNorm + relu + 3x3/2 max-pool,
  four stages (64, 128, 256, 512 filters; bottleneck blocks expand 4x) of basic
  ([2, 2, 2, 2], ResNet-18) or bottleneck ([3, 4, 6, 3], ResNet-50) blocks,
  with the stride in the bottleneck's 3x3 conv (torchvision's "v1.5") and 1x1
  conv + BatchNorm projection shortcuts.

Convolutions have no bias (BatchNorm follows each) and are He (kaiming) normal
initialised, as open_lth. Strided convolutions pad explicitly by (k - 1) / 2 on
every side as PyTorch does; Keras's "same" would pad only bottom/right on even
sizes and misalign the residual with its strided 1x1 shortcut. The max-pool's
zero padding equals PyTorch's -inf padding because it follows a relu.
"""
from lottery_tf._keras import keras
from lottery_tf.models import base
from lottery_tf.models.registry import register


def _conv(x, filters: int, kernel_size: int, stride: int, init, name: str):
  padding = "same"
  if stride > 1:
    padding = "valid"
    if kernel_size > 1:
      x = keras.layers.ZeroPadding2D((kernel_size - 1) // 2,
                                     name=f"{name}_pad")(x)
  return keras.layers.Conv2D(
      filters, kernel_size, strides=stride, padding=padding, use_bias=False,
      kernel_initializer=init.he_normal(), name=name)(x)


def _shortcut(x, filters: int, stride: int, init, prefix: str):
  if stride == 1 and x.shape[-1] == filters:
    return x
  x = _conv(x, filters, 1, stride, init, f"{prefix}_shortcut_conv")
  return base.batch_norm(f"{prefix}_shortcut_bn")(x)


def _basic_block(x, filters: int, stride: int, init, prefix: str):
  """3x3 conv, BN, relu, 3x3 conv, BN, add the shortcut, relu."""
  y = _conv(x, filters, 3, stride, init, f"{prefix}_conv1")
  y = base.batch_norm(f"{prefix}_bn1")(y)
  y = keras.layers.ReLU(name=f"{prefix}_relu1")(y)
  y = _conv(y, filters, 3, 1, init, f"{prefix}_conv2")
  y = base.batch_norm(f"{prefix}_bn2")(y)
  shortcut = _shortcut(x, filters, stride, init, prefix)
  y = keras.layers.Add(name=f"{prefix}_add")([y, shortcut])
  return keras.layers.ReLU(name=f"{prefix}_out")(y)


def _bottleneck_block(x, filters: int, stride: int, init, prefix: str):
  """1x1 conv (filters), 3x3 conv (filters, strided), 1x1 conv (4 * filters)."""
  y = _conv(x, filters, 1, 1, init, f"{prefix}_conv1")
  y = base.batch_norm(f"{prefix}_bn1")(y)
  y = keras.layers.ReLU(name=f"{prefix}_relu1")(y)
  y = _conv(y, filters, 3, stride, init, f"{prefix}_conv2")
  y = base.batch_norm(f"{prefix}_bn2")(y)
  y = keras.layers.ReLU(name=f"{prefix}_relu2")(y)
  y = _conv(y, 4 * filters, 1, 1, init, f"{prefix}_conv3")
  y = base.batch_norm(f"{prefix}_bn3")(y)
  shortcut = _shortcut(x, 4 * filters, stride, init, prefix)
  y = keras.layers.Add(name=f"{prefix}_add")([y, shortcut])
  return keras.layers.ReLU(name=f"{prefix}_out")(y)


def _stages(x, init, block, widths, blocks_per_stage, first_stride: int):
  for s, (filters, num_blocks) in enumerate(zip(widths, blocks_per_stage), 1):
    for b in range(1, num_blocks + 1):
      stride = (first_stride if s == 1 else 2) if b == 1 else 1
      x = block(x, filters, stride, init, f"stage{s}_block{b}")
  return x


def _cifar_resnet(image, num_classes, init, depth: int):
  n = (depth - 2) // 6
  x = _conv(image, 16, 3, 1, init, "conv1")
  x = base.batch_norm("bn1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  x = _stages(x, init, _basic_block, (16, 32, 64), (n, n, n), first_stride=1)
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  return base.classifier(x, num_classes, init.he_normal())


def _imagenet_resnet(image, num_classes, init, block, blocks_per_stage):
  x = _conv(image, 64, 7, 2, init, "conv1")
  x = base.batch_norm("bn1")(x)
  x = keras.layers.ReLU(name="relu1")(x)
  x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
  x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
  x = _stages(x, init, block, (64, 128, 256, 512), blocks_per_stage,
              first_stride=1)
  x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
  return base.classifier(x, num_classes, init.he_normal())


@register("resnet20", "CIFAR ResNet-20 (He et al. 2016, open_lth): 3 stages "
          "x 3 basic blocks, 16-32-64 filters; ~0.27M weights on CIFAR-10",
          canonical_input=base.CIFAR10_INPUT)
def resnet20(image, num_classes, init):
  return _cifar_resnet(image, num_classes, init, depth=20)


@register("resnet56", "CIFAR ResNet-56 (He et al. 2016, open_lth): 3 stages "
          "x 9 basic blocks, 16-32-64 filters; ~0.86M weights on CIFAR-10",
          canonical_input=base.CIFAR10_INPUT)
def resnet56(image, num_classes, init):
  return _cifar_resnet(image, num_classes, init, depth=56)


@register("resnet18", "ImageNet ResNet-18 (torchvision): 7x7 stem, basic "
          "blocks [2, 2, 2, 2]; 11,689,512 weights at 224x224/1000 classes",
          canonical_input=base.IMAGENET_INPUT)
def resnet18(image, num_classes, init):
  return _imagenet_resnet(image, num_classes, init, _basic_block, (2, 2, 2, 2))


@register("resnet50", "ImageNet ResNet-50 v1.5 (torchvision): 7x7 stem, "
          "bottleneck blocks [3, 4, 6, 3]; 25,557,032 weights at 224x224/1000 "
          "classes", canonical_input=base.IMAGENET_INPUT)
def resnet50(image, num_classes, init):
  return _imagenet_resnet(image, num_classes, init, _bottleneck_block,
                          (3, 4, 6, 3))
