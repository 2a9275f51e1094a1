"""Every preset in flags/ has its header, parses, and runs on TFDS mock data."""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, clean_env

FLAGFILES = sorted(glob.glob(os.path.join(REPO, "flags", "*.cfg")))
HEADER = ("# Paper:", "# Expected", "# Hardware:", "# Run: lottery_tf ")


@pytest.mark.parametrize("path", FLAGFILES, ids=os.path.basename)
def test_header_states_paper_expectation_hardware_and_command(path):
  text = open(path).read()
  for key in HEADER:
    if key == "# Paper:" and "demo" in os.path.basename(path):
      continue
    assert re.search("^" + re.escape(key), text, re.M), (path, key)
  name = os.path.basename(path)
  assert f"--flagfile=flags/{name}" in text


def _flag_values(path):
  """{flag: value} of a flagfile's flag lines."""
  out = {}
  for line in open(path):
    if line.startswith("--"):
      key, _, value = line.strip()[2:].partition("=")
      out[key] = value
  return out


def _hardware_header(text):
  m = re.search(r"^# Hardware:.*(?:\n#  .*)*", text, re.M)
  return m.group(0) if m else ""


LARGE = ("imagenet", "places365")
LARGE_SOURCES = [p for p in FLAGFILES
                 if _flag_values(p).get("dataset", "").startswith(LARGE)]


def test_imagenet_and_places365_sources_are_set_up_for_8_gpus():
  names = sorted(os.path.basename(p) for p in LARGE_SOURCES)
  assert names == sorted(f"morcos_{m}_{d}.cfg" for m in ("resnet50", "vgg19")
                         for d in ("imagenet", "places365")), names
  for path in LARGE_SOURCES:
    values, text = _flag_values(path), open(path).read()
    name = os.path.basename(path)
    assert values.get("strategy") == "mirrored", name
    assert values.get("batch_size") == "1024", name
    assert values.get("warmup_steps") == "5ep", name
    assert values.get("mixed_precision") in ("mixed_float16",
                                             "mixed_bfloat16"), name
    assert values.get("preprocessing") == "imagenet", name
    assert values.get("image_size") == "224", name
    hardware = _hardware_header(text)
    assert "8 GPUs" in hardware, (name, hardware)
    assert "1024" in hardware, (name, hardware)
    assert re.search(r"^# Several machines:.*TF_CONFIG", text,
                     re.M | re.S), name
    assert "--strategy=multi_worker" in text, name


def test_grids_with_imagenet_or_places365_sources_run_mirrored():
  grids = [p for p in FLAGFILES if any(
      s.startswith(LARGE)
      for s in _flag_values(p).get("sources", "").split(","))]
  assert grids
  for path in grids:
    name = os.path.basename(path)
    assert _flag_values(path).get("strategy") == "mirrored", name
    assert "8 GPUs" in _hardware_header(open(path).read()), name


#: The presets `make test` runs (with RUN_ELSEWHERE below): between them
#: every command, model, dataset, strategy, precision, preprocessing and
#: optimizer any preset names (pinned by test_smoke_set_covers_every_preset). The others differ from one of
#: these only in values; all are parsed and validated below, and all run
#: under `make reproduce` (test_every_preset_runs_a_few_steps_on_mock_data).
SMOKE = (
    "diet_el2n_cifar10.cfg",
    "frankle_conv2_cifar10.cfg",
    "frankle_conv4_cifar10.cfg", "frankle_conv6_cifar10.cfg",
    "frankle_instability_resnet20_cifar10.cfg",
    "frankle_lenet300100_mnist.cfg", "mehta_resnet_cifar10_to_smallnorb.cfg",
    "mehta_resnet_cifar10_to_fashion_mnist.cfg",
    "morcos_resnet50_imagenet.cfg",
    "morcos_vgg19_places365.cfg", "morcos_vgg19_svhn.cfg",
    "morcos_vgg19_cifar100.cfg",
    "openlth_vgg16_cifar10.cfg", "transfer_demo.cfg")

#: Presets another test runs through the CLI as they are (at fewer steps),
#: with that test: the smoke set need not run them again.
RUN_ELSEWHERE = {
    "demo_mnist5k.cfg": ("test_presets.py",
                         "test_preset_by_name_from_another_directory"),
    "diet_demo.cfg": ("test_diet.py",
                      "test_diet_demo_runs_end_to_end_and_resumes"),
}

_COVERED = ("model", "dataset", "sources", "targets", "source_optimizers",
            "target_optimizers", "optimizer", "strategy", "mixed_precision",
            "preprocessing", "head", "transfer_weights", "prune_only")


_SAME = {"sources": "dataset", "targets": "dataset",
         "source_optimizers": "optimizer", "target_optimizers": "optimizer"}


def _features(path):
  """What code a preset reaches: its command and the named things it uses
  (datasets without their class selection, `mnist_5k[0-4]` -> mnist_5k)."""
  text = open(path).read()
  out = {("command", re.search(r"^#\s*Run:\s*lottery_tf\s+(\w+)", text,
                               re.M).group(1))}
  values = _flag_values(path)
  for key in _COVERED:
    items = [i for i in re.split(r",(?![^\[]*\])", values.get(key, "")) if i]
    # A grid smoke-runs one cell (flagfile_smoke.command_overrides): its
    # first source and target, first source and last target optimizer.
    # Every dataset's own pipeline is tested in test_data.
    if key in ("sources", "targets", "source_optimizers"):
      items = items[:1]
    elif key == "target_optimizers":
      items = items[-1:]
    for item in items:
      if item:
        out.add((_SAME.get(key, key), re.sub(r"\[.*\]$", "", item)))
  return out


def test_smoke_set_covers_every_preset():
  names = {os.path.basename(p) for p in FLAGFILES}
  run = set(SMOKE) | set(RUN_ELSEWHERE)
  assert run <= names, sorted(run - names)
  for name, (module, test) in RUN_ELSEWHERE.items():
    text = open(os.path.join(REPO, "tests", module)).read()
    body = text.split(f"def {test}(")[1].split("\ndef ")[0]
    # The test runs the preset (by name, path or as a module-level command
    # line the test passes to the CLI).
    assert name[:-4] in text and f"def {test}(" in text, (name, module)
    assert "cli(" in body, (name, test)
  everything = set().union(*(_features(p) for p in FLAGFILES))
  smoked = set().union(*(_features(p) for p in FLAGFILES
                         if os.path.basename(p) in run))
  assert everything - smoked == set(), (
      "add a preset using these to SMOKE", sorted(everything - smoked))


def _smoke(tmp_path, paths):
  # Two processes, one per core: TensorFlow starts once in each.
  halves = [paths[0::2], paths[1::2]]
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(REPO, "tests", "flagfile_smoke.py"),
       str(tmp_path / f"part{i}"), *half],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=clean_env(), cwd=REPO) for i, half in enumerate(halves) if half]
  results = {}
  for proc in procs:
    out, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err[-4000:]
    results.update(json.loads(out.strip().splitlines()[-1]))
  assert sorted(results) == sorted(os.path.basename(p) for p in paths)
  for name, path in results.items():
    assert os.path.exists(path), name
    summary = json.load(open(path))
    assert summary.get("rows") or summary.get("runs"), name


def test_every_preset_parses_and_validates():
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "tests", "flagfile_smoke.py"),
       "--validate", *FLAGFILES], capture_output=True, text=True,
      env=clean_env(), cwd=REPO, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  checked = json.loads(proc.stdout.strip().splitlines()[-1])
  assert sorted(checked) == sorted(os.path.basename(p) for p in FLAGFILES)
  for name, groups in checked.items():
    assert {"DatasetHparams", "ModelHparams", "TrainingHparams",
            "PruningHparams"} <= set(groups), (name, groups)


def test_the_smoke_set_runs_a_few_steps_on_mock_data(tmp_path):
  _smoke(tmp_path, [p for p in FLAGFILES if os.path.basename(p) in SMOKE])


@pytest.mark.slow
def test_every_preset_runs_a_few_steps_on_mock_data(tmp_path):
  _smoke(tmp_path, FLAGFILES)
