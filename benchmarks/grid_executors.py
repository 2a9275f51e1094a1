"""The same small transfer grid sequentially and on Ray, side by side.

    python benchmarks/grid_executors.py [--workers 2] [--steps 3ep]

One run of `lottery_tf grid` with --executor=local and one with
--executor=ray on a local Ray instance of ``--workers`` CPUs (one task per
CPU), each in a fresh output directory, on the same reduced grid: sources
digits[0-4] (sgd, adam), target digits[5-9] (sgd, adam), LeNet-300-100,
2 levels, both transferred (4 source/target-optimizer pairs x 2 levels = 8
cells, with controls). Prints the wall time of each, their ratio, whether
grid.csv is the same, and Ray's per-task overhead: seconds from a task's
submission to the start of its training (worker start, TensorFlow import),
from the run's ray_tasks.json; tasks that waited for a dependency or a free
CPU are left out of that number, as the wait is not overhead.

On 2 cores Ray cannot run more than 2 tasks at once and each task imports
TensorFlow again, so the ratio shows the cost of fanning out small runs;
a cluster gains as tasks outnumber what one machine runs at once.
"""
import argparse
import csv
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

GRID = ["grid", "--sources=digits[0-4]", "--targets=digits[5-9]",
        "--source_optimizers=sgd,adam", "--target_optimizers=sgd,adam",
        "--sgd_lr=0.05", "--adam_lr=1e-3", "--model=lenet_300_100",
        "--batch_size=64", "--pruning_fraction=0.5", "--levels=2",
        "--transfer_levels=1,2", "--seed=0", "--output_dir=runs", "--quiet"]


def _env():
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
  return env


def _run(cwd: str, extra):
  began = time.time()
  proc = subprocess.run([sys.executable, "-m", "lottery_tf.cli.main", *GRID,
                         *extra], cwd=cwd, capture_output=True, text=True,
                        env=_env())
  seconds = time.time() - began
  if proc.returncode != 0:
    sys.exit(f"grid {' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
  (path,) = glob.glob(os.path.join(cwd, "runs", "grid_*", "grid.csv"))
  with open(path) as f:
    return seconds, list(csv.DictReader(f)), os.path.dirname(path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--steps", default="3ep",
                      help="--training_steps of every run")
  args = parser.parse_args()
  steps = [f"--training_steps={args.steps}"]
  ray_head = os.path.join(os.path.dirname(sys.executable), "ray")
  with tempfile.TemporaryDirectory() as root:
    seq_dir, ray_dir = (os.path.join(root, n) for n in ("local", "ray"))
    os.makedirs(seq_dir)
    os.makedirs(ray_dir)
    port = "6399"
    subprocess.run([ray_head, "start", "--head", f"--port={port}",
                    f"--num-cpus={args.workers}", "--num-gpus=0",
                    "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True, env=_env())
    try:
      t_ray, rows_ray, grid_dir = _run(
          ray_dir, steps + ["--executor=ray", f"--ray_address=127.0.0.1:{port}"])
    finally:
      subprocess.run([ray_head, "stop", "--force"], capture_output=True,
                     env=_env())
    t_seq, rows_seq, _ = _run(seq_dir, steps)
    with open(os.path.join(grid_dir, "ray_tasks.json")) as f:
      tasks = json.load(f)["tasks"]
  # Overhead: tasks submitted with nothing to wait for (the source finds,
  # started at once while CPUs were free).
  free = [t for t in tasks if t["kind"] == "find"][:args.workers]
  overhead = [t["ready"] - t["submitted"] for t in free]
  print(f"grid of {sum(t['kind'] == 'cell' for t in tasks)} cells, "
        f"{len(tasks)} tasks, --training_steps={args.steps}")
  print(f"  sequential (--executor=local): {t_seq:7.1f} s")
  print(f"  Ray, {args.workers} workers:               {t_ray:7.1f} s")
  print(f"  Ray / sequential wall time:     {t_ray / t_seq:7.2f}")
  print(f"  Ray per-task overhead (submit to start of training): median "
        f"{statistics.median(overhead):.1f} s over {len(overhead)} tasks")
  print(f"  grid.csv identical: {rows_ray == rows_seq}")


if __name__ == "__main__":
  main()
