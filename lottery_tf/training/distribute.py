"""tf.distribute for every training command: one strategy per process.

``--strategy`` picks it (TrainingHparams.strategy):

  default       the default strategy: one device, no distribution code
  mirrored      MirroredStrategy over all local GPUs (or, on a machine
                without GPUs, over the logical CPUs made by --cpu_devices)
  multi_worker  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG
  one_device    OneDeviceStrategy on the first GPU (else the CPU)
  tpu           TPUStrategy on --tpu (or the local TPU / $TPU_NAME)

The model, its pruning wrappers, the optimizer and the metrics are created
under :func:`scope`; ``--batch_size`` is the global batch, split evenly over
the replicas (Keras splits a dataset's global batches; under multi_worker
each worker reads its own shard, see ``lottery_tf.training.train.fit``).

Masks are not distributed state in lottery_tf: they are computed in NumPy
between runs from the trained weights, which are identical on every replica
and worker (synchronous training; MultiWorkerMirroredStrategy broadcasts the
chief's initial values), so every worker computes the same masks and assigns
them to its own copies (tests/test_distribute.py checks that two workers
write identical masks; nothing compares them at run time).

A strategy configures the TensorFlow runtime (logical devices, the
collective-ops server), which must happen before TensorFlow runs its first
op: the CLI calls :func:`setup` first thing; the Python API calls it from
``Task.scope()``.
"""
import contextlib
import json
import os
from typing import Optional

from lottery_tf._keras import tf
from lottery_tf.errors import UserError

_STRATEGY: Optional[tf.distribute.Strategy] = None
_KEY = None


def _configure_cpus(n: int) -> None:
  """Splits the CPU into ``n`` logical devices (once, before TF starts).

  ``n`` is validated (>= 0) by :func:`validate`, which :func:`setup` runs first.
  """
  if n <= 1:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  current = tf.config.get_logical_device_configuration(cpu)
  if current is not None and len(current) == n:
    return
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
  except RuntimeError as e:
    raise UserError(
        f"--cpu_devices: cannot split the CPU into {n} devices after "
        "TensorFlow has started; set it before any TensorFlow work (the CLI "
        "does)") from e


def tf_config() -> dict:
  """The parsed ``TF_CONFIG`` (``{}`` when unset); UserError when malformed."""
  text = os.environ.get("TF_CONFIG", "")
  if not text.strip():
    return {}
  try:
    config = json.loads(text)
  except ValueError as e:
    raise UserError(f"TF_CONFIG: not valid JSON ({e})") from e
  if not isinstance(config, dict) or not isinstance(config.get("cluster"),
                                                    dict):
    raise UserError("TF_CONFIG: needs a \"cluster\" object, e.g. "
                    "{\"cluster\": {\"worker\": [\"host1:port\", "
                    "\"host2:port\"]}, \"task\": {\"type\": \"worker\", "
                    "\"index\": 0}}")
  task = config.get("task")
  if not isinstance(task, dict) or "type" not in task or "index" not in task:
    raise UserError("TF_CONFIG: needs a \"task\" with \"type\" and \"index\"")
  jobs = config["cluster"].get(task["type"])
  if not isinstance(jobs, list) or not 0 <= int(task["index"]) < len(jobs):
    raise UserError(f"TF_CONFIG: task {task['type']}:{task['index']} is not "
                    "in the cluster")
  return config


def _make(name: str, tpu: str) -> tf.distribute.Strategy:
  """The strategy ``name``: one of training.hparams.STRATEGIES, as
  :func:`setup` has checked (:func:`validate`) before calling here."""
  if name == "default":
    return tf.distribute.get_strategy()
  # Physical, not logical: listing logical devices starts the runtime, after
  # which multi_worker can no longer configure its collectives.
  gpus = tf.config.list_physical_devices("GPU")
  if name == "mirrored":
    if gpus:
      return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(
        cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
  if name == "multi_worker":
    if not tf_config():
      raise UserError(
          "--strategy: multi_worker needs TF_CONFIG (the cluster and this "
          "worker's place in it); see README, Scaling up")
    # RING collectives work on CPUs and GPUs; NCCL is picked on GPUs by AUTO.
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=(tf.distribute.experimental.CommunicationImplementation
                        .AUTO if gpus else tf.distribute.experimental
                        .CommunicationImplementation.RING))
    try:
      return tf.distribute.MultiWorkerMirroredStrategy(
          communication_options=options)
    except RuntimeError as e:
      raise UserError(
          "--strategy: multi_worker must be set up before TensorFlow runs "
          f"its first op (the CLI does so; in Python, call "
          f"lottery_tf.training.distribute.setup first): {e}") from e
  if name == "tpu":
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
          tpu=tpu or None)
      tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
      detail = " ".join(str(e).split())[:160]
      raise UserError(f"--tpu: no TPU found at {tpu or 'the local machine'} "
                      f"({type(e).__name__}: {detail})") from e
    return tf.distribute.TPUStrategy(resolver)


def validate(thp) -> None:
  """UserError naming the flag for bad distribution/precision settings."""
  thp.check()
  if thp.cpu_devices < 0:
    raise UserError(f"--cpu_devices: must be >= 0, got {thp.cpu_devices}")
  if thp.checkpoint_every < 0:
    raise UserError(
        f"--checkpoint_every: must be >= 0, got {thp.checkpoint_every}")
  if thp.strategy == "multi_worker":
    tf_config()


def setup(thp) -> tf.distribute.Strategy:
  """The process's strategy for ``thp`` (created on first call).

  A process has one strategy: asking for another later is a UserError, as
  TensorFlow cannot reconfigure its devices or cluster once started.
  """
  global _STRATEGY, _KEY
  validate(thp)
  key = (thp.strategy, thp.cpu_devices, thp.tpu)
  if _STRATEGY is not None:
    if key != _KEY:
      raise UserError(
          f"--strategy: this process already runs {_KEY[0]} "
          f"(--cpu_devices={_KEY[1]}); TensorFlow cannot switch to "
          f"{thp.strategy} (--cpu_devices={thp.cpu_devices}) in the same "
          "process")
    check_batch(thp)
    return _STRATEGY
  _configure_cpus(thp.cpu_devices)
  strategy = _make(thp.strategy, thp.tpu)
  _STRATEGY, _KEY = strategy, key
  check_batch(thp)
  return strategy


def get() -> tf.distribute.Strategy:
  """The strategy :func:`setup` made, or the default strategy."""
  return _STRATEGY if _STRATEGY is not None else tf.distribute.get_strategy()


def check_batch(thp, batch_size: Optional[int] = None,
                flag: str = "--batch_size") -> None:
  """The global batch must split evenly over the replicas."""
  n = get().num_replicas_in_sync
  b = thp.batch_size if batch_size is None else batch_size
  if b % n:
    raise UserError(f"{flag}: the global batch {b} does not split evenly "
                    f"over the {n} replicas of --strategy={thp.strategy}")


def is_multi_worker(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
  strategy = strategy or get()
  return bool(getattr(strategy.extended, "_in_multi_worker_mode",
                      lambda: False)())


def worker_index(strategy: Optional[tf.distribute.Strategy] = None) -> int:
  """This worker's index among the workers (0 when not multi-worker)."""
  strategy = strategy or get()
  if not is_multi_worker(strategy):
    return 0
  resolver = strategy.cluster_resolver
  index = int(resolver.task_id or 0)
  # A separate "chief" job counts as worker 0.
  spec = resolver.cluster_spec().as_dict()
  if "chief" in spec and resolver.task_type == "worker":
    index += len(spec["chief"])
  return index


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
  """Whether this process writes results (always, unless multi-worker)."""
  strategy = strategy or get()
  if not is_multi_worker(strategy):
    return True
  resolver = strategy.cluster_resolver
  if resolver.task_type == "chief":
    return True
  spec = resolver.cluster_spec().as_dict()
  return "chief" not in spec and resolver.task_type == "worker" and int(
      resolver.task_id or 0) == 0


def policy_scope(mixed_precision: str):
  """A Keras dtype-policy scope (``mixed_float16``/``mixed_bfloat16``)."""
  if not mixed_precision:
    return contextlib.nullcontext()
  from tf_keras.src.mixed_precision import policy  # pylint: disable=g-import-not-at-top
  return policy.policy_scope(mixed_precision)


@contextlib.contextmanager
def scope(thp):
  """Strategy scope + dtype policy: create models and compile inside it."""
  strategy = setup(thp)
  with strategy.scope(), policy_scope(thp.mixed_precision):
    yield strategy
