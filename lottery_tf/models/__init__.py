"""Model zoo: functional tf_keras models for lottery tickets, by name.

    from lottery_tf import models
    model = models.build("resnet20", (32, 32, 3), num_classes=10, seed=0)

Every model is a functional ``keras.Model`` whose layers all have stable
explicit names (masks and ticket transfer key on them) and whose last layer is
``Dense(num_classes, name=models.CLASSIFIER_NAME)`` producing raw logits.
Weights are a pure function of ``seed``. ``build`` checks these conventions
and refuses a builder that breaks one with a one-line UserError.

To add a model, write a builder decorated with
:func:`lottery_tf.models.registry.register` in a family module and import that
module below. ``canonical_input(name)`` is the input it was designed for (its
``register(..., canonical_input=...)``), ``canonical_label(name)`` the same as
text ("28x28x1, 10 classes").
"""
from lottery_tf.models.base import CLASSIFIER_NAME
from lottery_tf.models.registry import (ModelSpec, build, canonical_input,
                                        canonical_label, describe, get, names,
                                        param_count, register, unregister)

# Importing a family module registers its models.
from lottery_tf.models import conv, lenet, resnet, vgg  # noqa: E402,F401  pylint: disable=wrong-import-position

__all__ = [
    "CLASSIFIER_NAME", "ModelSpec", "build", "canonical_input",
    "canonical_label", "describe", "get", "names", "param_count", "register",
    "unregister",
]
