"""The datasets lottery_tf knows: one table row each.

Adding a TFDS image-classification dataset is one `DatasetSpec` in `_SPECS`.
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

REGISTRY: Dict[str, DatasetSpec] = {s.name: s for s in _SPECS}


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
