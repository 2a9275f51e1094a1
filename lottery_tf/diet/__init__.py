"""Tickets on a data diet (Paul, Larsen, Ganguli, Frankle, Dziugaite 2022).

* :mod:`~lottery_tf.diet.scores`: EL2N / GraNd scores averaged over an
  ensemble of briefly trained networks (``lottery_tf score``).
* :mod:`~lottery_tf.diet.subsets`: ``random:N`` / ``easy:N`` / ``hard:N``
  subsets of the training set, optionally class balanced.
* :mod:`~lottery_tf.diet.pretrain`: the dense pre-training on a subset whose
  result is IMP's rewind point (``find --pretrain_steps --pretrain_subset``).
* :mod:`~lottery_tf.diet.study`: the whole comparison, resumably
  (``lottery_tf diet``): scores, IMP from each pre-training, instability per
  level, a comparison plot and table.
"""

# `lt.diet(...)` calls lottery_tf.api.diet even once this package is loaded.
from lottery_tf import api as _api  # noqa: E402  pylint: disable=g-import-not-at-top

_api.command_package(__name__)
