"""The running recommender without HTTP: the engine (:mod:`~coldbrew.live.engine`, a facade over
its state, :mod:`~coldbrew.live.state`: item table, histories, filters, locks; and the jobs done
on it, each a module: writes, queries, ranking, candidates, the served model's versions, similar
items, status), refits and model versions, replicas over one database, explanations, the bulk
importer and the records it reads and writes. :mod:`coldbrew.serve` puts it behind HTTP; nothing
here imports the service (the ``[serve]`` extra's database stack is imported by the store)."""
