"""The datasets lottery_tf knows: one table row each.

Adding a TFDS image-classification dataset is one `DatasetSpec` in `_SPECS`
(or, from outside this file, `register(DatasetSpec(...))`; `unregister` undoes
it). Every row is checked when it is registered: a name used twice, or a
class count, shape or mean/std that cannot be right, is a one-line UserError.
Mean and std are per channel, of pixels scaled to [0, 1], over the train split.
"""
import dataclasses
from typing import Dict, List, Optional, Tuple

from lottery_tf.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to read one TFDS dataset and what its images look like."""
  name: str  # Our registry name (`--dataset`).
  tfds_name: str
  num_classes: int
  # Native (H, W, C); H and W are None for variable-size images (JPEGs).
  shape: Tuple[Optional[int], Optional[int], int]
  mean: Tuple[float, ...]
  std: Tuple[float, ...]
  image_key: str = "image"
  label_key: str = "label"
  # TFDS split names behind our "train" and "test" (the "validation" split is
  # carved from the tail of train).
  train_split: str = "train"
  test_split: str = "test"
  # Sizes of the TFDS splits, for `describe()` only; `info()` asks TFDS.
  num_train: Optional[int] = None
  num_test: Optional[int] = None
  embedded: bool = False  # Generated locally by lottery_tf.data.embedded.
  stats_source: str = ""  # Where mean/std come from.

  @property
  def variable_size(self) -> bool:
    return self.shape[0] is None


_SPECS = (
    # Embedded: stats computed once on their train split with
    # `lottery_tf.data.compute_stats` and hard-coded here.
    DatasetSpec("mnist_5k", "mnist_5k", 10, (28, 28, 1), (0.1311,), (0.3084,),
                num_train=4000, num_test=1000, embedded=True,
                stats_source="computed on the 4,000 train images"),
    DatasetSpec("digits", "digits", 10, (8, 8, 1), (0.3059,), (0.3764,),
                num_train=1437, num_test=360, embedded=True,
                stats_source="computed on the 1,437 train images"),
    DatasetSpec("mnist", "mnist", 10, (28, 28, 1), (0.1307,), (0.3081,),
                num_train=60000, num_test=10000,
                stats_source="standard MNIST constants"),
    DatasetSpec("fashion_mnist", "fashion_mnist", 10, (28, 28, 1),
                (0.2860,), (0.3530,), num_train=60000, num_test=10000,
                stats_source="standard Fashion-MNIST constants"),
    DatasetSpec("svhn_cropped", "svhn_cropped", 10, (32, 32, 3),
                (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970),
                num_train=73257, num_test=26032,
                stats_source="standard SVHN constants"),
    DatasetSpec("cifar10", "cifar10", 10, (32, 32, 3),
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                num_train=50000, num_test=10000,
                stats_source="standard CIFAR-10 constants"),
    DatasetSpec("cifar100", "cifar100", 100, (32, 32, 3),
                (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                num_train=50000, num_test=10000,
                stats_source="standard CIFAR-100 constants"),
    # Left camera only, as in Mehta (2019); category labels (5 classes).
    DatasetSpec("smallnorb", "smallnorb", 5, (96, 96, 1), (0.7530,), (0.1773,),
                label_key="label_category", num_train=24300, num_test=24300,
                stats_source="approximate; recompute with compute_stats"),
    DatasetSpec("imagenet2012", "imagenet2012", 1000, (None, None, 3),
                IMAGENET_MEAN, IMAGENET_STD, test_split="validation",
                num_train=1281167, num_test=50000,
                stats_source="standard ImageNet constants"),
    DatasetSpec("imagenet_resized/32x32", "imagenet_resized/32x32", 1000,
                (32, 32, 3), IMAGENET_MEAN, IMAGENET_STD,
                test_split="validation", num_train=1281167, num_test=50000,
                stats_source="ImageNet constants (full resolution)"),
    DatasetSpec("imagenet_resized/64x64", "imagenet_resized/64x64", 1000,
                (64, 64, 3), IMAGENET_MEAN, IMAGENET_STD,
                test_split="validation", num_train=1281167, num_test=50000,
                stats_source="ImageNet constants (full resolution)"),
    # Places365's own mean (the official Places365-CNN mean image), ImageNet's
    # std. Its "test" split has no labels: evaluate on "validation".
    DatasetSpec("places365_small", "places365_small", 365, (256, 256, 3),
                (0.4576, 0.4412, 0.4080), IMAGENET_STD,
                test_split="validation", num_train=1803460, num_test=36500,
                stats_source="Places365-CNN mean, ImageNet std"),
)

REGISTRY: Dict[str, DatasetSpec] = {}


def _check(spec) -> None:
  if not isinstance(spec, DatasetSpec):
    raise UserError(f"data.register: expected a DatasetSpec, got {spec!r}")
  where = f"data.register({spec.name!r})"
  if not isinstance(spec.name, str) or not spec.name or (
      spec.name.split() != [spec.name]):
    raise UserError(f"{where}: the name must be a non-empty string without "
                    "spaces (it is a --dataset value)")
  if not isinstance(spec.tfds_name, str) or not spec.tfds_name:
    raise UserError(f"{where}: tfds_name must name a TFDS builder")
  if (isinstance(spec.num_classes, bool) or
      not isinstance(spec.num_classes, int) or spec.num_classes < 2):
    raise UserError(f"{where}: num_classes must be an integer >= 2, got "
                    f"{spec.num_classes!r}")
  shape = tuple(spec.shape) if isinstance(spec.shape, (tuple, list)) else ()
  if (len(shape) != 3 or shape[2] not in (1, 3) or
      (shape[0] is None) != (shape[1] is None) or
      not all(d is None or (isinstance(d, int) and d >= 1)
              for d in shape[:2])):
    raise UserError(
        f"{where}: shape must be (height, width, channels) with 1 or 3 "
        f"channels (height and width None for images of varying size), got "
        f"{spec.shape!r}")
  for field, values in (("mean", spec.mean), ("std", spec.std)):
    if len(tuple(values)) != shape[2]:
      raise UserError(f"{where}: {field} needs one value per channel "
                      f"({shape[2]}), got {values!r}")
  if not all(0 <= m <= 1 for m in spec.mean) or not all(
      0 < s <= 1 for s in spec.std):
    raise UserError(f"{where}: mean and std are of pixels scaled to [0, 1] "
                    f"(std > 0), got mean {spec.mean!r}, std {spec.std!r}; "
                    "lottery_tf.data.compute_stats computes them")


def register(spec: DatasetSpec) -> DatasetSpec:
  """Adds `spec` as `--dataset=spec.name`; UserError if the name is taken or
  the row cannot be right. Returns `spec`; :func:`unregister` undoes it."""
  if isinstance(spec, DatasetSpec) and spec.name in REGISTRY:
    raise UserError(
        f"data.register: dataset {spec.name!r} is registered twice (first as "
        f"TFDS {REGISTRY[spec.name].tfds_name!r}); pick another name")
  _check(spec)
  REGISTRY[spec.name] = spec
  return spec


def unregister(name: str) -> DatasetSpec:
  """Removes dataset `name` (UserError if unknown); returns its spec.

  For tests and plugins that register a dataset for a while.
  """
  spec = get(name)
  del REGISTRY[name]
  return spec


for _spec in _SPECS:
  register(_spec)
del _spec


def names() -> List[str]:
  """Registry names, sorted."""
  return sorted(REGISTRY)


def get(name: str) -> DatasetSpec:
  """The spec of `name`, or a UserError naming --dataset."""
  try:
    return REGISTRY[name]
  except KeyError:
    raise UserError(
        f"--dataset: unknown dataset {name!r}; choose from: "
        f"{', '.join(names())}") from None


def describe() -> List[dict]:
  """One row per dataset for `lottery_tf list`; needs no data on disk."""
  rows = []
  for name in names():
    s = REGISTRY[name]
    h, w, c = s.shape
    rows.append({
        "name": name,
        "shape": f"{h or '?'}x{w or '?'}x{c}",
        "classes": s.num_classes,
        "train": s.num_train,
        "test": s.num_test,
        "embedded": s.embedded,
    })
  return rows
