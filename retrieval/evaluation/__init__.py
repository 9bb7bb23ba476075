"""The evaluation harness of ``quotebot eval``: SQuAD questions over an open corpus.

``squad`` loads a SQuAD-format file, ``cache`` keeps its index by content hash,
``baselines`` are the BM25-only and dense-only answerers, ``metrics`` the pure metric
functions, ``harness`` runs the systems and builds the report, ``abstention`` sweeps the
confidence threshold and ``report`` renders the table.
"""
