"""Conversion throughput: GZIP TFRecord -> HDF5, beside Python's gzip decompression of the same file.

Prints a table; asserts nothing. Each measurement runs in its own process so its peak RSS is its own.
    python bench/convert.py [--mb 600] [--clevr-mb 220]
Records are crafted with protobuf (tests/example_proto.py) in DeepMind's layouts, a few distinct ones
repeated up to the requested size (the repeats lie farther apart than gzip's window, so they do not
compress better than real data).
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_common import print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def craft(path: Path, variant: str, megabytes: float) -> int:
    from example_proto import example, frame
    from structae.data.multi_object import FORMATS

    fmt = FORMATS[variant]
    rng = np.random.default_rng(0)
    h, w = fmt.image_size
    k = fmt.max_entities
    records = []
    for _ in range(8):
        labels = rng.integers(0, k, size=(h, w))
        masks = np.stack([(labels == e) * 255 for e in range(k)], axis=-1).astype(np.uint8)
        masks = masks if fmt.mask_layout == "HWK" else masks.transpose(2, 0, 1)
        floats = {name: rng.random(shape).astype(np.float32) for name, shape in fmt.floats.items()}
        strings = {name: [b"large"] * k for name in fmt.strings}
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        records.append(frame(example({"image": image, "mask": masks[..., None]}, floats, strings)))
    count = int(np.ceil(megabytes * 1e6 / len(records[0])))
    with gzip.open(path, "wb", compresslevel=6) as out:
        for i in range(count):
            out.write(records[i % len(records)])
    return count


def measure(mode: str, path: str, variant: str) -> dict:
    """Run in a child process: one of gzip | read | convert."""
    from structae.data import multi_object, tfrecord
    from structae.data.datasets import make_split

    start = time.perf_counter()
    raw_bytes = records = 0
    if mode == "gzip":
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                raw_bytes += len(chunk)
    elif mode == "read":
        fmt = multi_object.FORMATS[variant]
        for record in tfrecord.iter_records(path):
            multi_object.decode(record, fmt)
            raw_bytes += len(record) + 16
            records += 1
    else:
        spec = {"kind": "multi_object", "options": {"variant": variant}, "sizes": {"train": 0}, "seed": 0}
        with tempfile.TemporaryDirectory() as tmp:
            records = make_split({"datasets": {"d": spec}}, "d", "train", Path(tmp) / "train.h5", [path])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "raw_bytes": raw_bytes, "records": records,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(mode: str, path: Path, variant: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path), variant], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=600.0,
                        help="uncompressed size of the multi_dsprites file (>= 100 MB on disk at the default)")
    parser.add_argument("--clevr-mb", type=float, default=220.0, help="uncompressed size of the CLEVR file")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant, label in (("multi_dsprites_colored_on_grayscale", "multi_dsprites (110 KB records)"),
                               ("clevr_with_masks", "clevr_with_masks (3.2 MB records)")):
            path = Path(tmp) / f"{variant}.tfrecords"
            n = craft(path, variant, args.mb if variant.startswith("multi") else args.clevr_mb)
            results = {mode: child(mode, path, variant) for mode in ("gzip", "read", "convert")}
            raw_mb = results["gzip"]["raw_bytes"] / 1e6
            for mode, what in (("gzip", "gzip.open().read() (ceiling)"), ("read", "read + CRC + decode"),
                               ("convert", "convert to HDF5 (CLI path)")):
                r = results[mode]
                rows.append((label, f"{path.stat().st_size / 1e6:.0f}", what, f"{n / r['seconds']:.0f}",
                             f"{raw_mb / r['seconds']:.0f}",
                             f"{100 * results['gzip']['seconds'] / r['seconds']:.0f}%", f"{r['peak_rss_mb']:.0f}"))
    header = ("file", "MB on disk", "path", "records/s", "MB/s uncompressed", "of gzip", "peak RSS MB")
    print_table(header, [tuple(map(str, row)) for row in rows])


if __name__ == "__main__":
    main()
