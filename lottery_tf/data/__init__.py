"""Datasets: a registry of TFDS image datasets and one tf.data path for all.

    from lottery_tf.data import info, load
    from lottery_tf.data.hparams import DatasetHparams

    hp = DatasetHparams(dataset="fashion_mnist", image_size=32, channels=3,
                        resize_method="pad")
    info(hp).input_shape                      # (32, 32, 3)
    train = load(hp, "train", batch_size=128, seed=0, training=True)

    # An endless training stream, resumed at batch 5000 without replaying
    # the batches before it; one shard of it per host.
    stream = load(hp, "train", batch_size=128, seed=0, training=True,
                  start_batch=5000, num_shards=4, shard_index=0)

``training=True`` shuffles epoch e in an order fixed by (seed, e), and every
augmentation seed is fixed by (seed, epoch, batch or example), so a resumed
stream repeats an unbroken one exactly. ``--preprocessing=imagenet`` is the
ResNet recipe: random-resized crop + flip for training, resize + centre crop
for evaluation.

Two datasets are embedded (built locally, no download): ``mnist_5k`` and
``digits``. Everything else is read with TFDS from ``--data_dir``.
Nothing here reads absl flags.
"""
from lottery_tf.data import embedded  # noqa: F401  (registers the builders)
from lottery_tf.data.pipeline import (  # noqa: F401
    SPLITS,
    DataInfo,
    compute_stats,
    info,
    load,
    names,
)
from lottery_tf.data.preprocess import parse_classes  # noqa: F401
from lottery_tf.data.registry import (  # noqa: F401
    REGISTRY,
    DatasetSpec,
    describe,
    register,
    unregister,
)

__all__ = [
    "DataInfo", "DatasetSpec", "REGISTRY", "SPLITS", "compute_stats",
    "describe", "info", "load", "names", "parse_classes", "register",
    "unregister",
]
