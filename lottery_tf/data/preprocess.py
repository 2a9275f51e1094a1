"""From DatasetHparams to a validated plan, and the tensor ops that apply it.

`to_input` and `augment_batch` work on one image [H, W, C] or a batch
[B, H, W, C] alike, so the pipeline can run them per example (before a cache)
or per batch (cheaper). `imagenet_train_input` (the random-resized crop of
`--preprocessing=imagenet`) works on one image, before batching: source images
differ in size.

Every random op is stateless: its seed is an argument, so the pipeline can
give each batch (or example) a seed that is a function of where it sits in the
stream, and a resumed stream gets the same numbers.
"""
import dataclasses
import math
import re
from typing import Callable, List, Optional, Tuple

from lottery_tf._keras import tf
from lottery_tf.data import registry
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
# --preprocessing=imagenet, as torchvision's RandomResizedCrop(size) and
# Resize(size * 256 / 224) + CenterCrop(size), the ResNet recipe.
CROP_AREA = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
CROP_ATTEMPTS = 10
EVAL_RESIZE_RATIO = 256.0 / 224.0
# ITU-R 601 luma, the weights of tf.image.rgb_to_grayscale.
LUMA = (0.2989, 0.5870, 0.1140)
AUGMENT_PAD = 4


def _range_text(ids) -> str:
  return ",".join(str(i) for i in ids)


def parse_classes(text: str, num_classes: int, dataset: str = ""
                  ) -> Optional[Tuple[int, ...]]:
  """"0-4", "5,6,7,8,9", "0-2,7" -> class ids in the order given; "" -> None."""
  text = (text or "").strip()
  if not text:
    return None
  ids = []
  for part in text.split(","):
    part = part.strip()
    m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
    if not m:
      raise UserError(
          f"--classes: cannot parse {text!r}; use class ids and ranges such "
          "as `0-4`, `5,6,7,8,9` or `0-2,7`")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else lo
    if hi < lo:
      raise UserError(f"--classes: empty range {part!r} in {text!r}")
    ids.extend(range(lo, hi + 1))
  bad = [i for i in ids if i >= num_classes]
  if bad:
    raise UserError(
        f"--classes: class {bad[0]} does not exist in {dataset or 'it'}"
        f" (classes 0-{num_classes - 1})")
  if len(set(ids)) != len(ids):
    dup = sorted({i for i in ids if ids.count(i) > 1})
    raise UserError(f"--classes: class {dup[0]} listed twice in {text!r}")
  if len(ids) < 2:
    raise UserError(
        f"--classes: need at least 2 classes, got {len(ids)} from {text!r}")
  return tuple(ids)


@dataclasses.dataclass(frozen=True)
class Plan:
  """Everything `load` needs to know about the preprocessing of `hp`."""
  spec: registry.DatasetSpec
  classes: Optional[Tuple[int, ...]]  # Original ids, in their new order.
  height: int
  width: int
  channels: int
  resize_method: str
  normalize: bool
  augment: bool  # --augment's pad + random crop + flip (per batch).
  preprocessing: str  # One of hparams.PREPROCESSINGS ("": none).
  mean: Tuple[float, ...]  # Per output channel, after channel/pad adjustment.
  std: Tuple[float, ...]
  transforms: Tuple[str, ...]

  @property
  def input_shape(self) -> Tuple[int, int, int]:
    return (self.height, self.width, self.channels)

  @property
  def num_classes(self) -> int:
    return len(self.classes) if self.classes else self.spec.num_classes

  @property
  def black(self) -> Tuple[float, ...]:
    """The value a black (all-zero) pixel has after normalisation."""
    if not self.normalize:
      return (0.0,) * self.channels
    return tuple(-m / s for m, s in zip(self.mean, self.std))

  @property
  def random_crop(self) -> bool:
    """Training inputs come from a random-resized crop, one example at a time
    (`imagenet_train_input`), not from `to_input`."""
    return self.preprocessing == "imagenet"

  @property
  def eval_resize(self) -> int:
    """--preprocessing=imagenet: the shorter side before the centre crop."""
    return int(round(self.height * EVAL_RESIZE_RATIO))

  @property
  def augment_pad(self) -> int:
    # CIFAR's pad 4 is an eighth of 32; keep that ratio on smaller images so
    # an 8x8 digit is not shifted by half its width.
    size = min(self.height, self.width)
    return AUGMENT_PAD if size >= 32 else max(1, size // 8)


def _check_number(flag, value, ok, expected):
  if isinstance(value, bool) or not ok(value):
    raise UserError(f"--{flag}: must be {expected}, got {value!r}")


def make_plan(hp: DatasetHparams) -> Plan:
  """Validate `hp` (UserError naming the flag) and work out the transforms."""
  spec = registry.get(hp.dataset)
  _check_numbers(hp)
  preprocessing = _check_preprocessing(hp, spec)
  classes = parse_classes(hp.classes, spec.num_classes, spec.name)

  h0, w0, c0 = spec.shape
  size = hp.image_size
  height, width = (size, size) if size else (h0, w0)
  channels = hp.channels or c0
  mean, std = list(spec.mean), list(spec.std)
  transforms = _subset_steps(hp, classes)
  if channels != c0:
    step, mean, std = _channel_step(c0, mean, std)
    transforms.append(step)
  steps, mean, std = _resize_steps(spec, hp.resize_method, preprocessing,
                                   height, width, mean, std)
  transforms += steps
  if hp.normalize:
    transforms.append("normalize mean/std")
  if hp.augment:
    transforms.append("augment (training): pad + random crop + horizontal flip")

  return Plan(spec=spec, classes=classes, height=height, width=width,
              channels=channels, resize_method=hp.resize_method,
              normalize=bool(hp.normalize), augment=bool(hp.augment),
              preprocessing=preprocessing, mean=tuple(mean), std=tuple(std),
              transforms=tuple(transforms))


def _check_numbers(hp: DatasetHparams):
  _check_number("image_size", hp.image_size,
                lambda v: isinstance(v, int) and v >= 0,
                "an integer >= 0 (0 = the dataset's own size)")
  _check_number("channels", hp.channels, lambda v: v in (0, 1, 3),
                "0 (the dataset's own), 1 or 3")
  _check_number("validation_fraction", hp.validation_fraction,
                lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
                "in [0, 1)")
  _check_number("train_examples", hp.train_examples,
                lambda v: isinstance(v, int) and v >= 0,
                "an integer >= 0 (0 = all)")


def _check_preprocessing(hp: DatasetHparams, spec: registry.DatasetSpec
                         ) -> str:
  """--preprocessing ("" if none), checked with the flags it constrains."""
  hp.check()  # --resize_method, --preprocessing: their declared choices.
  preprocessing = hp.preprocessing or ""
  if preprocessing == "imagenet":
    _check_imagenet(hp)
  if spec.variable_size and not hp.image_size:
    raise UserError(
        f"--image_size: {spec.name} has images of varying size; set "
        "--image_size (e.g. 224, or 64 for a quick run)")
  return preprocessing


def _check_imagenet(hp: DatasetHparams):
  """The flags --preprocessing=imagenet needs, or leaves to itself."""
  if not hp.image_size:
    raise UserError(
        "--image_size: --preprocessing=imagenet crops to --image_size x "
        "--image_size; set it (e.g. 224, or 64 for a quick run)")
  if hp.augment:
    raise UserError(
        "--augment: --preprocessing=imagenet brings its own training "
        "augmentation (random-resized crop + horizontal flip); drop "
        "--augment (its pad + crop would be a second, different one)")
  if hp.resize_method != "resize":
    raise UserError(
        f"--resize_method: {hp.resize_method} does not apply with "
        "--preprocessing=imagenet, which resizes and crops itself; leave "
        "--resize_method at resize")


def _subset_steps(hp: DatasetHparams, classes) -> List[str]:
  """How --classes, --validation_fraction and --train_examples cut the data."""
  steps = []
  if classes:
    steps.append(
        f"classes {hp.classes.replace(' ', '')} -> 0..{len(classes) - 1}")
  if hp.validation_fraction:
    steps.append(f"validation = last {hp.validation_fraction:g} of train")
  if hp.train_examples:
    steps.append(f"train = first {hp.train_examples} examples")
  return steps


def _channel_step(c0: int, mean: list, std: list) -> Tuple[str, list, list]:
  """From `c0` channels to the other count: its description and statistics."""
  if c0 == 1:
    return "grayscale -> 3 channels", mean * 3, std * 3
  # Exact for the mean; for the std this treats the channels as fully
  # correlated, which natural images nearly are.
  return ("RGB -> grayscale (luminance)",
          [sum(w * m for w, m in zip(LUMA, mean))],
          [sum(w * s for w, s in zip(LUMA, std))])


def _resize_steps(spec: registry.DatasetSpec, method: str, preprocessing: str,
                  height: int, width: int, mean: list, std: list
                  ) -> Tuple[List[str], list, list]:
  """How images reach height x width, and the statistics they leave."""
  h0, w0, _ = spec.shape
  if preprocessing == "imagenet":
    return _imagenet_steps(height, width), mean, std
  if spec.variable_size:
    verb = "resize (bilinear)" if method == "resize" else "centre-crop/pad"
    return [f"{verb} any -> {height}x{width}"], mean, std
  if (height, width) == (h0, w0):
    return [], mean, std
  src = f"{h0}" if h0 == w0 else f"{h0}x{w0}"
  dst = f"{height}" if height == width else f"{height}x{width}"
  if method == "resize":
    return [f"resize {src} -> {dst} (bilinear)"], mean, std
  grow = height >= h0 and width >= w0
  shrink = height <= h0 and width <= w0
  verb = "pad" if grow else "centre-crop" if shrink else "crop/pad"
  # Zero padding adds black pixels: fold them into the statistics so the
  # padded images still come out with mean 0 and std 1.
  frac = min(height, h0) * min(width, w0) / (height * width)
  if frac < 1.0:
    mean, std = _padded_stats(mean, std, frac)
  return [f"{verb} {src} -> {dst}"], mean, std


def _imagenet_steps(height: int, width: int) -> List[str]:
  short = int(round(height * EVAL_RESIZE_RATIO))
  return [
      f"train: random-resized crop (area {CROP_AREA[0]:g}-{CROP_AREA[1]:g},"
      f" aspect 3/4-4/3) -> {height}x{width} (bilinear) + horizontal flip",
      f"eval: resize shorter side -> {short} (bilinear), centre-crop "
      f"{height}x{width}"]


def _padded_stats(mean: list, std: list, frac: float) -> Tuple[list, list]:
  """Mean and std once a fraction 1 - `frac` of the pixels is black (0)."""
  second = [frac * (s * s + m * m) for m, s in zip(mean, std)]
  mean = [frac * m for m in mean]
  std = [math.sqrt(max(e - m * m, 1e-12)) for e, m in zip(second, mean)]
  return mean, std


def _to_float(images: tf.Tensor, plan: Plan) -> tf.Tensor:
  """uint8 -> float32 in [0, 1]; RGB -> luminance first if asked (a third of
  the work for whatever follows)."""
  x = tf.cast(images, tf.float32) * (1.0 / 255.0)
  if plan.channels == 1 and plan.spec.shape[2] == 3:
    x = tf.reduce_sum(x * tf.constant(LUMA, tf.float32), axis=-1, keepdims=True)
  return x


def _finish(x: tf.Tensor, plan: Plan) -> tf.Tensor:
  """At input size: grayscale -> 3 channels, then normalise."""
  if plan.channels == 3 and plan.spec.shape[2] == 1:
    x = tf.repeat(x, 3, axis=-1)  # After resizing: a third of the work.
  if plan.normalize:
    x = (x - tf.constant(plan.mean, tf.float32)) / tf.constant(
        plan.std, tf.float32)
  return x


def _resize(x: tf.Tensor, size) -> tf.Tensor:
  return tf.image.resize(x, size, method="bilinear", antialias=True)


def to_input(images: tf.Tensor, plan: Plan) -> tf.Tensor:
  """uint8 image(s) at native size -> float32 model input(s).

  The evaluation (and, without --preprocessing, the training) transform; with
  --preprocessing=imagenet: resize the shorter side to `plan.eval_resize`,
  then centre-crop to the input size.
  """
  x = _to_float(images, plan)
  native = tuple(plan.spec.shape[:2])
  if plan.preprocessing == "imagenet":
    x = resize_and_centre_crop(x, plan.eval_resize, plan.height, plan.width)
  elif plan.spec.variable_size or (plan.height, plan.width) != native:
    if plan.resize_method == "resize":
      x = _resize(x, (plan.height, plan.width))
    else:
      x = tf.image.resize_with_crop_or_pad(x, plan.height, plan.width)
  return _finish(x, plan)


def raw_shape(plan: Plan) -> Tuple[Optional[int], ...]:
  """[N, H, W, C] of the uint8 images `to_input` takes (H, W None when the
  dataset's images vary in size)."""
  return (None, *plan.spec.shape)


def describe(plan: Plan) -> dict:
  """Every number `to_input` applies, in its order, as JSON.

  Written beside a SavedModel so a reader without lottery_tf can reproduce
  the evaluation preprocessing (or check the raw-image signature's). Mirrors
  `to_input` branch for branch; a test compares the two.
  """
  h0, w0, c0 = plan.spec.shape
  native = (h0, w0)
  size = [plan.height, plan.width]
  steps = ["scale"]
  out = {
      "dataset": plan.spec.name,
      "raw_input": {"dtype": "uint8", "shape": list(raw_shape(plan)),
                    "range": [0, 255]},
      "scale": 1.0 / 255.0,
      "channels_in": c0,
      "channels_out": plan.channels,
  }
  if plan.channels == 1 and c0 == 3:
    # `_to_float`: before any resize.
    steps.append("rgb_to_grayscale")
    out["rgb_to_grayscale"] = {"weights": list(LUMA)}
  if plan.preprocessing == "imagenet":
    steps.append("resize")
    out["resize"] = {"method": "resize_short_side_and_centre_crop",
                     "short_side": plan.eval_resize, "crop": size,
                     "interpolation": "bilinear", "antialias": True}
  elif plan.spec.variable_size or (plan.height, plan.width) != native:
    steps.append("resize")
    if plan.resize_method == "resize":
      out["resize"] = {"method": "resize", "size": size,
                       "interpolation": "bilinear", "antialias": True}
    else:
      # tf.image.resize_with_crop_or_pad: centred, zeros (black) outside.
      out["resize"] = {"method": "pad", "size": size, "centred": True,
                       "pad_value": 0.0}
  else:
    out["resize"] = {"method": "none", "size": size}
  if plan.channels == 3 and c0 == 1:
    steps.append("grayscale_to_rgb")  # `_finish`: after resizing.
    out["grayscale_to_rgb"] = {"repeat": 3}
  if plan.normalize:
    steps.append("normalize")
  out["normalize"] = plan.normalize
  # Per output channel, already adjusted for channel conversion and padding.
  out["mean"] = [float(m) for m in plan.mean]
  out["std"] = [float(s) for s in plan.std]
  out["formula"] = "(x - mean) / std" if plan.normalize else "x"
  out["steps"] = steps
  out["output"] = {"dtype": "float32", "shape": [None, *plan.input_shape]}
  # Labels, not images: logit i is original class classes[i].
  out["classes"] = list(plan.classes) if plan.classes else None
  out["transforms"] = list(plan.transforms)
  return out


def resize_and_centre_crop(x: tf.Tensor, short: int, height: int,
                           width: int) -> tf.Tensor:
  """Resize (bilinear) so the shorter side is `short`, then centre-crop.

  As torchvision's Resize(short) + CenterCrop((height, width)): the longer
  side becomes floor(short * long / shorter); the crop starts at
  floor((size - crop) / 2). One image or a batch of same-size images.
  """
  shape = tf.shape(x)
  h, w = shape[-3], shape[-2]
  shorter = tf.minimum(h, w)
  new_h = tf.where(h <= w, short, (short * h) // shorter)
  new_w = tf.where(h <= w, (short * w) // shorter, short)
  x = _resize(x, tf.stack([new_h, new_w]))
  return tf.image.resize_with_crop_or_pad(x, height, width)


def random_resized_crop_box(height: tf.Tensor, width: tf.Tensor,
                            seed: tf.Tensor) -> Tuple[tf.Tensor, ...]:
  """(top, left, crop height, crop width), int32, of a random-resized crop.

  torchvision's RandomResizedCrop.get_params, stateless in `seed` (shape
  [2]): up to 10 tries at a box of area 8-100% of the image's and aspect
  ratio 3/4-4/3 (log-uniform); the first that fits wins, at a uniform offset.
  If none fits, the whole image, cut to the nearest ratio in range, centred.
  All tries are drawn at once (vectorised), so it costs the same every time.
  """
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  area_seed, ratio_seed, offset_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, num=3))
  area = h * w * tf.random.stateless_uniform(
      [CROP_ATTEMPTS], area_seed, CROP_AREA[0], CROP_AREA[1])
  aspect = tf.exp(tf.random.stateless_uniform(
      [CROP_ATTEMPTS], ratio_seed, math.log(CROP_RATIO[0]),
      math.log(CROP_RATIO[1])))
  tries_w = tf.round(tf.sqrt(area * aspect))
  tries_h = tf.round(tf.sqrt(area / aspect))
  fits = (tries_w > 0) & (tries_w <= w) & (tries_h > 0) & (tries_h <= h)
  found = tf.reduce_any(fits)
  first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
  ratio = w / h
  fallback_w = tf.where(ratio > CROP_RATIO[1], tf.round(h * CROP_RATIO[1]), w)
  fallback_h = tf.where(ratio < CROP_RATIO[0], tf.round(w / CROP_RATIO[0]), h)
  crop_h = tf.where(found, tries_h[first], fallback_h)
  crop_w = tf.where(found, tries_w[first], fallback_w)
  u = tf.random.stateless_uniform([2], offset_seed)
  top = tf.where(found, tf.floor(u[0] * (h - crop_h + 1)),
                 tf.floor((h - crop_h) / 2))
  left = tf.where(found, tf.floor(u[1] * (w - crop_w + 1)),
                  tf.floor((w - crop_w) / 2))
  # u < 1, but float32 rounding of u * n can reach n.
  top = tf.clip_by_value(top, 0.0, h - crop_h)
  left = tf.clip_by_value(left, 0.0, w - crop_w)
  return tuple(tf.cast(v, tf.int32) for v in (top, left, crop_h, crop_w))


def imagenet_train_input(image: tf.Tensor, seed: tf.Tensor, plan: Plan,
                         decode: Optional[Callable] = None) -> tf.Tensor:
  """One training input of --preprocessing=imagenet, from one source image.

  Random-resized crop (`random_resized_crop_box`) resized (bilinear) to the
  input size, random horizontal flip, then channels and normalisation.
  Stateless in `seed` (shape [2]). `image` is a decoded uint8 [H, W, C]
  image, or, with `decode` (encoded bytes -> uint8 image), the encoded
  bytes: a JPEG is then decoded only inside the crop
  (`tf.image.decode_and_crop_jpeg`, the same pixels for a fraction of the
  work); any other format (PNG) is decoded whole and cropped.
  """
  box_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, num=2))
  channels = plan.spec.shape[2]

  def crop(decoded):
    shape = tf.shape(decoded)
    top, left, crop_h, crop_w = random_resized_crop_box(
        shape[0], shape[1], box_seed)
    return decoded[top:top + crop_h, left:left + crop_w]

  if decode is None:
    pixels = crop(image)
  else:
    def crop_jpeg():
      shape = tf.image.extract_jpeg_shape(image)
      window = tf.stack(random_resized_crop_box(shape[0], shape[1], box_seed))
      return tf.image.decode_and_crop_jpeg(image, window, channels=channels)

    pixels = tf.cond(tf.io.is_jpeg(image), crop_jpeg,
                     lambda: crop(decode(image)))
  x = _resize(_to_float(pixels, plan), (plan.height, plan.width))
  flip = tf.random.stateless_uniform([], flip_seed) < 0.5
  x = tf.cond(flip, lambda: tf.reverse(x, axis=[1]), lambda: x)
  x = _finish(x, plan)
  return tf.ensure_shape(x, plan.input_shape)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, plan: Plan) -> tf.Tensor:
  """Pad with black, random crop back to size, random horizontal flip.

  As torchvision's RandomCrop(size, padding=4) + RandomHorizontalFlip on the
  raw image. Stateless in `seed` (shape [2]): one seed gives one batch.
  Vectorised: crop, padding and flip are one gather over the batch's pixels
  plus one black pixel (a tenth of the cost of pad + crop + flip ops).
  """
  pad = plan.augment_pad
  h, w, c = plan.input_shape
  crop_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, num=2))
  batch = tf.shape(images)[0]
  offsets = tf.random.stateless_uniform(
      [batch, 2], seed=crop_seed, minval=-pad, maxval=pad + 1, dtype=tf.int32)
  flip = tf.random.stateless_uniform([batch, 1], seed=flip_seed) < 0.5
  cols = tf.range(w)[None, :]
  cols = tf.where(flip, w - 1 - cols, cols)  # [B, W]
  rows = offsets[:, :1] + tf.range(h)[None, :]  # [B, H]
  cols = offsets[:, 1:] + cols  # [B, W]
  rows, cols = rows[:, :, None], cols[:, None, :]
  inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
  black_row = batch * h * w
  flat = tf.range(batch)[:, None, None] * (h * w) + rows * w + cols
  flat = tf.where(inside, flat, black_row)  # [B, H, W]
  pixels = tf.concat([tf.reshape(images, [-1, c]),
                      tf.constant([plan.black], tf.float32)], axis=0)
  return tf.reshape(tf.gather(pixels, tf.reshape(flat, [-1])), [batch, h, w, c])
