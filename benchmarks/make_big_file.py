"""Write a large synthetic table for the streaming benchmark (the file is never committed).

    python benchmarks/make_big_file.py --rows 10000000 --features 20 --out /tmp/fittorch_big.parquet
    python benchmarks/make_big_file.py --rows 10000000 --out /tmp/fittorch_big.csv     # CSV, slower

Rows are written in chunks, so writing needs little memory whatever --rows is. The target
``label`` is a noisy linear rule of the features (binary), so a model can learn it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--out", default="/tmp/fittorch_big.parquet", help=".parquet or .csv")
    ap.add_argument("--chunk", type=int, default=500_000, help="rows generated per chunk (= Parquet row group)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    out = Path(args.out)
    rng = np.random.default_rng(args.seed)
    w = rng.normal(size=args.features).astype(np.float32)
    names = [f"f{i}" for i in range(args.features)]
    schema = pa.schema([(n, pa.float32()) for n in names] + [("label", pa.int64())])
    started = time.perf_counter()
    writer = pq.ParquetWriter(out, schema) if out.suffix == ".parquet" else pcsv.CSVWriter(out, schema)
    try:
        for start in range(0, args.rows, args.chunk):
            n = min(args.chunk, args.rows - start)
            X = rng.normal(size=(n, args.features)).astype(np.float32)
            y = ((X @ w + 0.5 * rng.normal(size=n)) > 0).astype(np.int64)
            table = pa.Table.from_arrays([pa.array(X[:, j]) for j in range(args.features)] + [pa.array(y)], schema=schema)
            writer.write_table(table)
    finally:
        writer.close()
    size = out.stat().st_size
    print(f"wrote {out}: {args.rows:,} rows x {args.features} features + label, {size / 1e9:.2f} GB on disk, "
          f"{args.rows * (args.features + 1) * 4 / 1e9:.2f} GB as float32 in memory, "
          f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
