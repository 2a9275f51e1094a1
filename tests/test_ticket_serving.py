"""Tickets and trained networks serve raw images in plain TensorFlow.

The `serving_raw` signature takes the dataset's uint8 images and applies the
evaluation preprocessing itself; the json beside each SavedModel records its
every number. A subprocess without lottery_tf checks both against the
accuracy lottery_tf measured.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import clean_env
from lottery_tf import tickets
from lottery_tf._keras import tf
from lottery_tf.data import embedded, preprocess, registry
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf import paths
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams

# Native digits, and one beyond identity: resized 8 -> 16 and 1 -> 3 channels.
CASES = {
    "native": DatasetHparams(dataset="digits"),
    "resized_rgb": DatasetHparams(dataset="digits", image_size=16, channels=3),
}

# Runs without lottery_tf: loads a SavedModel, feeds the raw test images
# through serving_raw, and redoes the preprocessing from the json's numbers
# alone to feed serving_default the same inputs.
_PLAIN = r"""
import json, sys
import numpy as np
import tensorflow as tf
path, manifest, data = sys.argv[1:4]
meta = json.load(open(f"{path}/{manifest}"))
pre = meta["preprocessing"]
raw = np.load(data)
images, labels = raw["images"], raw["labels"]
m = tf.saved_model.load(path)
logits = m.signatures["serving_raw"](images=tf.constant(images))["logits"]
acc = float(np.mean(np.argmax(logits.numpy(), -1) == labels))

# The same inputs from the recorded numbers, in the recorded order.
x = tf.constant(images.astype(np.float32) * np.float32(pre["scale"]))
for step in pre["steps"]:
  if step == "rgb_to_grayscale":
    w = np.array(pre["rgb_to_grayscale"]["weights"], np.float32)
    x = tf.reduce_sum(x * w, axis=-1, keepdims=True)
  elif step == "resize":
    r = pre["resize"]
    assert r["method"] == "resize", r
    x = tf.image.resize(x, r["size"], method=r["interpolation"],
                        antialias=r["antialias"])
  elif step == "grayscale_to_rgb":
    x = tf.repeat(x, pre["grayscale_to_rgb"]["repeat"], axis=-1)
  elif step == "normalize":
    x = (x - np.array(pre["mean"], np.float32)) / np.array(pre["std"],
                                                          np.float32)
assert list(x.shape[1:]) == pre["output"]["shape"][1:], x.shape
by_hand = m.signatures["serving_default"](images=x)["logits"].numpy()
print(json.dumps({
    "accuracy": acc,
    "max_diff": float(np.max(np.abs(by_hand - logits.numpy()))),
    "signatures": sorted(m.signatures),
    "raw_spec": [d for d in m.signatures["serving_raw"]
                 .structured_input_signature[1]["images"].shape.as_list()],
    "raw_dtype": m.signatures["serving_raw"]
                 .structured_input_signature[1]["images"].dtype.name,
    "modules": sorted(k for k in sys.modules if k.startswith("lottery_tf")),
}))
"""


def _raw_test_images(path, spec):
  """The test split as TFDS stores it (uint8, native size), as the pipeline
  reads it, in an .npz for the subprocess."""
  embedded.prepare(spec.tfds_name, "")
  builder = tfds.builder(spec.tfds_name)
  ds = builder.as_dataset(split=spec.test_split, shuffle_files=False)
  images, labels = [], []
  for ex in tfds.as_numpy(ds):
    images.append(ex[spec.image_key])
    labels.append(ex[spec.label_key])
  np.savez(path, images=np.stack(images), labels=np.array(labels))
  return str(path)


@pytest.fixture(scope="module", params=sorted(CASES))
def experiment(request, tmp_path_factory):
  root = tmp_path_factory.mktemp(f"serve_{request.param}")
  dhp = CASES[request.param]
  task = Task(dhp=dhp, mhp=ModelHparams(model="lenet_300_100"),
              thp=TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                                  training_steps="3ep", seed=7))
  exp_dir = str(root / "exp")
  LotteryRunner(exp_dir, task, PruningHparams(),
                LotteryHparams(levels=1, rewind="5it", controls=""),
                quiet=True, log=lambda line: None).run()
  spec = registry.get(dhp.dataset)
  data = _raw_test_images(root / "test.npz", spec)
  return {"dir": paths.level(exp_dir, 1), "dhp": dhp, "data": data,
          "case": request.param}


def _plain(path, manifest, data):
  proc = subprocess.run([sys.executable, "-c", _PLAIN, path, manifest, data],
                        capture_output=True, text=True, env=clean_env(),
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_trained_network_on_raw_images_matches_measured_accuracy(experiment):
  d = experiment["dir"]
  metrics = json.load(open(os.path.join(d, "metrics.json")))
  expected = metrics["metrics"]["test_accuracy"]
  out = _plain(os.path.join(d, "trained"), tickets.TRAINED_JSON,
               experiment["data"])
  assert out["modules"] == []
  assert out["signatures"] == ["serving_default", "serving_raw"]
  spec = registry.get(experiment["dhp"].dataset)
  assert out["raw_spec"] == [None, *spec.shape]
  assert out["raw_dtype"] == "uint8"
  n = len(np.load(experiment["data"])["labels"])
  assert abs(out["accuracy"] - expected) <= 1.0 / n + 1e-9, (out, expected)
  # The json's numbers alone reproduce the signature's preprocessing.
  assert out["max_diff"] < 1e-4, out


def test_ticket_raw_signature_is_the_pipeline_transform(experiment):
  path = os.path.join(experiment["dir"], "ticket")
  t = tickets.load(path)  # the new files verify
  raw = np.load(experiment["data"])["images"][:50]
  plan = preprocess.make_plan(experiment["dhp"])
  loaded = tf.saved_model.load(path)
  got = loaded.signatures["serving_raw"](images=tf.constant(raw))["logits"]
  want = t.build()(preprocess.to_input(tf.constant(raw), plan),
                   training=False)
  np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
  out = _plain(path, tickets.TICKET_JSON, experiment["data"])
  assert out["modules"] == [] and out["max_diff"] < 1e-4, out
  assert "serving_raw" in t.meta["signatures"]


def test_recorded_numbers_are_the_registry_s(experiment):
  dhp = experiment["dhp"]
  spec = registry.get(dhp.dataset)
  for sub, manifest in (("ticket", tickets.TICKET_JSON),
                        ("trained", tickets.TRAINED_JSON)):
    meta = json.load(open(os.path.join(experiment["dir"], sub, manifest)))
    pre = meta["preprocessing"]
    channels = dhp.channels or spec.shape[2]
    repeat = channels // spec.shape[2]
    assert pre["mean"] == list(spec.mean) * repeat
    assert pre["std"] == list(spec.std) * repeat
    assert pre["scale"] == 1.0 / 255.0
    assert pre["raw_input"] == {"dtype": "uint8", "range": [0, 255],
                                "shape": [None, *spec.shape]}
    assert pre["channels_in"] == spec.shape[2]
    assert pre["channels_out"] == channels
    size = dhp.image_size or spec.shape[0]
    assert pre["output"]["shape"] == [None, size, size, channels]
    if experiment["case"] == "native":
      assert pre["steps"] == ["scale", "normalize"]
      assert pre["resize"]["method"] == "none"
    else:
      assert pre["steps"] == ["scale", "resize", "grayscale_to_rgb",
                              "normalize"]
      assert pre["resize"] == {"method": "resize", "size": [16, 16],
                               "interpolation": "bilinear",
                               "antialias": True}
  assert tickets.read_trained_meta(os.path.join(experiment["dir"],
                                                "trained"))["level"] == 1


def test_tampered_trained_network_is_refused(experiment, tmp_path):
  if experiment["case"] != "native":
    pytest.skip("one case is enough")
  copy = str(tmp_path / "trained")
  shutil.copytree(os.path.join(experiment["dir"], "trained"), copy)
  tickets.load_trained_weights(copy)  # intact: fine
  meta_path = os.path.join(copy, tickets.TRAINED_JSON)
  meta = json.load(open(meta_path))
  meta["preprocessing"]["mean"] = [0.0]
  json.dump(meta, open(meta_path, "w"))
  with pytest.raises(UserError, match="trained.json was modified"):
    tickets.load_trained_weights(copy)


@pytest.mark.parametrize("hp", [
    DatasetHparams(dataset="digits", image_size=12, resize_method="pad",
                   channels=3),
    DatasetHparams(dataset="cifar10", channels=1),
    DatasetHparams(dataset="cifar10", image_size=24),
    DatasetHparams(dataset="imagenet_resized/32x32", image_size=24,
                   preprocessing="imagenet"),
], ids=["pad_rgb", "gray", "shrink", "imagenet"])
def test_describe_follows_to_input(hp):
  """Plans needing no data: the recorded steps and numbers, applied with
  plain TF ops, give `to_input`'s output."""
  plan = preprocess.make_plan(hp)
  pre = preprocess.describe(plan)
  raw = np.random.default_rng(0).integers(
      0, 256, [4, *plan.spec.shape], dtype=np.uint8)
  x = tf.constant(raw.astype(np.float32) * np.float32(pre["scale"]))
  for step in pre["steps"]:
    if step == "rgb_to_grayscale":
      x = tf.reduce_sum(x * np.array(pre["rgb_to_grayscale"]["weights"],
                                     np.float32), axis=-1, keepdims=True)
    elif step == "resize":
      r = pre["resize"]
      if r["method"] == "resize":
        x = tf.image.resize(x, r["size"], method="bilinear", antialias=True)
      elif r["method"] == "pad":
        x = tf.image.resize_with_crop_or_pad(x, *r["size"])
      else:
        assert r["method"] == "resize_short_side_and_centre_crop"
        h, w = x.shape[1:3]
        s = r["short_side"]
        size = [s, s * w // h] if h <= w else [s * h // w, s]
        x = tf.image.resize(x, size, method="bilinear", antialias=True)
        x = tf.image.resize_with_crop_or_pad(x, *r["crop"])
    elif step == "grayscale_to_rgb":
      x = tf.repeat(x, pre["grayscale_to_rgb"]["repeat"], axis=-1)
    elif step == "normalize":
      x = (x - np.array(pre["mean"], np.float32)) / np.array(pre["std"],
                                                            np.float32)
  want = preprocess.to_input(tf.constant(raw), plan).numpy()
  assert list(want.shape[1:]) == pre["output"]["shape"][1:]
  np.testing.assert_allclose(x.numpy(), want, rtol=1e-6, atol=1e-6)
  assert pre["mean"] == list(plan.mean) and pre["std"] == list(plan.std)
