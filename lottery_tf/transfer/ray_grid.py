"""``lottery_tf grid --executor=ray``: the grid's runs as Ray tasks.

The same resumable code as the sequential path (grid.GridRunner), fanned
out: one task per source find (source x source optimizer), one per target's
own IMP (the control every first-replicate cell reads: one task, so that no
two cells train it at once), and one per transfer cell with its controls.
A cell is submitted as soon as its source's tickets exist, and waits in
Ray for the own IMP it reads. Every task rebuilds the GridRunner from its
hparams (``GridRunner.config``) and runs exactly what the sequential path
runs for it, so every run seeds itself as there and ``grid.csv`` is the
same, value for value. The driver prints one line per finished task
(cells done / total, ETA), and at the end writes grid.csv, the plots and
the heatmap from the cells' records in the sequential order.

Each task's experiment directory is its own: the driver submits each
directory once (source finds and own IMPs deduplicated by directory), and
the runners claim it while they write (workspace.experiment_lock: a flock
on the machine, and a heartbeat claim file on the shared output dir that a
second driver's tasks respect). A task whose worker dies is retried by Ray
(its claim is stale at once on the same host, after the lease elsewhere); a cell that fails is reported with its
error and the others go on; the command then exits 1, and running it again
re-runs only what is unfinished (finished experiments are found done).
Where each task ran and when is written to ``ray_tasks.json`` beside
grid.csv.

The workers need lottery_tf importable (the same installation on every
node) and the output directory shared (a shared filesystem, or gs://).
"""
import dataclasses
import os
import socket
import time
from typing import Dict, List, Tuple

from lottery_tf.errors import RunFailed, UserError

TASKS_FILE = "ray_tasks.json"
#: Retries of a task whose worker process died (Ray's own retry; a task
#: that raises is not retried: the error is reported).
WORKER_RETRIES = 3


def _ray():
  try:
    import ray  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UserError("--executor=ray: Ray is not installed; pip install "
                    "'lottery_tf[ray]' (or ray)") from None
  return ray


def _connect(ray, address: str) -> None:
  if ray.is_initialized():
    return
  # The workers' output stays on the workers; the driver prints one line
  # per finished task. TF_USE_LEGACY_KERAS reaches the workers before they
  # import TensorFlow.
  env = {"env_vars": {"TF_USE_LEGACY_KERAS": "1",
                      "TF_CPP_MIN_LOG_LEVEL": "2"}}
  if address and address != "auto":
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
      raise UserError(f"--ray_address: {address!r} is not `auto` or "
                      "HOST:PORT")
    # Ray waits minutes for a head that is not there: ask first.
    try:
      socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as e:
      raise UserError(f"--ray_address: no Ray head answers at {address} "
                      f"({e.strerror or e})") from None
  try:
    ray.init(address=address or None, log_to_driver=False,
             runtime_env=env, include_dashboard=False,
             configure_logging=True, logging_level="ERROR")
  except (ConnectionError, ValueError, RuntimeError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"--ray_address: cannot reach a Ray cluster at "
                    f"{address!r} ({first})") from None


# -- what runs in a task -----------------------------------------------------


def _task(config: dict, kind: str, payload, *deps) -> dict:
  """One node of the grid, in a Ray worker: ``kind`` is ``find`` (payload:
  source spec, optimizer), ``own`` (a cell at the highest transferred
  level: its target's own IMP) or ``cell``. ``deps`` are the results of
  the tasks it waits for (Ray passes them once they are done)."""
  del deps  # Only waited for.
  began = time.time()
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
  # pylint: disable=g-import-not-at-top
  import ray
  from lottery_tf import paths, tickets
  from lottery_tf.transfer import grid
  from lottery_tf.foundations import workspace
  from lottery_tf.training import distribute
  distribute.setup(config["thp"])
  # A retry after a worker died on another machine finds the dead worker's
  # claim on the directory: it waits for that lease to run out.
  workspace.claim_wait_seconds = (workspace.LEASE_SECONDS +
                                  2 * workspace.HEARTBEAT_SECONDS)
  runner = grid.GridRunner(**config, quiet=True, log=lambda line: None)
  # started: the function began (the worker is up); ready: TensorFlow and
  # lottery_tf imported, the runner built, the run begins.
  out = {"kind": kind, "node": ray.get_runtime_context().get_node_id(),
         "host": socket.gethostname(), "pid": os.getpid(), "started": began,
         "ready": time.time()}
  if kind == "find":
    out["dir"] = runner.find_source(*payload)
  else:
    cell = payload
    ticket = tickets.load(paths.ticket(
        runner.find_description(*cell.find).directory(runner.output_dir),
        cell.level))
    if kind == "own":
      own = runner.transfer_runner(cell, ticket).own_find()
      own.run()
      out["dir"] = own.exp_dir
    else:
      out["records"], out["line"] = runner.transfer(cell, ticket)
  out["ended"] = time.time()
  return out


# -- the driver --------------------------------------------------------------


@dataclasses.dataclass
class _Node:
  kind: str  # find, own, cell
  what: str  # for the progress lines
  submitted: float
  index: int = -1  # a cell's position in the sequential order
  dir: str = ""  # a find's experiment directory


def _error_line(e: BaseException) -> str:
  """The last line of a task's error that says what went wrong."""
  cause = getattr(e, "cause", None)
  text = str(cause if cause is not None else e).strip()
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  return lines[-1] if lines else type(e).__name__


def run(runner) -> str:
  """Runs ``runner``'s grid (a grid.GridRunner) on Ray; returns grid.json's
  path. RunFailed (exit 1) if any task failed, after the others ran."""
  # pylint: disable=g-import-not-at-top
  from lottery_tf import paths, tickets
  from lottery_tf.foundations import fs
  from lottery_tf.lottery.report import duration
  from lottery_tf.transfer import grid
  from lottery_tf.transfer.runner import own_find_of
  ray = _ray()
  ghp = runner.ghp
  if runner.thp.strategy == "multi_worker":
    raise UserError("--strategy: multi_worker cannot run inside Ray tasks; "
                    "use --strategy=mirrored with --gpus_per_run")
  _connect(ray, ghp.ray_address)
  log = runner.log
  fs.makedirs(runner.exp_dir)
  levels = ghp.levels(runner.lhp.levels)
  cells = grid.cells(ghp, runner.sources, runner.targets, levels)
  # The workers' working directory is not the driver's: a local
  # --output_dir is handed to them absolute (a URL as it is).
  config = dict(runner.config(), output_dir=fs.abspath(runner.output_dir))
  config_ref = ray.put(config)
  remote = ray.remote(num_cpus=ghp.cpus_per_run, num_gpus=ghp.gpus_per_run,
                      max_retries=WORKER_RETRIES,
                      retry_exceptions=False)(_task)
  began = time.time()
  pending: Dict = {}  # ref -> _Node
  find_refs: Dict[str, object] = {}  # experiment dir -> its task's ref
  find_of: Dict[Tuple, str] = {}  # (spec, optimizer) -> experiment dir
  for key in dict.fromkeys(c.find for c in cells):
    d = runner.find_description(*key).directory(runner.output_dir)
    find_of[key] = d
    if d not in find_refs:
      ref = remote.remote(config_ref, "find", key)
      find_refs[d] = ref
      pending[ref] = _Node("find", f"find {grid.label(key[0])} ({key[1]})",
                           time.time(), dir=d)
  records: Dict[int, List[dict]] = {}
  tasks: List[dict] = []
  failed: List[str] = []
  planned = set()
  top = max(levels)
  log(f"grid on Ray: {len(cells)} cells, {len(find_refs)} source finds, "
      f"{ghp.cpus_per_run:g} CPU and {ghp.gpus_per_run:g} GPU per task, "
      f"cluster {ray.cluster_resources().get('CPU', 0):g} CPUs")

  def plan_cells(key) -> None:
    """Once a source's tickets exist: its cells, and the own IMPs they
    read (one task per directory)."""
    for i, cell in enumerate(cells):
      if cell.find != key or i in planned:
        continue
      planned.add(i)
      deps = [find_refs[find_of[key]]]
      if cell.replicate == 0:
        # As TransferRunner.own_find names it, from the ticket's
        # (verified) ticket.json alone: no weights read here.
        own_dir = own_find_of(
            runner.target_dhp(cell), cell.training(runner.thp, ghp),
            runner.cell_trhp(cell),
            tickets.read_meta(paths.ticket(find_of[key], cell.level)),
        ).directory(runner.output_dir)
        if own_dir not in find_refs:
          ref = remote.remote(config_ref, "own",
                              dataclasses.replace(cell, level=top))
          find_refs[own_dir] = ref
          pending[ref] = _Node("own", f"own IMP of {grid.label(cell.target)} "
                               f"({cell.target_optimizer})", time.time())
        deps.append(find_refs[own_dir])
      ref = remote.remote(config_ref, "cell", cell, *deps)
      pending[ref] = _Node("cell", cell.name(runner.mhp.model), time.time(), i)

  done_cells = 0
  while pending:
    ready, _ = ray.wait(list(pending), num_returns=1)
    node = pending.pop(ready[0])
    try:
      out = ray.get(ready[0])
    except Exception as e:  # pylint: disable=broad-except
      # A task that raised, or whose dependency did: reported, the rest
      # go on.
      failed.append(node.what)
      if node.kind == "cell":
        done_cells += 1
        log(f"[{done_cells}/{len(cells)}] FAILED {node.what}: "
            f"{_error_line(e)}")
      else:
        log(f"FAILED {node.what}: {_error_line(e)}")
      if node.kind == "find":  # its cells cannot start
        lost = [c for c in cells if find_of[c.find] == node.dir]
        done_cells += len(lost)
        failed.extend(c.name(runner.mhp.model) for c in lost)
      continue
    out["what"], out["submitted"] = node.what, node.submitted
    tasks.append(out)
    where = f"on {out['host']} (node {out['node'][:8]})"
    if node.kind == "find":
      log(f"{node.what}: done {where}")
      for key, d in find_of.items():
        if d == node.dir:
          plan_cells(key)
    elif node.kind == "own":
      log(f"{node.what}: done {where}")
    else:
      done_cells += 1
      records[node.index] = out["records"]
      elapsed = time.time() - began
      left = len(cells) - done_cells
      eta = f"  ETA {duration(elapsed / done_cells * left)}" if left else ""
      log(f"[{done_cells}/{len(cells)}] {out['line']}  {where}{eta}")
  runner.writer.write_json(os.path.join(runner.exp_dir, TASKS_FILE), {
      "tasks": sorted(tasks, key=lambda t: t["started"]),
      "wall_seconds": time.time() - began})
  if failed:
    raise RunFailed(
        f"grid: {len(failed)} task(s) failed ({', '.join(failed[:3])}"
        f"{', ...' if len(failed) > 3 else ''}); the rest are done. Run the "
        "same command again to retry what is unfinished")
  return runner.finish([r for i in sorted(records) for r in records[i]],
                       levels)
