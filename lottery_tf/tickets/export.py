"""Exporting a verified ticket with .npz views for readers without TF."""
import os

from lottery_tf.foundations import fs, provenance, store, workspace
from lottery_tf.errors import UserError
from lottery_tf.tickets.saved_model import atomic_dir
from lottery_tf.tickets.ticket import Ticket, read_meta


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
  workspace.prepare_output_dir(export_dir, "--export_dir")
  dest = os.path.join(export_dir, "ticket")
  atomic_dir(dest, lambda tmp: fs.copytree(ticket.path, tmp))
  read_meta(dest, "--export_dir")  # the copy verifies too
  store.write_npz(os.path.join(export_dir, "masks.npz"), ticket.masks)
  store.write_npz(os.path.join(export_dir, "weights.npz"), ticket.weights)
  summary = {"source": fs.abspath(ticket.path), "ticket": dest,
             "model": ticket.model_name, "level": ticket.meta.get("level"),
             "density": ticket.meta.get("density"),
             "versions": provenance.library_versions()}
  path = os.path.join(export_dir, "export.json")
  store.write_json(path, summary)
  return path
