"""A task: one dataset, one model, one training recipe, ready to train."""
import dataclasses
import math
from typing import Dict, Optional

from lottery_tf import data, models
from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.training import distribute, durations, optimizers


def validate(dhp: DatasetHparams, mhp: ModelHparams, thp: TrainingHparams):
  """Checks every hparam before any work starts; UserError names the flag.

  Cheap checks first: a typo in --model should not wait for a dataset build.
  """
  if mhp.model not in models.names():
    raise UserError(f"--model: unknown model {mhp.model!r}; choose from: "
                    f"{', '.join(models.names())}")
  optimizers.validate(thp)
  distribute.validate(thp)
  info = data.info(dhp)
  # Builds the model in a throwaway graph: too-small inputs fail here.
  models.param_count(mhp.model, info.input_shape, info.num_classes)
  return info


@dataclasses.dataclass
class Task:
  dhp: DatasetHparams
  mhp: ModelHparams
  thp: TrainingHparams
  info: data.DataInfo = None

  def __post_init__(self):
    if self.info is None:
      self.info = validate(self.dhp, self.mhp, self.thp)

  @property
  def steps_per_epoch(self) -> int:
    return max(1, math.ceil(self.info.num_examples["train"] /
                            self.thp.batch_size))

  @property
  def total_steps(self) -> int:
    return durations.parse(self.thp.training_steps).to_steps(
        self.steps_per_epoch)

  def steps(self, duration: str, flag: str) -> int:
    return durations.parse(duration, flag).to_steps(self.steps_per_epoch)

  def scope(self):
    """The strategy scope and dtype policy to build and compile models in."""
    return distribute.scope(self.thp)

  def build_model(self, seed: Optional[int] = None,
                  float32: bool = False) -> keras.Model:
    """The model (under the dtype policy; enter :meth:`scope` to train it).

    ``float32``: ignore --mixed_precision (for checks of its layers in a
    throwaway graph, where Keras' TF1-style layers do not cast).
    """
    seed = self.thp.seed if seed is None else seed
    with distribute.policy_scope("float32" if float32
                                 else self.thp.mixed_precision):
      return models.build(self.mhp.model, self.info.input_shape,
                          self.info.num_classes, seed=seed)

  def train_data(self, seed: Optional[int] = None, *,
                 batch_size: Optional[int] = None, indices=None):
    """``fn(start_step, input_context=None)``: the training stream for fit.

    An endless, shuffled, augmented stream of global batches from step
    ``start_step`` on, the same batches at a step however the run got there
    (``data.load(start_batch=...)``). With an ``input_context``
    (multi-worker), this worker's shard in per-replica batches.
    """
    seed = self.thp.seed if seed is None else seed
    batch_size = batch_size or self.thp.batch_size

    def make(start_step: int, input_context=None):
      if input_context is None:
        return data.load(self.dhp, "train", batch_size=batch_size, seed=seed,
                         training=True, indices=indices,
                         start_batch=start_step)
      local = (input_context.num_replicas_in_sync
               // input_context.num_input_pipelines)
      return data.load(
          self.dhp, "train",
          batch_size=input_context.get_per_replica_batch_size(batch_size),
          seed=seed, training=True, indices=indices,
          start_batch=start_step * local,
          num_shards=input_context.num_input_pipelines,
          shard_index=input_context.input_pipeline_id)
    return make

  def train_streams(self, seeds):
    """:meth:`train_data` of each of ``seeds`` as one stream of batches
    ``((x0, x1, ..), (y0, y1, ..))``, for runs side by side on different
    data orders (``training.compile_stacked`` with ``streams``); one seed:
    :meth:`train_data`'s own. Each stream's order and augmentation are keyed
    by the global seed when it is made (``data.load``), so each is made
    under its own, as a run of that data seed alone makes it; the first
    seed is the global one afterwards."""
    seeds = list(seeds)
    if len(seeds) == 1:
      return self.train_data(seeds[0])

    def make(start_step: int, input_context=None):
      parts = []
      for s in seeds:
        tf.random.set_seed(s)
        parts.append(self.train_data(s)(start_step, input_context))
      tf.random.set_seed(seeds[0])
      return tf.data.Dataset.zip(tuple(parts)).map(
          lambda *b: (tuple(e[0] for e in b), tuple(e[1] for e in b)))
    return make

  def eval_data(self, eval_batch_size: int = 1000) -> Dict[str, tf.data.Dataset]:
    """Un-augmented train, validation (if held out) and test splits."""
    splits = ["train", "test"]
    if self.dhp.validation_fraction > 0:
      splits.insert(1, "validation")
    out = {}
    for s in splits:
      ds = data.load(self.dhp, s, batch_size=eval_batch_size)
      if ds.cardinality() < 0:
        # A class subset filters, so tf.data cannot count; Keras needs the
        # count to evaluate with steps_per_execution > 1.
        n = self.info.num_examples[s]
        ds = ds.apply(tf.data.experimental.assert_cardinality(
            math.ceil(n / eval_batch_size)))
      out[s] = ds
    return out
