"""One IMP level with both controls: one by one vs stacked, side by side.

    python benchmarks/levels.py [--models lenet_300_100,conv4,resnet20]
                                [--steps 2ep] [--repeats 2] [--nodemo]
                                [--xla]

For each model, in one process, on the embedded mnist_5k (LeNet-300-100 at
28x28x1, the others brought to 32x32x3), batch 128, SGD 0.1 momentum 0.9:
the level's three runs (the ticket on its 80% mask, the reinit control,
the random-mask control) trained

  one by one  Session.train three times, as with --nostack_runs;
  stacked     Session.train_stacked, the three as one model (the default);
  ticket      the ticket's run alone (the target: stacked <= 1.5x this);
  torch       where torch imports, the same three runs as a plain PyTorch
              masked loop, one after another, on the same batches held in
              memory (`pip install torch==2.13.0`, the CPU build; see the
              README's Speed section).

With --xla, also the ticket and the stacked level compiled with XLA
(--jit_compile), and whether they end at the same test accuracies.

Each variant runs once untimed (tracing), then they take turns --repeats
times and the median seconds per level are printed, with the ratios, and
whether the stacked runs ended at the same test accuracies. The runs train
and evaluate as in `lottery_tf find`; saving files is left out. Last, the
demo's recipe (flags/demo_mnist5k.cfg: 945 steps a run, batch 64, SGD 0.1):
one stacked level, the ticket alone and the PyTorch level, and from them
the demo's 31 runs (level 0, then 10 levels of three) both ways.
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


#: Each model's level: one by one vs stacked vs the ticket alone.
BENCH = dict(lr=0.1, momentum=0.9, batch_size=128)
#: The demo's recipe (flags/demo_mnist5k.cfg): 945 steps a run.
DEMO = dict(lr=0.1, momentum=0.0, batch_size=64, training_steps="15ep")


def _session(model: str, steps: str, recipe=None, **thp):
  dhp = (DatasetHparams(dataset="mnist_5k") if model == "lenet_300_100" else
         DatasetHparams(dataset="mnist_5k", image_size=32, channels=3))
  task = Task(dhp, ModelHparams(model=model),
              TrainingHparams(**{"training_steps": steps, **BENCH,
                                 **(recipe or {}), "seed": 0, **thp}))
  session = Session(task, PruningHparams(), rewind_step=0,
                    read_rewind=lambda: None, quiet=True, log=lambda l: None)
  return task, session, _plans(session, 0)


def bench(model: str, steps: str, repeats: int, recipe=None,
          variants=("one_by_one", "stacked", "ticket", "torch")) -> dict:
  """Median seconds of each variant (``*_xla``: with --jit_compile)."""
  task, session, plans = _session(model, steps, recipe)
  xla = (_session(model, steps, recipe, jit_compile=True)
         if any(v.endswith("_xla") for v in variants) else None)

  def one_by_one():
    return [session.train_plan(p)["metrics"]["test_accuracy"] for p in plans]

  def stacked(s=session, p=plans):
    return [o["metrics"]["test_accuracy"] for o in s.train_stacked(p)]

  def ticket(s=session, p=plans):
    return [s.train_plan(p[0])["metrics"]["test_accuracy"]]

  fns = {"one_by_one": one_by_one, "stacked": stacked, "ticket": ticket,
         "torch": torch_level(task, task.total_steps)}
  if xla is not None:
    fns["ticket_xla"] = lambda: ticket(xla[1], xla[2])
    fns["stacked_xla"] = lambda: stacked(xla[1], xla[2])
  fns = {v: fns[v] for v in variants if fns[v] is not None}
  accuracy = {v: f() for v, f in fns.items()}  # untimed: tracing
  times = {v: [] for v in fns}
  order = list(fns)
  for r in range(repeats):  # interleaved, each variant first in turn
    for v in order[r % len(order):] + order[:r % len(order)]:
      began = time.perf_counter()
      fns[v]()
      times[v].append(time.perf_counter() - began)
  med = {v: statistics.median(t) for v, t in times.items()}
  same = (accuracy["stacked"] == accuracy["one_by_one"]
          if "one_by_one" in accuracy else None)
  return {"model": model, "steps": task.total_steps, **med, "same": same,
          "accuracy": accuracy}


# -- The same level as a plain PyTorch masked loop (where torch imports) ----

def _torch_model(torch, model: str, shape, num_classes: int):
  """LeNet-300-100, Conv-4 or ResNet-20 as lottery_tf builds them (NCHW)."""
  nn = torch.nn
  h, w, c = shape
  if model == "lenet_300_100":
    return nn.Sequential(nn.Flatten(), nn.Linear(h * w * c, 300), nn.ReLU(),
                         nn.Linear(300, 100), nn.ReLU(),
                         nn.Linear(100, num_classes))
  if model == "conv4":
    return nn.Sequential(
        nn.Conv2d(c, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * (h // 4) * (w // 4), 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, num_classes))
  if model == "resnet20":
    class Block(nn.Module):
      def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                    nn.BatchNorm2d(cout)))

      def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))
    layers = [nn.Conv2d(c, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
              nn.ReLU()]
    cin = 16
    for s, width in enumerate((16, 32, 64)):
      for b in range(3):
        layers.append(Block(cin, width, 2 if s and not b else 1))
        cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(64, num_classes)]
    return nn.Sequential(*layers)
  raise SystemExit(f"no PyTorch version of {model} here")


def torch_level(task, steps: int):
  """The level's three runs as a plain PyTorch loop, one after another
  (each: a fresh network, an 80% magnitude mask on its conv and dense
  weights, the recipe's SGD, the gradient and the weights masked every
  step, then train and test accuracy), on lottery_tf's own batches held as
  tensors in memory: a function training the level once; None without
  torch."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)
  to = lambda a: torch.from_numpy(a)
  nchw = lambda x: to(x.transpose(0, 3, 1, 2).copy())
  batches = [(nchw(x), to(y.astype("int64"))) for x, y in
             task.train_data()(0).take(steps).as_numpy_iterator()]
  evals = [(nchw(x), to(y.astype("int64"))) for split in ("train", "test")
           for x, y in task.eval_data()[split].as_numpy_iterator()]
  info = task.info

  def run(seed):
    torch.manual_seed(seed)
    net = _torch_model(torch, task.mhp.model, info.input_shape,
                       info.num_classes)
    masks = {}
    for p in net.parameters():
      if p.dim() > 1:
        k = int(0.2 * p.numel())
        cut = p.detach().abs().flatten().kthvalue(k).values
        masks[p] = (p.detach().abs() > cut).float()
        p.data.mul_(masks[p])
    opt = torch.optim.SGD(net.parameters(), lr=task.thp.lr,
                          momentum=task.thp.momentum)
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    for x, y in batches:
      opt.zero_grad(set_to_none=True)
      loss_fn(net(x), y).backward()
      for p, m in masks.items():
        p.grad.mul_(m)
      opt.step()
      with torch.no_grad():
        for p, m in masks.items():
          p.mul_(m)
    net.eval()
    with torch.no_grad():
      correct = sum(int((net(x).argmax(1) == y).sum()) for x, y in evals)
    return correct

  return lambda: [run(s) for s in (0, 1, 2)]


def _s(r, key, width):
  return f"{r[key]:>{width - 1}.2f}s" if key in r else f"{'-':>{width}}"


def _x(r, a, b, width):
  return (f"{r[a] / r[b]:>{width}.2f}" if a in r and b in r else
          f"{'-':>{width}}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default="lenet_300_100,conv4,resnet20")
  parser.add_argument("--steps", default="2ep",
                      help="--training_steps of each run")
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--nodemo", dest="demo", action="store_false",
                      help="skip the demo recipe's level")
  parser.add_argument("--xla", action="store_true",
                      help="also the ticket and the stacked level with "
                      "--jit_compile (XLA), each model a line of its own")
  args = parser.parse_args()
  variants = ("one_by_one", "stacked", "ticket", "torch") + (
      ("ticket_xla", "stacked_xla") if args.xla else ())
  print(f"one level = ticket + reinit + random_mask, {args.steps} each, "
        f"batch 128, on {os.cpu_count()} cores; median of {args.repeats}; "
        "torch: the same three runs as a plain PyTorch loop"
        + ("" if _has_torch() else " (torch not installed: skipped)"))
  print(f"{'model':<15}{'steps':>6}{'one by one':>12}{'stacked':>10}"
        f"{'ticket':>9}{'torch':>9}{'1by1/stk':>10}{'stk/ticket':>11}"
        f"{'torch/stk':>10}  same acc")
  for model in args.models.split(","):
    r = bench(model, args.steps, args.repeats, variants=variants)
    print(f"{r['model']:<15}{r['steps']:>6}{_s(r, 'one_by_one', 12)}"
          f"{_s(r, 'stacked', 10)}{_s(r, 'ticket', 9)}{_s(r, 'torch', 9)}"
          f"{_x(r, 'one_by_one', 'stacked', 10)}"
          f"{_x(r, 'stacked', 'ticket', 11)}{_x(r, 'torch', 'stacked', 10)}"
          f"  {r['same']}", flush=True)
    if args.xla:
      acc = r["accuracy"]
      print(f"  XLA: ticket {r['ticket_xla']:.2f}s "
            f"({r['ticket_xla'] / r['ticket']:.2f}x of without), stacked "
            f"{r['stacked_xla']:.2f}s "
            f"({r['stacked_xla'] / r['stacked']:.2f}x); test accuracies "
            f"{'the same' if acc['stacked_xla'] == acc['stacked'] else 'differ: %s vs %s' % (acc['stacked_xla'], acc['stacked'])}",
            flush=True)
  if args.demo:
    # The demo: level 0 (the dense ticket alone), then 10 levels of three
    # runs: 31 runs, from one measured level of each kind.
    r = bench("lenet_300_100", DEMO["training_steps"], args.repeats, DEMO,
              variants=("stacked", "ticket", "torch"))
    ours = r["ticket"] + 10 * r["stacked"]
    line = (f"demo recipe (LeNet-300-100, mnist_5k, {r['steps']} steps a "
            f"run): a level stacked {r['stacked']:.2f} s, the ticket alone "
            f"{r['ticket']:.2f} s; 31 runs (level 0 + 10 levels x 3) "
            f"{ours:.1f} s")
    if "torch" in r:
      theirs = r["torch"] / 3 * 31
      line += (f"; PyTorch one by one {r['torch']:.2f} s a level, 31 runs "
               f"{theirs:.1f} s: {theirs / ours:.2f}x")
    print(line, flush=True)


def _has_torch() -> bool:
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


if __name__ == "__main__":
  main()
