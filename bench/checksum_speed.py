"""How fast the manifest's file checksums are made and checked (issue #11, item 7).

    .venv/bin/python bench/checksum_speed.py [--megabytes 512] [--index-dir DIR]

Hashes a scratch file of random bytes (the size of a large index's vector file) with
sha256, the algorithm ``index/files.py`` records, and with crc32 for comparison; with
``--index-dir`` also times ``file_checksums`` over the live generation. A 1M-chunk index
holds about 5 GB of files: at the printed rate that is the extra time of a build and of
`quotebot index verify`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zlib
from pathlib import Path

from quotebot.index import generation_files as files, storage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=512, help="size of the scratch file (default: 512)")
    parser.add_argument("--index-dir", type=Path, help="also time the checksums of this index's live generation")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "data.bin"
        with open(path, "wb") as handle:
            for _ in range(args.megabytes):
                handle.write(os.urandom(1 << 20))
        started = time.perf_counter()
        files.file_checksum(path)
        figures["sha256_mb_per_s"] = round(args.megabytes / (time.perf_counter() - started))
        started = time.perf_counter()
        with open(path, "rb") as handle:
            crc = 0
            while block := handle.read(1 << 20):
                crc = zlib.crc32(block, crc)
        figures["crc32_mb_per_s"] = round(args.megabytes / (time.perf_counter() - started))
    if args.index_dir:
        generation = storage.current_generation(args.index_dir)
        size = sum(files.file_sizes(generation).values()) / 1e6
        started = time.perf_counter()
        files.file_checksums(generation)
        figures["index_mb"] = round(size, 1)
        figures["index_checksum_s"] = round(time.perf_counter() - started, 3)
    print(f"sha256: {figures['sha256_mb_per_s']} MB/s (crc32: {figures['crc32_mb_per_s']} MB/s); "
          f"5 GB of index files: {5000 / figures['sha256_mb_per_s']:.1f} s")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
