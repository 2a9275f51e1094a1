"""LeNet-300-100, the fully connected network of Frankle & Carbin (2019)."""
from lottery_tf._keras import keras
from lottery_tf.models import base
from lottery_tf.models.registry import register


@register("lenet_300_100",
          "LeNet-300-100 (Frankle & Carbin 2019): flatten, FC 300-100 relu, "
          "logits; 266,610 weights on MNIST", canonical_input=base.MNIST_INPUT)
def lenet_300_100(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  for i, units in enumerate((300, 100), start=1):
    x = keras.layers.Dense(
        units, activation="relu", kernel_initializer=init.glorot_normal(),
        bias_initializer="zeros", name=f"fc{i}")(x)
  return base.classifier(x, num_classes, init.glorot_normal())
