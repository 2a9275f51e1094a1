"""One tf.data path for every dataset: TFDS -> classes -> input -> batches.

Order of operations (`load`):

  read TFDS split (files in order, one at a time; images still encoded)
  -> keep/relabel `--classes`          -> number the examples 0..n-1 (index)
  -> first `--train_examples` (train)  -> `indices`
  -> shard (`num_shards` > 1: every num_shards-th example, still encoded)
  -> [cache: decode -> input (below), or decode only (uint8), in memory]
  -> per epoch e = e0, e0+1, ... (training: endless with `start_batch`):
       shuffle (training; order = f(seed, e), one shared cache)
       -> skip to the resume point (first epoch only; still encoded)
       -> decode (if not cached)
          [--preprocessing=imagenet, training: per example, random-resized
           crop + flip, seeded by (seed, e, position)]
       -> batch
       -> input: float32 in [0, 1] -> channels -> size -> normalise
          (per batch if not cached already; eval of --preprocessing=imagenet:
           shorter side to size*256/224, centre crop)
       -> --augment (training): pad + crop + flip, seeded by (seed, e, batch)
  -> prefetch, options (deterministic; auto-shard OFF if sharded, else DATA)

Small splits are preprocessed once into a cache, so an epoch costs a
shuffle of the cache; larger ones are cached as decoded images, or, if that
does not fit (`CACHE_BYTES`), shuffled while still encoded
(`SHUFFLE_BUFFER`) and decoded every epoch. Training inputs of
--preprocessing=imagenet are never cached: their crops change every epoch.

Every random number is stateless, keyed by where it lands in the stream, so
`load(..., start_batch=k)` starts at batch k in O(1) epochs of work: it
opens epoch k // bpe directly and skips the first k % bpe batches of it
before decoding them.

Sharding is element-level, after the examples are numbered: indices stay
positions in the whole split and shards differ by at most one example, at
the price of every host reading (not decoding) the whole split. TFDS
file-level sharding would read less but give shards of uneven, unknown size
and lose split-wide indices.
"""
import dataclasses
import json
import os
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow_datasets as tfds

from lottery_tf.foundations import fs
from lottery_tf.foundations import workspace
from lottery_tf._keras import tf
from lottery_tf.data import embedded
from lottery_tf.data import prepare
from lottery_tf.data import preprocess
from lottery_tf.data import registry
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams

SPLITS = ("train", "validation", "test")
#: Cache a split in memory when it takes less than this (float32 inputs, or
#: else decoded uint8 images).
CACHE_BYTES = 200 * 2**20
#: Shuffle buffer (examples) for splits too large to cache.
SHUFFLE_BUFFER = 10_000
_AUTOTUNE = tf.data.AUTOTUNE
# Folded into a call's seed key, one per random stream, so order, batch
# augmentation and per-example crops never share Philox streams.
_SHUFFLE_SALT, _AUGMENT_SALT, _CROP_SALT = 1, 2, 3
# The last epoch of an endless stream (never reached).
_NO_END = 2**62

# (tfds name, dataset dir, split) -> examples per class; only for prepared
# data, whose TFDS info knows the split (never for mocks).
_LABEL_COUNTS: Dict[Tuple[str, str, str], np.ndarray] = {}
_COUNTS_FILE = "lottery_tf_label_counts.json"


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What a model needs to know about the data `load` yields for an hp."""
  name: str  # Registry name, e.g. "cifar10".
  input_shape: tuple  # (H, W, C) after preprocessing.
  num_classes: int  # After the class subset.
  num_examples: dict  # {"train", "validation", "test"} after subset and carve.
  source_shape: tuple  # Native (H, W, C); H, W None for variable-size images.
  transforms: tuple  # Human-readable preprocessing steps, in order.

  def to_dict(self) -> dict:
    return {
        "name": self.name,
        "input_shape": list(self.input_shape),
        "num_classes": self.num_classes,
        "num_examples": dict(self.num_examples),
        "source_shape": list(self.source_shape),
        "transforms": list(self.transforms),
    }


def names():
  """Registry names, sorted."""
  return registry.names()


# ----------------------------------------------------------------------------
# TFDS access.


def _data_dir(hp: DatasetHparams) -> Optional[str]:
  """``--data_dir``, checked: a directory there or one that can be made."""
  if not hp.data_dir:
    return None
  return workspace.prepare_dir(os.path.expanduser(hp.data_dir), "--data_dir")


def _builder(spec: registry.DatasetSpec, hp: DatasetHparams):
  """The TFDS builder of `spec`, its data generated or downloaded if needed.

  Data that cannot be prepared here (no network, no ImageNet archives, a
  module TFDS needs missing) is a one-line UserError at once, never a long
  retry loop (`prepare`).
  """
  data_dir = _data_dir(hp)
  if spec.embedded:
    embedded.prepare(spec.tfds_name, data_dir or "")
  builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
  if not spec.embedded:
    where = data_dir or embedded.default_data_dir()
    # A no-op when the data is there (and under tfds.testing.mock_data).
    try:
      prepare.prepare(builder, spec.name, spec.tfds_name, where)
    except UserError:
      raise
    except ImportError as e:
      # TFDS imports some modules only on its download path: a missing one
      # shows up only here, on the first dataset a fresh install prepares.
      module = e.name or str(e)
      raise UserError(
          f"--dataset: {spec.name} is not prepared in {where} (--data_dir) "
          f"and TFDS cannot prepare it without the Python module {module} "
          f"({type(e).__name__}: {_first_line(e)}); install it (`pip install "
          f"{module}`, or reinstall lottery_tf), or "
          f"{prepare.elsewhere(spec.tfds_name)}") from e
    except Exception as e:  # pylint: disable=broad-except
      raise UserError(
          f"--dataset: {spec.name} is not prepared in {where} (--data_dir) "
          f"and TFDS could not download it ({type(e).__name__}: "
          f"{_first_line(e)}); {prepare.elsewhere(spec.tfds_name)}") from e
  return builder


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:200] if text else ""


def _read(builder, spec, split: str):
  """The TFDS split in file order, images left encoded, as dicts.

  Counting uses this same read (not a labels-only one), so that under
  `tfds.testing.mock_data`, whose random examples depend on the features
  read, counts and batches agree.
  """
  decoders = tfds.decode.PartialDecoding(
      {spec.image_key: True, spec.label_key: True},
      decoders={spec.image_key: tfds.decode.SkipDecoding()})
  # One file at a time, in order: an example's position is then the same on
  # every run and every machine. No TFDS autocache: we cache decoded inputs.
  read_config = tfds.ReadConfig(interleave_cycle_length=1, try_autocache=False)
  return builder.as_dataset(split=split, shuffle_files=False,
                            decoders=decoders, read_config=read_config)


def _knows_splits(builder) -> bool:
  """Whether TFDS has split sizes (prepared data; not under mock_data)."""
  return bool(builder.info.splits)


def _split_size(builder, spec, split: str) -> int:
  if _knows_splits(builder):
    return int(builder.info.splits[split].num_examples)
  ds = _read(builder, spec, split)
  return int(ds.reduce(np.int64(0), lambda n, _: n + 1).numpy())


def _label_counts(builder, spec, split: str) -> np.ndarray:
  """Examples per class in `split`, counted once per process (and on disk)."""
  known = _knows_splits(builder)
  key = (spec.tfds_name, str(builder.data_dir), split)
  if known and key in _LABEL_COUNTS:
    return _LABEL_COUNTS[key]
  path = os.path.join(str(builder.data_dir), _COUNTS_FILE)
  stored = {}
  if known:
    try:
      stored = json.loads(fs.read_bytes(path).decode("utf-8"))
    except (OSError, ValueError, tf.errors.OpError):
      stored = {}
    if split in stored and len(stored[split]) == spec.num_classes:
      _LABEL_COUNTS[key] = np.array(stored[split], np.int64)
      return _LABEL_COUNTS[key]
  counts = np.zeros(spec.num_classes, np.int64)
  ds = _read(builder, spec, split)
  for labels in ds.map(lambda ex: ex[spec.label_key]).batch(8192):
    counts += np.bincount(labels.numpy(), minlength=spec.num_classes)
  if known:
    _LABEL_COUNTS[key] = counts
    stored[split] = counts.tolist()
    try:  # Best effort: the data dir may be read-only.
      tmp = f"{path}.{os.getpid()}.tmp"
      with fs.open(tmp, "w") as f:
        f.write(json.dumps(stored))
      fs.rename(tmp, path, overwrite=True)
    except (OSError, tf.errors.OpError):
      pass
  return counts


@dataclasses.dataclass(frozen=True)
class _Splits:
  """Our splits as TFDS split strings, and how many examples each yields."""
  tfds_split: Dict[str, Optional[str]]
  num_examples: Dict[str, int]


def _splits(builder, plan: preprocess.Plan, hp: DatasetHparams) -> _Splits:
  spec = plan.spec
  tfds_split = {"test": spec.test_split}
  if hp.validation_fraction:
    n_full = _split_size(builder, spec, spec.train_split)
    if n_full < 2:
      raise UserError(
          f"--validation_fraction: {spec.name} has only {n_full} training "
          "example(s), too few to hold some out")
    n_val = min(max(1, int(round(hp.validation_fraction * n_full))),
                n_full - 1)
    # Absolute TFDS slices: the validation split is the last n_val examples
    # of TFDS train, deterministically and without reading the rest.
    tfds_split["train"] = f"{spec.train_split}[:{n_full - n_val}]"
    tfds_split["validation"] = f"{spec.train_split}[{n_full - n_val}:]"
  else:
    tfds_split["train"] = spec.train_split
    tfds_split["validation"] = None

  num = {}
  for ours, theirs in tfds_split.items():
    if theirs is None:
      num[ours] = 0
    elif plan.classes:
      counts = _label_counts(builder, spec, theirs)
      num[ours] = int(sum(counts[c] for c in plan.classes))
    else:
      num[ours] = _split_size(builder, spec, theirs)
  if hp.train_examples:
    if hp.train_examples > num["train"]:
      after = (" (after --classes and --validation_fraction)"
               if plan.classes or hp.validation_fraction else "")
      raise UserError(
          f"--train_examples: {hp.train_examples} is more than the "
          f"{num['train']} training examples of {spec.name}{after}")
    num["train"] = hp.train_examples
  return _Splits(tfds_split=tfds_split,
                 num_examples={s: num[s] for s in SPLITS})


# ----------------------------------------------------------------------------
# Public API.


def info(hp: DatasetHparams) -> DataInfo:
  """Validate `hp` (UserError naming the flag) and describe what `load` yields.

  Builds an embedded dataset on first use. Counts come from TFDS's split info,
  or, where TFDS has none (e.g. under `tfds.testing.mock_data`) or a class
  subset is asked for, from counting the labels once.
  """
  plan = preprocess.make_plan(hp)
  builder = _builder(plan.spec, hp)
  splits = _splits(builder, plan, hp)
  return DataInfo(
      name=plan.spec.name,
      input_shape=plan.input_shape,
      num_classes=plan.num_classes,
      num_examples=dict(splits.num_examples),
      source_shape=tuple(plan.spec.shape),
      transforms=plan.transforms,
  )


def _check_indices(indices, n: int, split: str, name: str) -> np.ndarray:
  """A boolean mask over the n positions of the split, from `indices`."""
  idx = np.asarray(indices)
  if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
    raise UserError(
        f"indices: expected a 1-D array of integer positions, got shape "
        f"{idx.shape} and dtype {idx.dtype}")
  if idx.size and (idx.min() < 0 or idx.max() >= n):
    bad = idx.min() if idx.min() < 0 else idx.max()
    raise UserError(
        f"indices: position {bad} is out of range for the {n} examples of "
        f"{name} {split}")
  mask = np.zeros(n, bool)
  mask[idx.astype(np.int64)] = True
  return mask


def _decoder(builder, spec):
  """Encoded image -> uint8 image (one place, so tests can count decodes)."""
  return builder.info.features[spec.image_key].decode_example


def _seed_key(seed: int, shard_index: int) -> tf.Tensor:
  """The [2] int64 key every random stream of one `load` call derives from.

  `seed` is an op-level seed: TensorFlow's `get_seed` pairs it with the
  global seed (`tf.random.set_seed`) if one is set when `load` is called,
  else with its default graph seed, as any seeded op would. The shard is
  folded in so shards do not share crops, flips or orders.
  """
  global_seed, op_seed = tf.compat.v1.random.get_seed(int(seed))
  key = tf.constant([int(global_seed), int(op_seed)], tf.int64)
  return _fold(key, shard_index)


def _fold(key: tf.Tensor, *data) -> tf.Tensor:
  """`key` with each of `data` (ints or int64 tensors) folded in, in turn."""
  for d in data:
    key = tf.random.experimental.stateless_fold_in(
        key, tf.cast(d, tf.int64), alg="philox")
  return key


def _shuffle(ds: tf.data.Dataset, buffer: int, key: tf.Tensor, epoch):
  """`ds` shuffled in epoch `epoch`'s order: a function of (key, epoch) only.

  Called while `flat_map` traces its function. The shuffle seed already
  folds in the global seed (see `_seed_key`), so the traced graph's inherited
  global seed is blanked for the call: TF would otherwise add it again and,
  for `tf.random.set_seed(0)`, compare the symbolic seed with 0 and fail.
  """
  seed = tf.random.stateless_uniform(
      [], _fold(key, _SHUFFLE_SALT, epoch), minval=1, maxval=2**31 - 1,
      dtype=tf.int64, alg="philox")
  graph = tf.compat.v1.get_default_graph()
  saved = graph.seed
  graph.seed = None
  try:
    return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)
  finally:
    graph.seed = saved


def _map(ds: tf.data.Dataset, fn) -> tf.data.Dataset:
  return ds.map(fn, num_parallel_calls=_AUTOTUNE, deterministic=True)


def _check_int(name: str, value, minimum: int) -> int:
  if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
      or value < minimum):
    raise ValueError(
        f"{name} must be an integer >= {minimum}, got {value!r}")
  return int(value)


def batches_per_epoch(n: int, batch_size: int, drop_remainder: bool) -> int:
  """Batches in one epoch of `n` examples."""
  return n // batch_size if drop_remainder else -(-n // batch_size)


def shard_size(n: int, num_shards: int, shard_index: int) -> int:
  """Examples of `n` in shard `shard_index` (every num_shards-th, from it)."""
  return len(range(shard_index, n, num_shards))


def load(hp: DatasetHparams, split: str, *, batch_size: int, seed: int = 0,
         training: bool = False, indices=None, with_index: bool = False,
         drop_remainder: bool = False, start_batch: Optional[int] = None,
         num_shards: int = 1, shard_index: int = 0) -> tf.data.Dataset:
  """Batches of `(image, label)` (or `(image, label, index)`) of one split.

  Args:
    hp: the dataset hparams (validated here; bad ones raise UserError naming
      the flag).
    split: "train", "validation" (the last `validation_fraction` of TFDS
      train, the rest being "train") or "test" (TFDS "test", or "validation"
      for ImageNet and Places365).
    batch_size: examples per batch.
    seed: order and augmentation seed (used when `training`).
    training: shuffle (epoch e in an order that is a function of `seed` and
      e) and augment (`hp.augment`, or the random-resized crop + flip of
      `hp.preprocessing="imagenet"`). Otherwise split order, the evaluation
      transform and no augmentation.
    indices: optional positions (see `index` below) to keep; the others are
      dropped. Order and duplicates do not matter: the kept examples come in
      split order (shuffled if `training`).
    with_index: also yield each example's index.
    drop_remainder: drop the last, smaller batch (of every epoch).
    start_batch: None: one epoch (epoch 0 when `training`). An integer k >= 0
      (`training` only): an endless stream of batches, epochs 0, 1, 2, ...
      back to back, from batch k on, i.e. from batch k % bpe of epoch
      k // bpe, bpe being the batches in one epoch of this shard
      (`batches_per_epoch`). `load(..., start_batch=k)` yields exactly what
      `load(..., start_batch=0).skip(k)` does, without the work of the
      skipped batches: earlier epochs are not read at all, and the skipped
      examples of epoch k // bpe are skipped before they are decoded.
    num_shards, shard_index: keep only shard `shard_index` of `num_shards`
      (one per input pipeline / host): every num_shards-th example of the
      split (after `--classes`, `--train_examples` and `indices`), from
      example `shard_index` on. Indices stay positions in the whole split.
      A shard is shuffled, batched and augmented on its own (its own bpe),
      with the shard folded into its seeds.

  The **index** of an example is its position, counting from 0, in the split
  as `load(hp, split, training=False)` yields it: after `--classes` and the
  validation carve, i.e. within exactly this split for these hparams. It is
  the same on every run and machine (TFDS files read in order). With no
  `--classes`, "train" and "test" indices are positions in the TFDS split,
  and a "validation" index i is TFDS train position `m + i`, m being the size
  of "train" before `--train_examples`.
  Per-example scores kept in an array of length `num_examples[split]` are
  keyed by it; pass a subset of them back as `indices`.

  Images are float32 [H, W, C] (`info(hp).input_shape`), labels int32 in
  0..num_classes-1, indices int64.

  Determinism: every random number is a function of (`seed`, the global seed
  at the time of the call, shard, epoch, position). Epoch e's order comes
  from a shuffle seeded with (seed, e); `--augment` draws one stateless seed
  per (seed, epoch, batch of the epoch), `--preprocessing=imagenet` one per
  (seed, epoch, example of the epoch). `seed` is an op-level seed: TensorFlow
  pairs it with the global seed (`tf.random.set_seed`) if one is set when
  `load` is called, so the same (seed, global seed) gives the same batches
  run to run, and a resumed stream the same batches as an unbroken one.
  The dataset's options: deterministic, and auto-sharding off when
  `num_shards` > 1 (sharded here), DATA otherwise (never FILE: the files are
  read in order, one at a time).
  """
  batch_size, num_shards, shard_index, start_batch = _check_load_args(
      split, batch_size, training, start_batch, num_shards, shard_index)
  plan = preprocess.make_plan(hp)
  if split == "validation" and not hp.validation_fraction:
    raise UserError(
        "--validation_fraction: is 0, so there is no validation split; set it "
        "above 0 (e.g. 0.1) to hold out the tail of train")
  builder = _builder(plan.spec, hp)
  splits = _splits(builder, plan, hp)
  ds = _source(builder, plan, splits.tfds_split[split])
  ds, n = _select(ds, hp, split, indices, splits.num_examples[split],
                  plan.spec.name)
  ds, n = _shard(ds, n, num_shards, shard_index)
  bpe = _epoch_batches(n, batch_size, drop_remainder, start_batch)
  decode = _decoder(builder, plan.spec)
  cached = _cache_kind(plan, n, training)
  epochs = _Epochs(
      source=_cache(ds, cached, decode, plan), plan=plan, decode=decode,
      cached=cached, key=_seed_key(seed, shard_index), n=n,
      batch_size=batch_size, drop_remainder=drop_remainder,
      training=training)
  ds = _stream(epochs, training, start_batch, bpe)
  return _deliver(ds, with_index, num_shards)


def _check_load_args(split, batch_size, training, start_batch, num_shards,
                     shard_index) -> Tuple[int, int, int, Optional[int]]:
  """`load`'s arguments checked (ValueError): ints, or None for start_batch."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  if (isinstance(batch_size, bool)
      or not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
    raise ValueError(
        f"batch_size must be a positive integer, got {batch_size!r}")
  batch_size = int(batch_size)
  num_shards = _check_int("num_shards", num_shards, 1)
  if (isinstance(shard_index, bool)
      or not isinstance(shard_index, (int, np.integer))
      or not 0 <= shard_index < num_shards):
    raise ValueError(
        f"shard_index must be an integer in [0, num_shards={num_shards}), "
        f"got {shard_index!r}")
  shard_index = int(shard_index)
  if start_batch is not None:
    start_batch = _check_int("start_batch", start_batch, 0)
    if not training:
      raise ValueError(
          "start_batch: only a training stream (training=True) resumes; "
          "evaluation data is one epoch in a fixed order")
  return batch_size, num_shards, shard_index, start_batch


def _source(builder, plan: preprocess.Plan, tfds_split: str
            ) -> tf.data.Dataset:
  """(index, (image, label)) of the split in file order, `--classes` kept
  and relabelled, numbered 0..n-1; images still encoded."""
  spec = plan.spec
  ds = _read(builder, spec, tfds_split)
  ds = ds.map(lambda ex: (ex[spec.image_key], ex[spec.label_key]))
  if plan.classes:
    new_label = np.full(spec.num_classes, -1, np.int64)
    new_label[list(plan.classes)] = np.arange(len(plan.classes))
    new_label = tf.constant(new_label)
    ds = ds.filter(lambda image, label: tf.gather(new_label, label) >= 0)
    ds = ds.map(lambda image, label: (image, tf.gather(new_label, label)))
  ds = ds.map(lambda image, label: (image, tf.cast(label, tf.int32)))
  return ds.enumerate()  # Index int64.


def _select(ds: tf.data.Dataset, hp: DatasetHparams, split: str, indices,
            n: int, name: str) -> Tuple[tf.data.Dataset, int]:
  """(image, label, index) of the examples `--train_examples` and `indices`
  keep, and how many they are (`n` before)."""
  if split == "train" and hp.train_examples:
    ds = ds.take(hp.train_examples)
  if indices is not None:
    mask = _check_indices(indices, n, split, name)
    n = int(mask.sum())
    mask = tf.constant(mask)
    ds = ds.filter(lambda index, example: tf.gather(mask, index))
  ds = ds.map(lambda index, example: (example[0], example[1], index))
  return ds, n


def _shard(ds: tf.data.Dataset, n: int, num_shards: int, shard_index: int
           ) -> Tuple[tf.data.Dataset, int]:
  """Shard `shard_index` of `ds` (of `n` examples), and its size."""
  if num_shards > 1:
    # Element-level, still encoded: each host decodes only its own shard.
    ds = ds.shard(num_shards, shard_index)
    n = shard_size(n, num_shards, shard_index)
  return ds, n


def _epoch_batches(n: int, batch_size: int, drop_remainder: bool,
                   start_batch: Optional[int]) -> int:
  """`batches_per_epoch`, refused (ValueError) if 0 for an endless stream."""
  bpe = batches_per_epoch(n, batch_size, drop_remainder)
  if start_batch is not None and bpe == 0:
    raise ValueError(
        f"start_batch: an endless stream needs at least one batch an epoch, "
        f"and {n} example(s) in batches of {batch_size}"
        f"{' (drop_remainder)' if drop_remainder else ''} make none")
  return bpe


def _cache_kind(plan: preprocess.Plan, n: int, training: bool
                ) -> Optional[str]:
  """What of `n` examples to cache: "input", "raw" (decoded) or None."""
  spec = plan.spec
  h, w, c = plan.input_shape
  input_bytes = n * h * w * c * 4
  raw_bytes = None if spec.variable_size else n * int(np.prod(spec.shape))
  # Training inputs of --preprocessing=imagenet are random crops, made anew
  # every epoch: they cannot be cached, only the decoded source images can.
  if not (training and plan.random_crop) and input_bytes <= CACHE_BYTES:
    return "input"
  if raw_bytes is not None and raw_bytes <= CACHE_BYTES:
    return "raw"
  return None


def _decode_to_input(decode, plan: preprocess.Plan):
  def fn(image, label, index):
    return preprocess.to_input(decode(image), plan), label, index
  return fn


def _decode_only(decode):
  def fn(image, label, index):
    return decode(image), label, index
  return fn


def _cache(ds: tf.data.Dataset, cached: Optional[str], decode,
           plan: preprocess.Plan) -> tf.data.Dataset:
  """`ds` decoded (to inputs if "input") and cached in memory, as `cached`
  says; as is if None."""
  if cached == "input":
    return _map(ds, _decode_to_input(decode, plan)).cache()
  if cached == "raw":
    return _map(ds, _decode_only(decode)).cache()
  return ds


@dataclasses.dataclass(frozen=True)
class _Epochs:
  """The batches of any epoch of one `load` call's shard, from its source."""
  source: tf.data.Dataset  # (image, label, index); cached as `cached` says.
  plan: preprocess.Plan
  decode: Callable  # Encoded image -> uint8 image.
  cached: Optional[str]  # `_cache_kind`.
  key: tf.Tensor  # `_seed_key`.
  n: int
  batch_size: int
  drop_remainder: bool
  training: bool

  @property
  def crop_per_example(self) -> bool:
    return self.training and self.plan.random_crop

  @property
  def per_batch_input(self) -> bool:
    return (self.cached != "input" and not self.plan.spec.variable_size
            and not self.crop_per_example)

  def batches(self, epoch, first_batch) -> tf.data.Dataset:
    """Batches first_batch, first_batch + 1, ... of epoch `epoch`."""
    d = self._order(epoch)
    skip = first_batch * self.batch_size
    if self.training:
      d = d.skip(skip)  # Still encoded if not cached: no decode wasted.
    d = self._decode(d, epoch, skip)
    d = self._batch(d)
    return self._augment(d, epoch, first_batch)

  def _order(self, epoch) -> tf.data.Dataset:
    """The source in epoch `epoch`'s order (split order if not training)."""
    if not (self.training and self.n > 1):
      return self.source
    buffer = self.n if self.cached else min(self.n, SHUFFLE_BUFFER)
    return _shuffle(self.source, buffer, self.key, epoch)

  def _decode(self, d: tf.data.Dataset, epoch, skip) -> tf.data.Dataset:
    """What is not cached yet decoded, as far as batching needs it."""
    if self.crop_per_example:
      return _map(d.enumerate(start=skip), self._crop(epoch))
    if self.cached is None:
      # Variable-size images must reach one size before they can be batched.
      return _map(d, _decode_to_input(self.decode, self.plan)
                  if self.plan.spec.variable_size
                  else _decode_only(self.decode))
    return d

  def _crop(self, epoch):
    """(position in the epoch, example) -> its random-resized crop."""
    decode = None if self.cached else self.decode

    def crop(position, example):
      image, label, index = example
      x = preprocess.imagenet_train_input(
          image, _fold(self.key, _CROP_SALT, epoch, position), self.plan,
          decode=decode)
      return x, label, index
    return crop

  def _batch(self, d: tf.data.Dataset) -> tf.data.Dataset:
    """Batched, then turned into inputs if no earlier step did."""
    d = d.batch(self.batch_size, drop_remainder=self.drop_remainder,
                num_parallel_calls=_AUTOTUNE, deterministic=True)
    if self.per_batch_input:
      d = _map(d, lambda images, labels, index: (
          preprocess.to_input(images, self.plan), labels, index))
    return d

  def _augment(self, d: tf.data.Dataset, epoch, first_batch
               ) -> tf.data.Dataset:
    """--augment (training), seeded by each batch's number in the epoch."""
    if not (self.training and self.plan.augment):
      return d

    def augment(batch, example):
      images, labels, index = example
      return (preprocess.augment_batch(
          images, _fold(self.key, _AUGMENT_SALT, epoch, batch), self.plan),
              labels, index)
    return _map(d.enumerate(start=first_batch), augment)


def _stream(epochs: _Epochs, training: bool, start_batch: Optional[int],
            bpe: int) -> tf.data.Dataset:
  """One epoch (0), or the endless run of epochs from batch `start_batch`."""
  if not training:
    return epochs.batches(0, 0)
  if start_batch is None:
    return tf.data.Dataset.range(1).flat_map(
        lambda epoch: epochs.batches(epoch, 0))
  first_epoch, offset = divmod(start_batch, bpe)
  ds = tf.data.Dataset.range(first_epoch, _NO_END).flat_map(
      lambda epoch: epochs.batches(epoch, tf.where(
          tf.equal(epoch, first_epoch), tf.constant(offset, tf.int64),
          tf.constant(0, tf.int64))))
  return ds.apply(tf.data.experimental.assert_cardinality(
      tf.data.INFINITE_CARDINALITY))


def _deliver(ds: tf.data.Dataset, with_index: bool, num_shards: int
             ) -> tf.data.Dataset:
  """The index dropped unless asked for, prefetched, with `load`'s options."""
  if not with_index:
    ds = ds.map(lambda images, labels, index: (images, labels))
  ds = ds.prefetch(_AUTOTUNE)
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.OFF if num_shards > 1
      else tf.data.experimental.AutoShardPolicy.DATA)
  return ds.with_options(options)


def compute_stats(hp: DatasetHparams, split: str = "train"
                  ) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
  """Per-channel mean and std of the native images in [0, 1] (registry use).

  Reads the TFDS split (the whole of TFDS train for "train"); ignores every
  preprocessing field of `hp` but `dataset` and `data_dir`.
  """
  spec = registry.get(hp.dataset)
  builder = _builder(spec, hp)
  tfds_split = spec.test_split if split == "test" else spec.train_split
  decode = builder.info.features[spec.image_key].decode_example
  ds = _read(builder, spec, tfds_split).map(
      lambda ex: tf.reshape(tf.cast(decode(ex[spec.image_key]), tf.float64)
                            / 255.0, [-1, spec.shape[2]]),
      num_parallel_calls=_AUTOTUNE)
  zero = tf.zeros([spec.shape[2]], tf.float64)

  def accumulate(state, pixels):
    total, squares, count = state
    return (total + tf.reduce_sum(pixels, 0),
            squares + tf.reduce_sum(pixels * pixels, 0),
            count + tf.cast(tf.shape(pixels)[0], tf.float64))

  total, squares, count = ds.reduce((zero, zero, tf.constant(0, tf.float64)),
                                    accumulate)
  mean = total.numpy() / count.numpy()
  std = np.sqrt(squares.numpy() / count.numpy() - mean**2)
  return tuple(float(m) for m in mean), tuple(float(s) for s in std)
