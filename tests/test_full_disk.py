"""A full disk ends in one line naming the path, and a rerun resumes.

The output directory is a 2 MB tmpfs (needs mount rights: root in a
container or on CI; skipped, saying so, elsewhere). A find of three levels
fills it while saving level 2's ticket; after the filesystem grows, the
same command resumes and finishes.
"""
import os
import subprocess

import pytest

FIND = ["find", "--dataset=digits", "--training_steps=2ep", "--levels=2",
        "--seed=2"]


@pytest.fixture
def small_disk(tmp_path):
  mount = tmp_path / "disk"
  mount.mkdir()
  proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs",
                         str(mount)], capture_output=True, text=True)
  if proc.returncode != 0:
    pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
  try:
    yield mount
  finally:
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_one_line_and_the_rerun_resumes(small_disk, cli,
                                                     tmp_path):
  args = [*FIND, f"--output_dir={small_disk}/runs",
          f"--data_dir={tmp_path}/tfds"]
  proc = cli(*args)
  assert proc.returncode == 2, (proc.stdout, proc.stderr[-3000:])
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
  assert "no space left on the device" in lines[0]
  assert str(small_disk) in lines[0] and "resumes" in lines[0]
  finished = [l for l in proc.stdout.splitlines() if l.startswith("level")]
  assert finished  # Some levels were done before the disk filled.
  subprocess.run(["mount", "-o", "remount,size=200M", str(small_disk)],
                 check=True)
  again = cli(*args)
  assert again.returncode == 0, again.stderr[-3000:]
  done = [l for l in again.stdout.splitlines() if l.startswith("(done)")]
  assert len(done) >= len(finished), again.stdout
  exp = os.path.dirname(again.stdout.strip().splitlines()[-1].split(
      "results: ")[1])
  assert os.path.exists(os.path.join(exp, "level_02", "metrics.json"))
  assert os.path.exists(os.path.join(exp, "level_02", "ticket",
                                     "saved_model.pb"))
