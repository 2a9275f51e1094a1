"""DatasetHparams: which data, and how it reaches the network."""
import dataclasses

from lottery_tf.foundations.hparams import Hparams, field

#: How --image_size is reached (data/preprocess.py).
RESIZE_METHODS = ("resize", "pad")


#: Named preprocessings; "" is resize/pad per --resize_method.
PREPROCESSINGS = ("", "imagenet")


@dataclasses.dataclass(frozen=True)
class DatasetHparams(Hparams):
  group = "dataset"
  dataset: str = field(
      "mnist_5k", "Dataset name (see `lottery_tf list`).", always_hashed=True)
  image_size: int = field(
      0, "Bring images to this height and width (0 = the dataset's own).")
  channels: int = field(
      0, "Bring images to 1 or 3 channels (0 = the dataset's own).")
  resize_method: str = field(
      "resize", choices=RESIZE_METHODS, help= "How to reach --image_size: `resize` (bilinear) or `pad` "
      "(zero-pad, or centre-crop when smaller).")
  normalize: bool = field(
      True, "Subtract the dataset's per-channel mean, divide by its std.")
  augment: bool = field(
      False, "Train-time augmentation: pad 4 + random crop + horizontal flip.")
  classes: str = field(
      "", "Keep only these classes, relabelled 0..k-1 in the order given, "
      "e.g. `0-4` or `5,6,7,8,9` (empty = all).")
  validation_fraction: float = field(
      0.0, "Hold out this fraction of train (its tail) as the validation split.")
  train_examples: int = field(
      0, "Use only the first N training examples (0 = all).")
  preprocessing: str = field(
      "", choices=PREPROCESSINGS, help= "Named preprocessing: empty = resize/pad per --resize_method (and, "
      "with --augment, pad + random crop + flip); `imagenet` = train: "
      "random-resized crop to --image_size + horizontal flip, eval: resize "
      "to --image_size*256/224 + centre crop (needs --image_size; replaces "
      "--augment, which it excludes).")
  data_dir: str = field(
      "", "TFDS data directory (empty = TFDS's default).", affects_results=False)
