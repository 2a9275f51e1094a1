"""Analyses of trained networks: linear mode connectivity, per-example outputs.

    from lottery_tf.analysis import lmc, per_example
    summary, arrays = lmc.evaluate_path(model, w1, w2, datasets)
    summary["instability"]          # test error barrier (Frankle et al. 2020)
    arrays["barrier"]               # per-example loss barrier at alpha = 0.5

``lottery_tf lmc`` (:mod:`lottery_tf.analysis.instability`) trains the two
copies from an initialisation, a rewind point or a ticket; ``find
--lmc_every_level`` does it for every level's ticket.
"""
