"""Before choosing how replicas share state: what would vector search inside PostgreSQL cost?

The alternative to a change log is to keep no item vectors in the replicas and search them in
the database with pgvector (it ships with pgserver). This measures one top-10 query by cosine,
exact (a scan) and with pgvector's HNSW index, against the same search in a replica's memory
(numpy, one matrix product), on clustered unit vectors (64 centres plus noise, 384-d, seed 0).

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/pgvector_probe.py --items 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from liveserver import percentiles, save_report


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, dim))
    vectors = centres[rng.integers(0, 64, n)] + 0.5 * rng.normal(size=(n, dim))
    out: np.ndarray = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return out


def timed_queries(run: Any, queries: np.ndarray) -> dict[str, Any]:
    seconds = []
    for query in queries:
        start = time.perf_counter()
        run(query)
        seconds.append(time.perf_counter() - start)
    return percentiles(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/replicas")
    args = parser.parse_args()
    import pgserver
    import psycopg

    vectors = clustered(args.items, args.dim)
    queries = clustered(args.queries, args.dim, seed=1)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args),
    }
    report["numpy_exact"] = timed_queries(
        lambda q: np.argpartition(-(vectors @ q), 10)[:10], queries
    )
    with tempfile.TemporaryDirectory(prefix="coldbrew-pgvector-") as tmp:
        server = pgserver.get_server(Path(tmp), cleanup_mode="stop")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(f"CREATE TABLE v (id int primary key, e vector({args.dim}))")
                start = time.perf_counter()
                with conn.cursor().copy("COPY v (id, e) FROM STDIN") as copy:
                    for n, row in enumerate(vectors):
                        copy.write_row((n, "[" + ",".join(f"{x:.6f}" for x in row) + "]"))
                report["load_s"] = round(time.perf_counter() - start, 2)
                sql = "SELECT id FROM v ORDER BY e <=> %s::vector LIMIT 10"

                def search(query: np.ndarray) -> None:
                    text = "[" + ",".join(f"{x:.6f}" for x in query) + "]"
                    conn.execute(sql, (text,)).fetchall()

                report["pgvector_exact"] = timed_queries(search, queries)
                start = time.perf_counter()
                conn.execute("CREATE INDEX ON v USING hnsw (e vector_cosine_ops)")
                report["hnsw_build_s"] = round(time.perf_counter() - start, 2)
                report["pgvector_hnsw"] = timed_queries(search, queries)
        finally:
            server.cleanup()
    save_report(args.out, f"pgvector-probe-{args.items}", report)


if __name__ == "__main__":
    main()
