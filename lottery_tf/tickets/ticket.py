"""Reading a ticket as data: its json and variables, never its graph."""
import dataclasses
import os
from typing import Dict, Optional

import numpy as np

from lottery_tf.foundations import fs, store
from lottery_tf._keras import keras, tf
from lottery_tf.errors import UserError
from lottery_tf.foundations.hparams import split_list
from lottery_tf.tickets.format import (FORMAT_VERSION, TICKET_JSON,
                                       TRAINED_JSON, file_hashes,
                                       manifest_digest)


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
    meta = store.read_json(meta_path)
    expected = dict(meta["files"])
    recorded = meta["manifest_sha256"]
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f"{flag}: {meta_path} is corrupt ({e})") from e
  if recorded != manifest_digest(meta):
    raise UserError(f"{flag}: {what} file {meta_path} was modified (sha256 "
                    "mismatch); refusing to load it")
  actual = file_hashes(path, manifest)
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

  def __repr__(self):
    keys = ("model", "dataset", "level", "density")
    meta = ", ".join(f"{k}={self.meta[k]!r}" for k in keys if k in self.meta)
    return f"Ticket({self.path!r}, {meta})"

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
      ignored = split_list(prune.get("layers_to_ignore", ""))
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
