"""What one answer-cache lookup costs at 100 / 1,000 / 5,000 entries in a bucket.

`python -m bench.answer_cache_lookup [--redis-url URL] [--lookups 50]`: for each size, fills a
bucket of random 384-float vectors in Redis and times, per lookup (median and p99):

- *whole bucket*: the former lookup, a HGETALL of the bucket's hash, decoded and scanned;
- *mirror, nothing new*: this process's copy of the bucket (workers/answer_mirror.py), which
  reads only the entries appended since its last look: none;
- *mirror, one new*: the same while another process stores one entry between two lookups.

The buckets are made under a random collection name and deleted afterwards.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import redis

from workers.answer_cache import AnswerCache, bucket_key

DIMENSIONS = 384


def _unit(rng: np.random.Generator) -> list[float]:
    vector = rng.standard_normal(DIMENSIONS).astype(np.float32)
    return [float(v) for v in vector / np.linalg.norm(vector)]


def _whole_bucket(client: redis.Redis, name: str, query: list[float]) -> None:
    """The former lookup: the whole hash over the wire, decoded, then one matrix product."""
    entries: Any = client.hgetall(name)
    ids = list(entries)
    packed = b"".join(base64.b64decode(entries[i]) for i in ids)
    matrix = np.frombuffer(packed, dtype=np.float32).reshape(len(ids), -1)
    scores = matrix @ np.asarray(query, dtype=np.float32)
    np.argsort(-scores)[:3]


def _timed(lookups: int, run: Callable[[], object]) -> tuple[float, float]:
    times = []
    for _ in range(lookups):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def measure(client: redis.Redis, size: int, lookups: int) -> dict[str, Any]:
    """Lookup times (ms, median and p99) at `size` entries, each way."""
    rng = np.random.default_rng(size)
    key = bucket_key(0, f"bench-{uuid.uuid4().hex}", None, None, None, "m", "minilm")
    writer = AnswerCache(client, ttl_seconds=600, max_entries=size + lookups + 1)
    hashed = key.redis_key() + ":bench-hash"
    pipe = client.pipeline(transaction=False)
    for _ in range(size):
        job, vector = uuid.uuid4(), _unit(rng)
        writer.store(key, job, vector)
        packed = base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
        pipe.hset(hashed, str(job), packed)
    pipe.execute()
    query = _unit(rng)
    reader = AnswerCache(client, ttl_seconds=600, max_entries=size + lookups + 1)
    reader.nearest(key, query, 0.9)  # the first look reads the bucket whole, once
    try:
        whole = _timed(lookups, lambda: _whole_bucket(client, hashed, query))
        steady = _timed(lookups, lambda: reader.nearest(key, query, 0.9))

        def one_new() -> None:
            writer.store(key, uuid.uuid4(), _unit(rng))

        def look() -> None:
            reader.nearest(key, query, 0.9)

        times = []
        for _ in range(lookups):
            one_new()
            start = time.perf_counter()
            look()
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        fresh = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
    finally:
        client.delete(hashed, key.redis_key() + ":log", key.redis_key() + ":epoch")
    return {"entries": size, "whole_bucket": whole, "mirror": steady, "mirror_one_new": fresh}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--lookups", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    heads = ["whole bucket (HGETALL)", "mirror", "mirror + 1 new"]
    print("| entries | " + " | ".join(f"{h} p50 / p99" for h in heads) + " |")
    print("| ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        row = measure(client, size, args.lookups)
        cells = [
            f"{row[k][0]:.2f} / {row[k][1]:.2f} ms"
            for k in ("whole_bucket", "mirror", "mirror_one_new")
        ]
        print(f"| {size:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
