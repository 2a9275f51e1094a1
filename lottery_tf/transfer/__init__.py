"""Carry a ticket onto another dataset (and optimizer), with target controls.

* :mod:`~lottery_tf.transfer.runner`: one transfer (``lottery_tf transfer``):
  the transferred ticket, a random ticket, the target's own ticket.
* :mod:`~lottery_tf.transfer.grid`: sources x targets x optimizers
  (``lottery_tf grid``), its table, plots and heatmap.
* :mod:`~lottery_tf.transfer.hparams`: their hparams.
"""
from lottery_tf.transfer.hparams import GridHparams, TransferHparams
from lottery_tf.transfer.runner import (CLASSIFIER, HEAD_HIDDEN, TransferRunner,
                                        build_target_model, classifier,
                                        prepare, source_weights,
                                        target_data_hparams, transfer_masks)

__all__ = ["CLASSIFIER", "GridHparams", "HEAD_HIDDEN", "TransferHparams",
           "TransferRunner", "build_target_model", "classifier", "prepare",
           "source_weights", "target_data_hparams", "transfer_masks"]

# `lt.transfer(...)` calls lottery_tf.api.transfer even once this package is loaded.
from lottery_tf import api as _api  # noqa: E402  pylint: disable=g-import-not-at-top

_api.command_package(__name__)
