"""The running recommender without HTTP: the engine (load, writes, recommend), its state (item
table, histories, filters), refits and model versions, replicas over one database, explanations,
locks and the records it reads and writes. :mod:`coldbrew.serve` puts it behind HTTP; nothing
here imports the service (the ``[serve]`` extra's database stack is imported by the store)."""
