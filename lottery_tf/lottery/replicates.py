"""``find --replicates=N``: one recipe under N seeds, and its mean and spread.

Replicate k is the experiment of the same recipe with ``--seed`` + k, each
an experiment of its own, named as it would be alone (replicate 0 is the
experiment a plain ``find`` writes, so earlier results are reused and keep
their names), resumable like any other. Beside them,
``<replicate 0's directory>-<N>_replicates/`` holds what they say together:

* ``replicates.json``: the members (directory, seed, replicate index) and
  the provenance of replicate 0;
* ``summary.csv`` / ``summary.json``: per level and run, the mean density
  and accuracies over the replicates that reached it, their sample standard
  deviation (``*_std``; empty for one replicate: no spread is claimed from
  one number) and ``replicates``, how many;
* ``replicates.csv``: every member's summary rows, with their ``replicate``,
  ``seed`` and ``experiment`` columns;
* ``accuracy_vs_density.png``: the means with error bars of one standard
  deviation.
"""
import dataclasses
import math
import os
from typing import Callable, Dict, List

from lottery_tf import paths
from lottery_tf.errors import UserError
from lottery_tf.foundations import fs, store
from lottery_tf.lottery import report

#: Columns averaged over replicates (when a row has them).
_AVERAGED = ("density", "test_accuracy", "test_loss", "validation_accuracy",
             "validation_loss", "instability")


def check(replicates) -> int:
  if (isinstance(replicates, bool) or not isinstance(replicates, int)
      or replicates < 1):
    raise UserError(f"--replicates: must be a whole number >= 1, got "
                    f"{replicates!r}")
  return replicates


def members(desc, replicates: int) -> List:
  """The Find descriptions of the replicates: --seed, --seed + 1, ..."""
  check(replicates)
  seed = desc.training.seed
  return [dataclasses.replace(
      desc, training=dataclasses.replace(desc.training, seed=seed + k))
          for k in range(replicates)]


def directory(desc, output_dir: str, replicates: int) -> str:
  return fs.join(output_dir, f"{desc.dirname}-{replicates}_replicates")


def run(desc, output_dir: str, replicates: int, *,
        writer: store.Writer = store.LOCAL, log: Callable = print,
        **runner_kwargs) -> str:
  """Runs (or resumes) every replicate, then writes their aggregate;
  returns the aggregate's summary.json."""
  descs = members(desc, replicates)
  dirs = [d.directory(output_dir) for d in descs]
  if not _side_by_side(descs, output_dir, writer, log, runner_kwargs):
    for k, d in enumerate(descs):
      log(f"replicate {k + 1}/{replicates}: seed {d.training.seed}")
      d.runner(output_dir, writer=writer, log=log, replicate=k,
               label=f"find, replicate {k + 1}/{replicates}",
               **runner_kwargs).run()
  if getattr(writer, "redirected", False):
    return paths.summary(dirs[0])  # A worker other than the chief.
  out = directory(desc, output_dir, replicates)
  table = write(out, dirs, desc.lottery.levels, writer=writer)
  for line in lines(table, desc.lottery.levels, replicates):
    log(line)
  return paths.summary(out)


def _side_by_side(descs, output_dir: str, writer: store.Writer,
                  log: Callable, runner_kwargs: dict) -> bool:
  """The replicates level by level together, each level's runs of all of
  them stacked (``runner.run_side_by_side``), where runs stack here
  (--stack_runs) and something is left to train; False otherwise (then
  they run one after another). A member's lines are prefixed ``[k/N]``."""
  from lottery_tf import training  # pylint: disable=g-import-not-at-top
  from lottery_tf.lottery import runner as runner_lib  # pylint: disable=g-import-not-at-top
  n = len(descs)
  if n < 2 or descs[0].training.stack_runs == "off":
    return False
  runners = [d.runner(output_dir, writer=writer, replicate=k,
                      log=lambda line, k=k: log(f"[{k + 1}/{n}] {line}"),
                      label=f"find, replicate {k + 1}/{n}", **runner_kwargs)
             for k, d in enumerate(descs)]
  lead = runners[0]
  if (not lead.is_chief or all(r.all_done() for r in runners) or
      not training.can_stack(lead.session.model(), 2 * n,
                             lead.task.thp)):
    return False
  for k, d in enumerate(descs):
    log(f"replicate {k + 1}/{n}: seed {d.training.seed}")
  runner_lib.run_side_by_side(runners)
  return True


def _member_rows(exp_dir: str, levels: int, replicate: int,
                 writer: store.Writer) -> List[dict]:
  summary = writer.read_json(paths.summary(exp_dir))
  rows = [dict(r) for r in summary["rows"] if r["level"] <= levels]
  for r in rows:
    r["replicate"] = replicate
  return rows


def aggregate(rows: List[dict]) -> List[dict]:
  """Mean and sample std per (level, run) over the replicates' rows."""
  groups: Dict[tuple, List[dict]] = {}
  for r in rows:
    groups.setdefault((r["level"], r["run"]), []).append(r)
  out = []
  for (level, run), group in sorted(groups.items()):
    row = {"level": level, "run": run, "replicates": len(group)}
    for key in _AVERAGED:
      values = [float(r[key]) for r in group if r.get(key) is not None]
      if not values:
        continue
      mean = sum(values) / len(values)
      row[key] = mean
      if key != "density":
        row[f"{key}_std"] = (math.sqrt(sum((v - mean) ** 2 for v in values)
                                       / (len(values) - 1))
                             if len(values) > 1 else None)
    out.append(row)
  return out


def write(out_dir: str, member_dirs: List[str], levels: int, *,
          writer: store.Writer = store.LOCAL) -> List[dict]:
  """The aggregate of ``member_dirs`` (replicate k = the k-th) in
  ``out_dir``; returns its rows."""
  everything = []
  for k, d in enumerate(member_dirs):
    everything.extend(_member_rows(d, levels, k, writer))
  table = aggregate(everything)
  provenance = writer.read_json(paths.hparams(member_dirs[0]))
  writer.write_json(os.path.join(out_dir, "replicates.json"), {
      "members": [{"replicate": k, "experiment": os.path.basename(
          d.rstrip("/")), "directory": d,
                   "seed": provenance["seed"] + k}
                  for k, d in enumerate(member_dirs)],
      "provenance": provenance})
  writer.write_json(paths.summary(out_dir),
                    {"rows": table, "replicates": len(member_dirs),
                     "provenance": provenance})
  first = ("density", "level", "run")
  writer.write_csv(os.path.join(out_dir, paths.SUMMARY_CSV), table,
                   first=first)
  writer.write_csv(os.path.join(out_dir, "replicates.csv"), everything,
                   first=("replicate", "seed", "experiment", *first))
  title = _title(provenance, len(member_dirs))
  report.plot_accuracy_vs_density(table, os.path.join(out_dir, paths.PLOT),
                                  title=title, writer=writer)
  return table


def _title(provenance: dict, n: int) -> str:
  words = getattr(report, "title", None)
  base = words(provenance) if words is not None else ""
  return (base + "\n" if base else "") + (
      f"mean of {n} replicates, error bars one standard deviation"
      if n > 1 else "one replicate")


def lines(table: List[dict], levels: int, replicates: int) -> List[str]:
  """One line per level: the density and each run's mean ± std (and how
  many replicates, where fewer than all reached it)."""
  out = []
  for level in range(levels + 1):
    rows = [r for r in table if r["level"] == level]
    if not rows:
      continue
    ticket = next((r for r in rows if r["run"] == paths.TICKET_RUN), rows[0])
    parts = [f"level {level}/{levels}",
             f"density {100 * ticket['density']:6.2f}%"]
    for r in sorted(rows, key=lambda r: r["run"] != paths.TICKET_RUN):
      if "test_accuracy" not in r:
        continue
      std = r.get("test_accuracy_std")
      spread = f" ± {100 * std:.2f}" if std is not None else ""
      parts.append(f"{r['run']} {100 * r['test_accuracy']:.2f}%{spread}"
                   + (f" (n={r['replicates']})"
                      if r["replicates"] < replicates else ""))
    out.append("  ".join(parts))
  return out
