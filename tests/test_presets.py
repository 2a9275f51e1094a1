"""Presets from anywhere: installed with the package, run by name."""
import glob
import json
import os
import subprocess
import sys

from conftest import REPO, clean_env, run_in_one_process

NAMES = sorted(os.path.basename(p)[:-4]
               for p in glob.glob(os.path.join(REPO, "flags", "*.cfg")))
QUICK = ["--levels=0", "--training_steps=2it", "--output_dir=out", "--quiet"]


def _hparams(tmp_path, out="out"):
  (path,) = glob.glob(str(tmp_path / out / "*" / "hparams.json"))
  return json.load(open(path))["hparams"]


def test_presets_lists_every_flagfile_with_its_header(cli):
  proc = cli("presets")
  assert proc.returncode == 0, proc.stderr
  blocks = proc.stdout.split("\n\n")[1:]
  assert [b.splitlines()[0] for b in blocks] == NAMES
  for block in blocks:
    for key in ("paper:", "expected:", "hardware:", "run:"):
      assert key in block, block
  morcos = blocks[NAMES.index("morcos_vgg19_cifar10")]
  assert "Morcos" in morcos and "One ticket to win them all" in morcos
  assert "99.9%" in morcos and "GPU" in morcos


def test_preset_by_name_from_another_directory(cli, tmp_path):
  # The cli fixture runs in tmp_path: flags/ is not there. Two levels,
  # without --quiet: what `make demo` prints, at fewer steps.
  proc = cli("find", "--preset=demo_mnist5k", *QUICK[:-1], "--levels=2")
  assert proc.returncode == 0, proc.stderr
  # The terminal: the header (the command and where results go, the
  # hparams not at their defaults, the levels), one line per level with
  # its whole wall time, then the result path; nothing on stderr. The
  # demo's 10 levels print 15 lines (issue: at most 20).
  lines = proc.stdout.strip().splitlines()
  assert not proc.stderr.strip(), proc.stderr
  assert lines[0].startswith("find: out/find_lenet_300_100_mnist_5k-"), lines
  assert "dataset=mnist_5k" in lines[1] and lines[2] == "  levels 0-2"
  assert [line.split("  ")[0] for line in lines[3:6]] == [
      "level 0/2", "level 1/2", "level 2/2"], lines
  assert "reinit" in lines[4] and "random_mask" in lines[5], lines
  assert lines[6].startswith("results: ") and len(lines) == 7, lines
  hp = _hparams(tmp_path)
  assert hp["dataset"]["dataset"] == "mnist_5k"
  assert hp["pruning"]["output_layer_fraction"] == 0.1
  # Flags after the preset override it, as after any flagfile.
  assert hp["training"]["training_steps"] == "2it"
  # --flagfile with a preset's name, or its path as the "Run:" lines give it.
  for flagfile in ("demo_mnist5k", "flags/demo_mnist5k.cfg"):
    again = cli("find", f"--flagfile={flagfile}", *QUICK[:-2],
                f"--output_dir=out_{flagfile.replace('/', '_')}", "--quiet")
    assert again.returncode == 0, again.stderr


def test_missing_preset_or_flagfile_is_one_line(tmp_path):
  cases = (
      (["--preset=nope"], "--preset: 'nope' is neither a file nor a preset"),
      (["--flagfile=missing.cfg"], "--flagfile: 'missing.cfg'"),
      (["--flagfile=some/dir/missing.cfg"], "--flagfile: cannot open"),
      (["--preset"], "--preset: needs a value"))
  results = run_in_one_process(tmp_path, [["find", *a] for a, _ in cases])
  for (args, words), (code, err) in zip(cases, results):
    assert code == 2, (args, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], err
    assert "ERROR::" not in err and "Traceback" not in err
    assert "lottery_tf presets" in lines[0]


def test_installed_package_carries_the_presets(tmp_path):
  """A real (non-editable) install: the presets travel in the package."""
  target = tmp_path / "site"
  subprocess.run(
      [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
       "--no-build-isolation", "--no-index", "--target", str(target), REPO],
      check=True, cwd=str(tmp_path), timeout=300, capture_output=True)
  presets_dir = target / "lottery_tf" / "presets"
  assert sorted(p[:-4] for p in os.listdir(presets_dir)) == NAMES
  env = clean_env(PYTHONPATH=str(target))
  work = tmp_path / "elsewhere"
  work.mkdir()
  where = subprocess.run(
      [sys.executable, "-c", "import lottery_tf, lottery_tf.presets as p; "
       "print(lottery_tf.__file__); print(p.directory())"],
      cwd=str(work), env=env, capture_output=True, text=True, timeout=120)
  assert where.returncode == 0, where.stderr
  module, directory = where.stdout.split()
  assert module.startswith(str(target)) and directory == str(presets_dir)
  proc = subprocess.run(
      [sys.executable, "-m", "lottery_tf.cli.main", "find",
       "--preset=demo_mnist5k", *QUICK],
      cwd=str(work), env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.strip().splitlines()[-1].startswith("results: ")
