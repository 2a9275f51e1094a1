"""Tickets: a mask plus the rewind-point weights, exported as a SavedModel.

lottery_tf reads a ticket as data only: ``assets/ticket.json`` and the
variables, through TensorFlow's checkpoint reader on ``variables/``; the
network is rebuilt from lottery_tf's own model registry and checked against
the shapes ticket.json records. It never loads the SavedModel's graph, which
would run whatever ops its author put there (see ``read_variables``).

For serving without lottery_tf, ``tf.saved_model.load(path)`` works in a
plain TensorFlow process (and runs the graph: do it only with tickets you
trust that far): the loaded object has ``weights`` (``layer/weight`` -> variable,
rewind-point values with pruned entries at 0), ``masks`` (layer -> 0/1
variable) and a ``serving_default`` signature returning the masked network's
``logits``. ``assets/ticket.json`` records the provenance and a sha256 of
every other file, which ``load`` verifies before trusting anything.

Saved with the data's hparams (as the runner does), the ticket and the
trained network also have a ``serving_raw`` signature: the dataset's raw
uint8 images in, the evaluation preprocessing (``preprocess.to_input``,
traced at save time) applied inside the graph, ``logits`` out; its numbers
are in the json's ``preprocessing`` (``assets/trained.json`` for
``trained/``), so nobody needs lottery_tf to feed either signature.
"""
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from typing import Dict, Optional

import numpy as np

from lottery_tf import artifacts, fs
from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.hparams import DatasetHparams

TICKET_JSON = os.path.join("assets", "ticket.json")
# Not ticket.json: a directory holding that is taken for a ticket (e.g. by
# `lmc --ticket`), and trained/ has no masks or rewind weights.
TRAINED_JSON = os.path.join("assets", "trained.json")
FORMAT_VERSION = 1
SERVING_DEFAULT = "serving_default"
SERVING_RAW = "serving_raw"


class _TicketModule(tf.Module):
  """What the SavedModel holds; plain tf.Module so TF alone can load it.

  The Keras model is deliberately not an attribute: tracking it would make
  SavedModel trace every layer's call for Keras' own format (seconds per
  save for VGG19). The serving function closes over it, and its variables
  are saved once, through ``weights``.
  """

  def __init__(self, model: keras.Model, with_masks: bool, plan=None):
    super().__init__(name="ticket")
    from lottery_tf.pruning.wrap import wrappers  # pylint: disable=g-import-not-at-top
    from lottery_tf.training.rewind import named_weights  # pylint: disable=g-import-not-at-top
    # The model's own variable objects: saved once, read by name. tfmot's
    # threshold and step variables are left out (the wrappers are stripped).
    self.weights = dict(named_weights(model))
    self.masks = ({name: w.pruning_vars[0][1]
                   for name, w in wrappers(model).items()}
                  if with_masks else {})
    shape = [None, *model.inputs[0].shape[1:]]
    self.serve = tf.function(
        lambda x: {"logits": model(x, training=False)},
        input_signature=[tf.TensorSpec(shape, tf.float32, name="images")])
    self.serve_raw = None
    if plan is not None:
      from lottery_tf.data import preprocess  # pylint: disable=g-import-not-at-top

      def serve_raw(raw):
        # The pipeline's own eval transform, traced into the graph: the
        # SavedModel then preprocesses exactly as evaluation did.
        x = tf.ensure_shape(preprocess.to_input(raw, plan),
                            [None, *plan.input_shape])
        return {"logits": model(x, training=False)}

      self.serve_raw = tf.function(serve_raw, input_signature=[
          tf.TensorSpec(preprocess.raw_shape(plan), tf.uint8, name="images")])

  def signatures(self) -> dict:
    out = {SERVING_DEFAULT: self.serve}
    if self.serve_raw is not None:
      out[SERVING_RAW] = self.serve_raw
    return out


def _serving_record(plan) -> dict:
  """The json's description of the signatures and of serving_raw's
  preprocessing (every number of it)."""
  from lottery_tf.data import preprocess  # pylint: disable=g-import-not-at-top
  info = preprocess.describe(plan)
  return {
      "signatures": {
          SERVING_DEFAULT: {"images": info["output"],
                            "outputs": ["logits"]},
          SERVING_RAW: {"images": info["raw_input"],
                        "outputs": ["logits"]},
      },
      "preprocessing": info,
  }


def _plan(data: Optional[DatasetHparams]):
  if data is None:
    return None
  from lottery_tf.data import preprocess  # pylint: disable=g-import-not-at-top
  return preprocess.make_plan(data)


def _atomic_dir(path: str, write) -> None:
  """``write(tmp_dir)`` then move it to ``path``, replacing what was there.

  On an object store (``gs://``, ``ram://``) directories cannot be renamed:
  ``write`` writes ``path`` itself, after the old content is removed. A
  ticket is still never taken for whole when it is not: its ``ticket.json``
  is written last and lists every file's sha256, which ``read_meta``
  checks; a level's ``trained/`` counts only once the level's metrics.json
  (written after it) exists.
  """
  path = artifacts.writable(path)
  if fs.is_url(path):
    fs.rmtree(path)
    fs.makedirs(path)
    write(path)
    return
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
  try:
    write(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp made it 0700
    if os.path.exists(path):
      old = tempfile.mkdtemp(prefix=".old-", dir=parent)
      os.rmdir(old)
      os.replace(path, old)
      os.replace(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)


def _file_hashes(root: str, manifest: str = TICKET_JSON) -> Dict[str, str]:
  out = {}
  for rel in fs.walk_files(root):
    if rel != manifest:
      out[rel] = artifacts.sha256_file(fs.join(root, *rel.split("/")))
  return dict(sorted(out.items()))


def _manifest_digest(record: dict) -> str:
  """sha256 of ticket.json's own content (it cannot list its own file hash)."""
  body = {k: v for k, v in record.items() if k != "manifest_sha256"}
  text = json.dumps(body, sort_keys=True, default=artifacts._json_default)  # pylint: disable=protected-access
  return hashlib.sha256(text.encode()).hexdigest()


def _write_saved_model(tmp: str, module: _TicketModule, meta: dict,
                       manifest: str, plan) -> None:
  """The SavedModel, then its json: ``meta`` + the serving record + every
  file's sha256 + the json's own digest (written last, so a half-written
  directory never verifies)."""
  tf.saved_model.save(module, tmp, signatures=module.signatures())
  record = dict(meta)
  record["format_version"] = FORMAT_VERSION
  # What a reader checks the variables against (``read_variables``).
  record["shapes"] = {
      group: {str(k): [int(d) for d in v.shape]
              for k, v in getattr(module, group).items()}
      for group in ("weights", "masks") if getattr(module, group)}
  if plan is not None:
    record.update(_serving_record(plan))
  record["files"] = _file_hashes(tmp, manifest)
  record["manifest_sha256"] = _manifest_digest(record)
  artifacts.write_json(os.path.join(tmp, manifest), record)


def save(path: str, model: keras.Model, meta: dict,
         data: Optional[DatasetHparams] = None) -> str:
  """Exports a wrapped model holding rewind weights x mask as a ticket.

  ``data``: the hparams the network was trained on; with them the ticket
  gets the ``serving_raw`` signature and ticket.json its ``preprocessing``.
  """
  from lottery_tf import pruning  # pylint: disable=g-import-not-at-top
  masks = pruning.get_masks(model)
  plan = _plan(data)

  def write(tmp):
    module = _TicketModule(model, with_masks=True, plan=plan)
    _write_saved_model(tmp, module, dict(meta, masks=sorted(masks)),
                       TICKET_JSON, plan)

  _atomic_dir(path, write)
  return path


def save_trained(path: str, model: keras.Model,
                 data: Optional[DatasetHparams] = None,
                 meta: Optional[dict] = None) -> str:
  """The trained sparse network as a plain tf.Module SavedModel (not Keras
  format), wrappers stripped.

  ``tf.saved_model.load(path)``: ``weights`` (``layer/weight`` -> variable,
  pruned entries exactly 0; no masks or tfmot variables) and the
  ``serving_default`` signature returning logits. ``model`` may be wrapped.
  With ``data`` (its training hparams) also ``serving_raw``, and
  ``assets/trained.json`` (``meta``, the preprocessing, file sha256s) that
  ``read_trained_meta`` verifies.
  """
  plan = _plan(data)

  def write(tmp):
    module = _TicketModule(model, with_masks=False, plan=plan)
    _write_saved_model(tmp, module, dict(meta or {}), TRAINED_JSON, plan)

  _atomic_dir(path, write)
  return path


def load_trained_weights(path: str, flag: str = "--ticket"
                         ) -> Dict[str, np.ndarray]:
  """The weights of a level's ``trained/`` network, by ``layer/weight``.

  Verified against ``assets/trained.json`` when it has one (networks saved
  before it existed have none and load as they are).
  """
  meta = {}
  if fs.exists(os.path.join(path, TRAINED_JSON)):
    meta = read_trained_meta(path, flag)
  elif not fs.isdir(path):
    raise UserError(f"{flag}: {path} is not a trained network directory")
  return read_variables(path, flag, meta, TRAINED_JSON)["weights"]


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def read_variables(path: str, flag: str, meta: dict,
                   manifest: str = TICKET_JSON) -> Dict[str, Dict[str, np.ndarray]]:
  """``{"weights": {...}, "masks": {...}}`` of a ticket or trained network,
  read as tensors: the SavedModel's graph is never loaded or run.

  The variables come from the checkpoint in ``variables/`` (TensorFlow's
  checkpoint reader; works on gs:// and ram:// paths), found by name through
  its object graph (a protobuf, parsed as data). Shapes and dtypes are
  checked against ``shapes`` in the json when it records them (tickets
  written before it did are checked against the rebuilt network later).
  """
  from tensorflow.core.protobuf import trackable_object_graph_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  prefix = os.path.join(path, "variables", "variables")
  try:
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    root = graph.nodes[0]
    out = {}
    for group in ("weights", "masks"):
      out[group] = {}
      node = [c.node_id for c in root.children if c.local_name == group]
      if not node:
        continue
      for child in graph.nodes[node[0]].children:
        keys = [a.checkpoint_key for a in graph.nodes[child.node_id].attributes
                if a.name == "VARIABLE_VALUE"]
        if len(keys) != 1:
          raise ValueError(f"{group}/{child.local_name} is not one variable")
        value = reader.get_tensor(keys[0])
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
          raise ValueError(f"{group}/{child.local_name} is not a numeric "
                           "tensor")
        out[group][str(child.local_name)] = value
  except (tf.errors.OpError, ValueError, IndexError, TypeError,
          AttributeError) as e:  # DecodeError is a ValueError.
    raise UserError(f"{flag}: cannot read the variables of {prefix} "
                    f"({_first_line(e)})") from e
  if not out["weights"]:
    raise UserError(f"{flag}: {prefix} holds no weights; not a lottery_tf "
                    "ticket or trained network")
  recorded = meta.get("shapes")
  if recorded is not None:
    where = os.path.join(path, manifest)
    try:
      recorded = {g: {str(k): [int(d) for d in v] for k, v in dict(r).items()}
                  for g, r in dict(recorded).items()}
    except (TypeError, ValueError) as e:
      raise UserError(f"{flag}: {where}: shapes is not "
                      "{group: {name: [dims]}}") from e
    for group, values in out.items():
      want = recorded.get(group, {})
      have = {k: list(v.shape) for k, v in values.items()}
      if have != want:
        diff = sorted(k for k in set(have) | set(want)
                      if have.get(k) != want.get(k))
        name = diff[0]
        raise UserError(
            f"{flag}: {prefix} disagrees with {where}: {group} {name!r} has "
            f"shape {have.get(name)} in the variables and {want.get(name)} "
            "recorded; refusing to load it")
  return out


def read_meta(path: str, flag: str = "--ticket") -> dict:
  """ticket.json after checking every file's sha256; UserError otherwise."""
  return _verified(path, flag, TICKET_JSON, "ticket")


def read_trained_meta(path: str, flag: str = "--ticket") -> dict:
  """A ``trained/`` network's trained.json, verified as ``read_meta`` does."""
  return _verified(path, flag, TRAINED_JSON, "trained network")


def _verified(path: str, flag: str, manifest: str, what: str) -> dict:
  meta_path = os.path.join(path, manifest)
  if not fs.isdir(path):
    raise UserError(f"{flag}: {path} is not a {what} directory")
  if not fs.exists(meta_path):
    raise UserError(f"{flag}: {meta_path} is missing; not a lottery_tf {what}")
  try:
    meta = artifacts.read_json(meta_path)
    expected = dict(meta["files"])
    recorded = meta["manifest_sha256"]
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"{flag}: {meta_path} is corrupt ({e})") from e
  if recorded != _manifest_digest(meta):
    raise UserError(f"{flag}: {what} file {meta_path} was modified (sha256 "
                    "mismatch); refusing to load it")
  actual = _file_hashes(path, manifest)
  for rel, digest in expected.items():
    if rel not in actual:
      raise UserError(f"{flag}: {what} file {os.path.join(path, rel)} is "
                      "missing")
    if actual[rel] != digest:
      raise UserError(f"{flag}: {what} file {os.path.join(path, rel)} was "
                      "modified (sha256 mismatch); refusing to load it")
  extra = set(actual) - set(expected)
  if extra:
    raise UserError(f"{flag}: unexpected file(s) in {what} {path}: "
                    f"{', '.join(sorted(extra))}")
  return meta


@dataclasses.dataclass
class Ticket:
  path: str
  meta: dict
  weights: Dict[str, np.ndarray]
  masks: Dict[str, np.ndarray]
  flag: str = "--ticket"

  @property
  def model_name(self) -> str:
    return self.meta["model"]

  def build(self, input_shape=None, num_classes: Optional[int] = None,
            seed: Optional[int] = None, skip=()) -> keras.Model:
    """The wrapped Keras model with the ticket's weights and masks.

    ``skip``: layers (e.g. the classifier, for transfer) left at their
    fresh initialisation and dense masks.
    """
    from lottery_tf import models, pruning  # pylint: disable=g-import-not-at-top
    from lottery_tf.training.rewind import load_weights  # pylint: disable=g-import-not-at-top
    where = os.path.join(self.path, TICKET_JSON)
    try:
      input_shape = tuple(int(d) for d in (input_shape
                                           or self.meta["input_shape"]))
      num_classes = int(num_classes or self.meta["num_classes"])
      seed = int(self.meta.get("seed", 0) if seed is None else seed)
      prune = dict(self.meta.get("pruning", {}))
      ignored = [s for s in str(prune.get("layers_to_ignore", "")).split(",")
                 if s]
      prune_only = str(prune.get("prune_only") or "") or None
      name = str(self.model_name)
    except (TypeError, ValueError) as e:
      raise UserError(f"{self.flag}: {where}: model, input_shape, "
                      f"num_classes, seed or pruning malformed ({e})") from e
    model = models.build(name, input_shape, num_classes, seed=seed)
    model = pruning.wrap(model, layers_to_ignore=ignored,
                         prune_only=prune_only)
    try:
      load_weights(model, self.weights, skip=skip)
      current = pruning.get_masks(model)
      missing = sorted(set(current) - set(self.masks) - set(skip))
      if missing:
        raise KeyError(f"no mask for pruned layer {missing[0]}")
      extra = sorted(set(self.masks) - set(current))
      if extra:
        raise KeyError(f"a mask for {extra[0]}, which {name} does not prune")
      pruning.set_masks(model, {k: (current[k] if k in skip else v)
                                for k, v in self.masks.items()})
    except (KeyError, ValueError, UserError) as e:
      raise UserError(
          f"{self.flag}: ticket {self.path} does not fit lottery_tf's "
          f"{name} {input_shape}->{num_classes}: {str(e).strip(chr(39))}"
          ) from e
    return model


def load(path: str, flag: str = "--ticket") -> Ticket:
  """Verifies and reads a ticket; UserError naming the file if it is bad."""
  meta = read_meta(path, flag)
  if meta.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
    raise UserError(f"{flag}: {os.path.join(path, TICKET_JSON)} has "
                    f"format_version {meta.get('format_version')}; this "
                    f"lottery_tf reads {FORMAT_VERSION} (upgrade lottery_tf)")
  for key in ("model", "input_shape", "num_classes"):
    if key not in meta:
      raise UserError(f"{flag}: {os.path.join(path, TICKET_JSON)} has no "
                      f"{key!r}; not a lottery_tf ticket")
  variables = read_variables(path, flag, meta)
  masks = variables["masks"]
  bad = [k for k, v in masks.items() if not np.all((v == 0) | (v == 1))]
  if bad:
    raise UserError(f"{flag}: ticket {path}: the mask of {bad[0]!r} holds "
                    "values other than 0 and 1")
  ticket = Ticket(path=path, meta=meta, weights=variables["weights"],
                  masks=masks, flag=flag)
  # The architecture is lottery_tf's own, rebuilt from its registry: the
  # ticket's variables must fit it exactly (shapes, names).
  ticket.build()
  return ticket


def export(ticket: Ticket, export_dir: str, overwrite: bool = False) -> str:
  """Copies a verified ticket to ``export_dir/ticket`` with ``.npz`` views.

  ``masks.npz`` and ``weights.npz`` (rewind weights, pruned entries 0) serve
  readers without TensorFlow; ``export.json`` records where it came from.
  An earlier export in ``export_dir`` is replaced only with ``overwrite``.
  """
  source = fs.abspath(ticket.path).rstrip("/")
  target = fs.abspath(export_dir).rstrip("/")
  if target == source or target.startswith(source + "/"):
    raise UserError(f"--export_dir: {export_dir} is inside the ticket being "
                    f"exported ({ticket.path}); choose a directory outside it")
  if source.startswith(target + "/ticket/") or source == target + "/ticket":
    raise UserError("--export_dir: would overwrite the ticket itself")
  if not overwrite and any(fs.exists(os.path.join(export_dir, f)) for f in (
      "export.json", "ticket", "masks.npz", "weights.npz")):
    raise UserError(f"--export_dir: {export_dir} holds an earlier export; "
                    "pass --overwrite to replace it, or choose another "
                    "directory")
  artifacts.prepare_output_dir(export_dir, "--export_dir")
  dest = os.path.join(export_dir, "ticket")
  _atomic_dir(dest, lambda tmp: fs.copytree(ticket.path, tmp))
  read_meta(dest, "--export_dir")  # the copy verifies too
  artifacts.write_npz(os.path.join(export_dir, "masks.npz"), ticket.masks)
  artifacts.write_npz(os.path.join(export_dir, "weights.npz"), ticket.weights)
  summary = {"source": fs.abspath(ticket.path), "ticket": dest,
             "model": ticket.model_name, "level": ticket.meta.get("level"),
             "density": ticket.meta.get("density"),
             "versions": artifacts.library_versions()}
  path = os.path.join(export_dir, "export.json")
  artifacts.write_json(path, summary)
  return path


__all__ = ["SERVING_DEFAULT", "SERVING_RAW", "TICKET_JSON", "TRAINED_JSON",
           "Ticket", "export", "load", "load_trained_weights", "read_meta",
           "read_trained_meta", "save", "save_trained"]
