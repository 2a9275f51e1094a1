"""A tfmot pruning schedule that never fires: masks change only between rounds.

Lottery tickets are found by *one-shot-per-round* pruning (Frankle & Carbin
2019): train to the end with the mask fixed, then remove p% of the remaining
weights, then rewind and train again. tfmot's built-in schedules
(``ConstantSparsity``, ``PolynomialDecay``) instead recompute a per-layer top-k
over the current |kernel| every ``frequency`` steps *during* training. Inside an
IMP round that would (a) overwrite the masks our code computed between rounds
(globally, over all layers - tfmot has no global pruning), and (b) after a
rewind, let already-pruned positions compete again, so masks would stop being
nested. So the wrappers get this schedule: ``should_prune`` is always False,
and the masks are computed by :mod:`lottery_tf.pruning.masks` and assigned to
the wrappers' ``mask`` variables by :func:`lottery_tf.pruning.set_masks`.
"""
from lottery_tf._keras import keras, tf

from tensorflow_model_optimization.python.core.sparsity.keras import (
    pruning_schedule)


@keras.utils.register_keras_serializable(package="lottery_tf")
class OneShotSchedule(pruning_schedule.PruningSchedule):
  """Never prunes inside training; pruning happens between IMP rounds.

  Follows tfmot's schedule protocol: ``schedule(step)`` returns
  ``(should_prune, sparsity)`` tensors, here ``(False, 0.0)`` for every step.
  ``get_config`` returns tfmot's ``{"class_name", "config"}`` form with the
  Keras-registered name ``lottery_tf>OneShotSchedule``, so even tfmot's own
  ``PruneLowMagnitude.from_config`` (which deserialises the schedule with
  ``keras.utils.deserialize_keras_object``) finds this class.
  """

  def __call__(self, step):
    del step  # The answer is the same at every step.
    return (tf.constant(False), tf.constant(0.0, dtype=tf.float32))

  def get_config(self):
    return {"class_name": keras.utils.get_registered_name(type(self)),
            "config": {}}

  def __eq__(self, other):
    return type(other) is type(self)

  def __hash__(self):
    return hash(type(self))

  def __repr__(self):
    return "OneShotSchedule()"
