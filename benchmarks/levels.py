"""One IMP level with both controls: one by one vs stacked, side by side.

    python benchmarks/levels.py [--models lenet_300_100,conv4,resnet20]
                                [--steps 2ep] [--repeats 2]

For each model, in one process, on the embedded mnist_5k (LeNet-300-100 at
28x28x1, the others brought to 32x32x3), batch 128, SGD 0.1 momentum 0.9:
the level's three runs (the ticket on its 80% mask, the reinit control,
the random-mask control) trained

  one by one  Session.train three times, as with --nostack_runs;
  stacked     Session.train_stacked, the three as one model (the default);
  ticket      the ticket's run alone (the target: stacked <= 1.5x this).

Each variant runs once untimed (tracing), then they take turns --repeats
times and the median seconds per level are printed, with the ratios, and
whether the stacked runs ended at the same test accuracies. The runs train
and evaluate as in `lottery_tf find`; saving files is left out.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from lottery_tf import pruning  # noqa: E402
from lottery_tf.data.hparams import DatasetHparams  # noqa: E402
from lottery_tf.lottery.branch import RunPlan  # noqa: E402
from lottery_tf.lottery.branch.controls import (  # noqa: E402
    RANDOM_MASK_SEED_OFFSET, REINIT_SEED_OFFSET)
from lottery_tf.lottery.session import Session  # noqa: E402
from lottery_tf.lottery.task import Task  # noqa: E402
from lottery_tf.models.hparams import ModelHparams  # noqa: E402
from lottery_tf.pruning.hparams import PruningHparams  # noqa: E402
from lottery_tf.training.hparams import TrainingHparams  # noqa: E402


def _plans(session: Session, seed: int):
  model = session.model()
  weights = session.init_weights
  masks = pruning.prune(model, pruning.get_masks(model), PruningHparams())
  return [RunPlan(weights, masks, start=0, seed=seed),
          RunPlan(session.fresh_weights(seed + REINIT_SEED_OFFSET), masks,
                  start=0, seed=seed + REINIT_SEED_OFFSET),
          RunPlan(weights, pruning.random_masks(
              masks, seed=seed + RANDOM_MASK_SEED_OFFSET + 1), start=0,
                  seed=seed + RANDOM_MASK_SEED_OFFSET + 1)]


def bench(model: str, steps: str, repeats: int) -> dict:
  dhp = (DatasetHparams(dataset="mnist_5k") if model == "lenet_300_100" else
         DatasetHparams(dataset="mnist_5k", image_size=32, channels=3))
  task = Task(dhp, ModelHparams(model=model),
              TrainingHparams(lr=0.1, momentum=0.9, batch_size=128,
                              training_steps=steps, seed=0))
  session = Session(task, PruningHparams(), rewind_step=0,
                    read_rewind=lambda: None, quiet=True, log=lambda l: None)
  plans = _plans(session, 0)

  def one_by_one():
    return [session.train_plan(p)["metrics"]["test_accuracy"] for p in plans]

  def stacked():
    return [o["metrics"]["test_accuracy"] for o in session.train_stacked(plans)]

  def ticket():
    return [session.train_plan(plans[0])["metrics"]["test_accuracy"]]

  variants = {"one_by_one": one_by_one, "stacked": stacked, "ticket": ticket}
  accuracy = {v: f() for v, f in variants.items()}  # untimed: tracing
  times = {v: [] for v in variants}
  order = list(variants)
  for r in range(repeats):
    for v in order[r % 3:] + order[:r % 3]:
      began = time.perf_counter()
      variants[v]()
      times[v].append(time.perf_counter() - began)
  med = {v: statistics.median(t) for v, t in times.items()}
  return {"model": model, "steps": task.total_steps, **med,
          "same": accuracy["stacked"] == accuracy["one_by_one"]}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="lenet_300_100,conv4,resnet20")
  parser.add_argument("--steps", default="2ep",
                      help="--training_steps of each run")
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  print(f"one level = ticket + reinit + random_mask, {args.steps} each, "
        f"batch 128, on {os.cpu_count()} cores; median of {args.repeats}")
  print(f"{'model':<15}{'steps':>6}{'one by one':>12}{'stacked':>10}"
        f"{'ticket':>9}{'1by1/stk':>10}{'stk/ticket':>11}  same acc")
  for model in args.models.split(","):
    r = bench(model, args.steps, args.repeats)
    print(f"{r['model']:<15}{r['steps']:>6}{r['one_by_one']:>11.2f}s"
          f"{r['stacked']:>9.2f}s{r['ticket']:>8.2f}s"
          f"{r['one_by_one'] / r['stacked']:>10.2f}"
          f"{r['stacked'] / r['ticket']:>11.2f}  {r['same']}", flush=True)


if __name__ == "__main__":
  main()
