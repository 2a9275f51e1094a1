"""Run by test_distribute.py in its own process (logical devices need a fresh TF).

Two IMP levels under MirroredStrategy on 2 logical CPUs, then checks every
replica's copy of every mask and kernel: identical across replicas, pruned
weights exactly 0 on each. Prints OK.
"""
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402

from lottery_tf.data.hparams import DatasetHparams # noqa: E402
from lottery_tf.models.hparams import ModelHparams # noqa: E402
from lottery_tf.training.hparams import TrainingHparams # noqa: E402
from lottery_tf.lottery.hparams import LotteryHparams  # noqa: E402
from lottery_tf.lottery.runner import LotteryRunner  # noqa: E402
from lottery_tf.lottery.task import Task  # noqa: E402
from lottery_tf.pruning.hparams import PruningHparams  # noqa: E402
from lottery_tf.pruning.wrap import wrappers  # noqa: E402
from lottery_tf.training import distribute  # noqa: E402


def main(out_dir):
  thp = TrainingHparams(lr=0.1, momentum=0.9, batch_size=64,
                        training_steps="1ep", strategy="mirrored",
                        cpu_devices=2)
  strategy = distribute.setup(thp)
  assert strategy.num_replicas_in_sync == 2
  task = Task(DatasetHparams(dataset="mnist_5k"),
              ModelHparams(model="lenet_300_100"), thp)
  runner = LotteryRunner(out_dir, task, PruningHparams(),
                         LotteryHparams(levels=1, controls=""), quiet=True,
                         log=lambda *_: None)
  runner.run()
  model = runner.session.model()
  # The session model holds the last level's trained weights and masks.
  masks = np.load(os.path.join(out_dir, "level_01", "mask.npz"))
  for name, wrapper in wrappers(model).items():
    kernel, mask, _ = wrapper.pruning_vars[0]
    ks = [v.numpy() for v in strategy.experimental_local_results(kernel)]
    ms = [v.numpy() for v in strategy.experimental_local_results(mask)]
    assert len(ks) == len(ms) == 2
    np.testing.assert_array_equal(ms[0], ms[1])
    np.testing.assert_array_equal(ks[0], ks[1])
    np.testing.assert_array_equal(ms[0], masks[name])
    for k in ks:
      assert np.all(k[ms[0] == 0] == 0), name
    assert 0 < ms[0].mean() < 1, name
  print("OK")


if __name__ == "__main__":
  main(sys.argv[1])
