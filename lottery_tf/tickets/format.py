"""The ticket format: file names, version, and the digests that verify it.

A ticket (or a trained network) is a SavedModel directory whose json
(``assets/ticket.json``, ``assets/trained.json``) records the sha256 of every
other file and its own digest; it is written last, so a directory without a
valid json is not a ticket.
"""
import hashlib
import json
import os
from typing import Dict

from lottery_tf.foundations import fs, store

TICKET_JSON = os.path.join("assets", "ticket.json")
# Not ticket.json: a directory holding that is taken for a ticket (e.g. by
# `lmc --ticket`), and trained/ has no masks or rewind weights.
TRAINED_JSON = os.path.join("assets", "trained.json")
FORMAT_VERSION = 1
SERVING_DEFAULT = "serving_default"
SERVING_RAW = "serving_raw"


def file_hashes(root: str, manifest: str = TICKET_JSON) -> Dict[str, str]:
  out = {}
  for rel in fs.walk_files(root):
    if rel != manifest:
      out[rel] = store.sha256_file(fs.join(root, *rel.split("/")))
  return dict(sorted(out.items()))


def manifest_digest(record: dict) -> str:
  """sha256 of ticket.json's own content (it cannot list its own file hash)."""
  body = {k: v for k, v in record.items() if k != "manifest_sha256"}
  text = json.dumps(body, sort_keys=True, default=store._json_default)  # pylint: disable=protected-access
  return hashlib.sha256(text.encode()).hexdigest()
