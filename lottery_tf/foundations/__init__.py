"""What every part of lottery_tf stands on.

* :mod:`~lottery_tf.foundations.fs`: every file operation, through
  ``tf.io.gfile`` (local paths, ``gs://``, ``ram://`` alike);
* :mod:`~lottery_tf.foundations.store`: atomic result files (json, npz, csv),
  whole reads, damaged-file handling;
* :mod:`~lottery_tf.foundations.figures`: the plotting backend, figure files;
* :mod:`~lottery_tf.foundations.provenance`: library versions in every result;
* :mod:`~lottery_tf.foundations.workspace`: the output directory's checks and
  the per-experiment lock;
* :mod:`~lottery_tf.foundations.hparams`: the hparams base (fields with their
  help, choices and intervals; the experiment hash).
"""
