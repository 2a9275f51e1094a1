"""The fit wrapper: seeds, compile, segment-wise ``model.fit``, evaluation."""
import dataclasses
import math
import sys
import time
from typing import Callable, Dict, Iterable, Optional, Sequence

from lottery_tf._keras import keras, tf
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.training import distribute, durations, optimizers
from lottery_tf.training.model import StackedTrainModel, TrainModel, kernels


def set_seed(seed: int) -> None:
  """Same seed, same numbers on CPU: Python, NumPy and TF seeds, and TF ops."""
  keras.utils.set_random_seed(int(seed))
  tf.config.experimental.enable_op_determinism()


def total_steps(hp: TrainingHparams, steps_per_epoch: int) -> int:
  return durations.parse(hp.training_steps).to_steps(steps_per_epoch)


def _loss(hp: TrainingHparams, num_classes: int):
  if hp.label_smoothing:
    cce = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=hp.label_smoothing)

    def smoothed(y_true, y_pred):
      y_true = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32),
                          num_classes)
      return cce(y_true, y_pred)
    return smoothed
  return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(model: keras.Model, hp: TrainingHparams, steps_per_epoch: int,
                  optimizer=None) -> TrainModel:
  """A TrainModel sharing ``model``'s layers, compiled with a fresh optimizer.

  The TrainModel, its optimizer and metrics are created under the strategy
  ``model`` was built under (``distribute.scope``) and ``hp``'s dtype policy;
  under mixed precision the logits are cast to float32 for the loss, and
  with ``mixed_float16`` Keras wraps the optimizer in a LossScaleOptimizer.
  """
  with model.distribute_strategy.scope(), distribute.policy_scope(
      hp.mixed_precision):
    outputs = model.outputs
    if outputs[0].dtype != tf.float32:
      outputs = [keras.layers.Activation("linear", dtype="float32",
                                         name="logits_float32")(outputs[0])]
    train_model = TrainModel(inputs=model.inputs, outputs=outputs,
                             name=model.name, weight_decay=hp.weight_decay,
                             weight_decay_on=hp.weight_decay_on)
    _compile(train_model, hp, steps_per_epoch, int(model.outputs[0].shape[-1]),
             heads=1, optimizer=optimizer)
  return train_model


def _compile(train_model: TrainModel, hp: TrainingHparams,
             steps_per_epoch: int, num_classes: int, heads: int,
             optimizer=None) -> None:
  """Compiles ``train_model`` (under its strategy's scope): a fresh
  optimizer from ``hp``, the loss and accuracy on each of its ``heads``
  outputs, steps per call and XLA as ``hp`` asks."""
  loss = [_loss(hp, num_classes) for _ in range(heads)]
  metrics = [[keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
             for _ in range(heads)]
  train_model.compile(
      optimizer=optimizer or optimizers.build(hp, steps_per_epoch),
      loss=loss[0] if heads == 1 else loss,
      metrics=metrics[0] if heads == 1 else metrics,
      steps_per_execution=(hp.steps_per_execution or
                           _auto_steps_per_execution(steps_per_epoch)),
      jit_compile=hp.jit_compile)


#: Name of copy k in a stacked model (its outputs' logs: ``copy0_loss``).
def copy_name(k: int) -> str:
  return f"copy{k}"


#: Stacked runs hold every copy's weights and optimizer state at once: at
#: most this many parameters over all copies (ResNet-20 x 3 is 0.8M, Conv-4 x
#: 3 is 7.2M, VGG-19 x 3 is 60M: one at a time).
MAX_STACKED_PARAMETERS = 25_000_000


def can_stack(model: keras.Model, copies: int, thp: TrainingHparams) -> bool:
  """Whether ``copies`` runs of ``model`` under ``thp`` train side by side
  (``training.compile_stacked``): only where that gives the numbers of the
  runs one by one and fits (not under mixed precision: one loss scale would
  be shared; not with --checkpoint_every: a mid-run checkpoint is one run's;
  not across workers; at most MAX_STACKED_PARAMETERS), and, with
  --stack_runs=auto, where it is faster."""
  if (copies < 2 or thp.stack_runs == "off" or thp.mixed_precision or
      thp.checkpoint_every or thp.strategy == "multi_worker"):
    return False
  if model.count_params() * copies > MAX_STACKED_PARAMETERS:
    return False
  if thp.stack_runs == "auto" and not tf.config.list_logical_devices("GPU"):
    # Measured on 2 CPU cores (benchmarks/levels.py): LeNet-300-100's
    # level 2.2x faster stacked; Conv-4's 0.87-1.10x and ResNet-20's 1.06x
    # (compute-bound: both cores already busy), within the noise.
    return not any(isinstance(v, tf.Variable) and len(v.shape) == 4
                   for v in kernels(model))
  return True


def compile_stacked(copies: Sequence[keras.Model], hp: TrainingHparams,
                    steps_per_epoch: int,
                    streams: Optional[Sequence[int]] = None
                    ) -> StackedTrainModel:
  """A StackedTrainModel training ``copies`` (same architecture, built
  under the same strategy, float32) side by side, compiled as
  :func:`compile_model` compiles one. ``streams[k]``: the data stream copy
  k trains on (None: all on one), each stream an input of the model."""
  model = copies[0]
  if model.outputs[0].dtype != tf.float32:
    raise ValueError("stacked runs train in float32 (--mixed_precision "
                     "trains one run at a time)")
  if streams is not None and len(set(streams)) < 2:
    streams = None
  with model.distribute_strategy.scope():
    inputs = [keras.Input(shape=model.inputs[0].shape[1:],
                          dtype=model.inputs[0].dtype,
                          name="image" if streams is None else f"image{s}")
              for s in range(1 if streams is None else max(streams) + 1)]
    outputs = []
    for k, copy in enumerate(copies):
      copy._name = copy_name(k)  # pylint: disable=protected-access
      outputs.append(copy(inputs[0 if streams is None else streams[k]]))
    stacked = StackedTrainModel(
        inputs=inputs[0] if streams is None else inputs, outputs=outputs,
        name=f"stacked_{model.name}", weight_decay=hp.weight_decay,
        weight_decay_on=hp.weight_decay_on, copies=len(copies),
        streams=streams)
    _compile(stacked, hp, steps_per_epoch, int(model.outputs[0].shape[-1]),
             heads=len(copies))
  return stacked


def _auto_steps_per_execution(steps_per_epoch: int) -> int:
  # Fewer Python round trips per step; a divisor of the epoch keeps Keras'
  # progress bar and per-epoch callbacks exact.
  for n in range(min(32, steps_per_epoch), 0, -1):
    if steps_per_epoch % n == 0:
      return n
  return 1


#: ``verbose`` for :func:`fit`: one progress line, rewritten in place while
#: the run trains and erased when it ends, on a terminal; nothing elsewhere.
LINE = "line"

#: Keras' own epoch lines instead (``lottery_tf ... --verbose``).
EPOCH_LINES = False


def verbosity(quiet: bool):
  """``fit``'s ``verbose`` for a run: nothing if ``quiet``; else Keras'
  epoch lines under --verbose (a bar on a terminal, one line per epoch
  elsewhere), or by default a single progress line (:data:`LINE`)."""
  if quiet:
    return 0
  if EPOCH_LINES:
    return 1 if sys.stdout.isatty() else 2
  return LINE


class ProgressLine(keras.callbacks.Callback):
  """One line on a terminal, ``  training  step 450/945  loss 0.123  acc
  95.1%  3.2 s``, rewritten at most 5 times a second and erased when the
  run ends, so the lines printed around it stay the only ones."""

  #: Seconds between rewrites.
  every = 0.2

  def __init__(self, start_step: int, end_step: int, stream=None):
    super().__init__()
    self.stream = stream or sys.stdout
    self.start_step, self.end_step = start_step, end_step
    self.step = self.base = start_step
    self.began = self.shown = time.perf_counter()
    self.width = 0

  def on_epoch_begin(self, epoch, logs=None):
    del epoch, logs
    self.base = self.step

  def on_train_batch_end(self, batch, logs=None):
    # ``batch``: the epoch's last step run (several per call with
    # steps_per_execution).
    self.step = self.base + batch + 1
    now = time.perf_counter()
    if now - self.shown < self.every:
      return
    self.shown = now
    logs = logs or {}
    parts = [f"  training  step {min(self.step, self.end_step)}/"
             f"{self.end_step}"]
    if "loss" in logs:
      parts.append(f"loss {float(logs['loss']):.3f}")
    if "accuracy" in logs:
      parts.append(f"acc {100 * float(logs['accuracy']):.1f}%")
    parts.append(f"{now - self.began:.1f} s")
    self._write("  ".join(parts))

  def _write(self, text: str) -> None:
    pad = max(0, self.width - len(text))
    self.stream.write("\r" + text + " " * pad)
    self.stream.flush()
    self.width = len(text)

  def erase(self) -> None:
    if self.width:
      self.stream.write("\r" + " " * self.width + "\r")
      self.stream.flush()
      self.width = 0


def repeating(epoch_data: Callable[[], tf.data.Dataset]
              ) -> Callable[..., tf.data.Dataset]:
  """A ``fit`` stream from a function giving one epoch of batches.

  For your own ``tf.data`` pipelines: the epoch is repeated and skipped
  ahead to the start step (so resuming costs reading the skipped batches;
  ``Task.train_data`` streams start at any step for the price of one
  shuffle). Single-host strategies only.
  """
  def make(start_step: int, input_context=None):
    if input_context is not None:
      raise ValueError("training.repeating: a single-host stream; use "
                       "Task.train_data under a multi-worker strategy")
    data = epoch_data().repeat()
    return data.skip(start_step) if start_step else data
  return make


class EpochLearningRate(keras.callbacks.Callback):
  """Records the learning rate at each epoch's end in the epoch's logs
  (``lr``, so Keras' History keeps it); epoch-level only, no per-step
  Python."""

  def on_epoch_end(self, epoch, logs=None):
    if logs is None:
      return
    from lottery_tf.training import optimizers  # pylint: disable=g-import-not-at-top
    opt = self.model.optimizer
    try:
      schedule = optimizers.schedule_of(opt)
      logs["lr"] = float(schedule(optimizers.global_step(opt)))
    except (ValueError, TypeError, AttributeError):
      logs["lr"] = float(keras.backend.get_value(opt.learning_rate))


@dataclasses.dataclass
class FitResult:
  steps: int
  seconds: float
  history: Dict[str, list]

  @property
  def ms_per_step(self) -> float:
    return 1000.0 * self.seconds / max(self.steps, 1)


def fit(train_model: TrainModel, train_data: Callable[..., tf.data.Dataset], *,
        steps_per_epoch: int, start_step: int, end_step: int,
        boundaries: Sequence[int] = (), callbacks: Iterable = (),
        verbose=2, validation_data=None) -> FitResult:
  """Trains from ``start_step`` to ``end_step`` (optimizer iterations).

  ``train_data(step, input_context=None)`` returns the endless training
  stream from batch ``step`` on (``Task.train_data``), so that a run split in
  segments (at a rewind point, or resumed from a checkpoint) sees the same
  batches in the same order as one that is not. Segments end at epoch edges
  and ``boundaries``, so callbacks see the iteration counts they need even
  with ``steps_per_execution`` > 1. Under a multi-worker strategy each worker
  builds its own shard (``distribute_datasets_from_function``); otherwise
  Keras splits the global batches over the local replicas.
  """
  cuts = {start_step, end_step}
  cuts.update(b for b in boundaries if start_step < b < end_step)
  cuts.update(range(math.ceil(start_step / steps_per_epoch) * steps_per_epoch,
                    end_step, steps_per_epoch))
  cuts = sorted(cuts)
  callbacks = [EpochLearningRate()] + list(callbacks)
  progress = None
  if verbose == LINE:
    verbose = 0
    if sys.stdout.isatty():
      progress = ProgressLine(start_step, end_step)
      callbacks.append(progress)
  history: Dict[str, list] = {}
  began = time.perf_counter()
  # Consecutive whole epochs run in one fit call (one iterator).
  segments, i = [], 0
  while i < len(cuts) - 1:
    a, b = cuts[i], cuts[i + 1]
    if a % steps_per_epoch == 0 and b - a == steps_per_epoch:
      j = i + 1
      while (j < len(cuts) - 1 and cuts[j + 1] - cuts[j] == steps_per_epoch
             and cuts[j] not in boundaries):
        j += 1
      segments.append((a, cuts[j], steps_per_epoch))
      i = j
    else:
      segments.append((a, b, b - a))
      i += 1
  strategy = train_model.distribute_strategy
  for a, b, per_epoch in segments:
    if distribute.is_multi_worker(strategy):
      data = strategy.distribute_datasets_from_function(
          lambda ctx, a=a: train_data(a, ctx))
    else:
      data = train_data(a)
    hist = train_model.fit(
        data, initial_epoch=a // per_epoch if per_epoch == steps_per_epoch else 0,
        epochs=(b // per_epoch if per_epoch == steps_per_epoch else 1),
        steps_per_epoch=per_epoch, callbacks=callbacks, verbose=verbose,
        validation_data=validation_data if b == end_step else None)
    # One history entry per epoch: a segment that ends mid-epoch (at a
    # boundary) leaves none; the epoch's last segment stands for it.
    if per_epoch == steps_per_epoch or b % steps_per_epoch == 0 or (
        b == end_step):
      for k, v in hist.history.items():
        history.setdefault(k, []).extend(v)
  seconds = time.perf_counter() - began
  if progress is not None:
    progress.erase()
  return FitResult(steps=end_step - start_step, seconds=seconds,
                   history=history)


def evaluate(model: keras.Model, datasets: Dict[str, Optional[tf.data.Dataset]]
             ) -> Dict[str, float]:
  """``{split}_accuracy`` and ``{split}_loss`` for each dataset given."""
  out = {}
  for split, data in datasets.items():
    if data is None:
      continue
    result = model.evaluate(data, verbose=0, return_dict=True)
    out[f"{split}_accuracy"] = float(result["accuracy"])
    out[f"{split}_loss"] = float(result["loss"])
  return out
