"""The evaluation harness of ``quotebot eval`` (docs/eval.md).

``squad`` loads a SQuAD-format file, ``news`` the hand-written news question set,
``cache`` keeps their indexes by content hash (and narrows or grows them without embedding
again), ``masking`` leaves articles out of a search, ``baselines`` are the BM25-only and
dense-only answerers, ``metrics`` the pure metric functions, ``harness`` runs the systems
and builds the reports, ``abstention`` sweeps the confidence threshold and ``report``
renders the tables.
"""
