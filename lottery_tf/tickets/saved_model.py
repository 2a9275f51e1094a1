"""Writing tickets and trained networks as SavedModels (atomically)."""
import os
import shutil
import tempfile
from typing import Optional

from lottery_tf.foundations import fs, store
from lottery_tf._keras import keras, tf
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.tickets.format import (FORMAT_VERSION, SERVING_DEFAULT,
                                       SERVING_RAW, TICKET_JSON, TRAINED_JSON,
                                       file_hashes, manifest_digest)


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
    from lottery_tf.training.model import pruned_weights  # pylint: disable=g-import-not-at-top
    from lottery_tf.training.rewind import named_weights  # pylint: disable=g-import-not-at-top
    # The model's own variable objects: saved once, read by name. tfmot's
    # threshold and step variables are left out (the wrappers are stripped).
    self.weights = dict(named_weights(model))
    self.masks = ({name: pruned_weights(w)[0][1]
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


def atomic_dir(path: str, write) -> None:
  """``write(tmp_dir)`` then move it to ``path``, replacing what was there.

  On an object store (``gs://``, ``ram://``) directories cannot be renamed:
  ``write`` writes ``path`` itself, after the old content is removed. A
  ticket is still never taken for whole when it is not: its ``ticket.json``
  is written last and lists every file's sha256, which ``read_meta``
  checks; a level's ``trained/`` counts only once the level's metrics.json
  (written after it) exists.
  """
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
  record["files"] = file_hashes(tmp, manifest)
  record["manifest_sha256"] = manifest_digest(record)
  store.write_json(os.path.join(tmp, manifest), record)


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

  atomic_dir(path, write)
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

  atomic_dir(path, write)
  return path
