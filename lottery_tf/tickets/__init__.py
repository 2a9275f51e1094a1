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
from lottery_tf.tickets.export import export
from lottery_tf.tickets.format import (FORMAT_VERSION, SERVING_DEFAULT,
                                       SERVING_RAW, TICKET_JSON, TRAINED_JSON)
from lottery_tf.tickets.saved_model import save, save_trained
from lottery_tf.tickets.ticket import (Ticket, load, load_trained_weights,
                                       read_meta, read_trained_meta,
                                       read_variables)

__all__ = ["FORMAT_VERSION", "SERVING_DEFAULT", "SERVING_RAW", "TICKET_JSON",
           "TRAINED_JSON", "Ticket", "export", "load", "load_trained_weights",
           "read_meta", "read_trained_meta", "read_variables", "save",
           "save_trained"]
