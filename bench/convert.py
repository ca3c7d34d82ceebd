"""Conversion throughput: GZIP TFRecord -> HDF5, beside Python's gzip decompression of the same file.

Prints a table; asserts nothing. Each measurement runs in its own process so its peak RSS is its own.
    python bench/convert.py [--disk-mb 110] [--clevr-mb 220] [--content scenes|noise]
Records are crafted with protobuf (tests/example_proto.py) in DeepMind's layouts, a few distinct ones
repeated up to the requested size (the repeats lie farther apart than gzip's window, so they do not
compress better than real data). `scenes` (the default) fills them with the project's Multi-dSprites
scenes, flat-coloured sprites on a uniform background like the real multi_dsprites (CLEVR-sized records
get them enlarged 5×); `noise` with random pixels and labels, the worst case for every compressor.
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

from structae.tables import print_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def scenes(fmt, rng, count: int, content: str) -> tuple[np.ndarray, np.ndarray]:
    """count images (N, H, W, 3) and label maps (N, H, W) for `fmt`."""
    from structae.data.sprites import MultiDSpritesOptions, generate_multi_dsprites

    h, w = fmt.image_size
    if content == "noise":
        return (rng.integers(0, 256, size=(count, h, w, 3), dtype=np.uint8),
                rng.integers(0, fmt.max_entities, size=(count, h, w)))
    options = MultiDSpritesOptions(max_objects=min(5, fmt.max_entities - 1))
    batch = next(generate_multi_dsprites(options, count, int(rng.integers(1 << 30))))
    zoom = -(-max(h, w) // batch["mask"].shape[1])
    image = batch["image"].repeat(zoom, 1).repeat(zoom, 2)[:, :h, :w]
    return image, batch["mask"].repeat(zoom, 1).repeat(zoom, 2)[:, :h, :w]


def craft(path: Path, variant: str, raw_mb: float, disk_mb: float, content: str) -> int:
    """Write records until the file holds raw_mb uncompressed and disk_mb on disk; return their count."""
    from example_proto import example, frame
    from structae.data.multi_object import FORMATS

    fmt = FORMATS[variant]
    rng = np.random.default_rng(0)
    k = fmt.max_entities
    records = []
    for image, labels in zip(*scenes(fmt, rng, 8, content), strict=True):
        masks = np.stack([(labels == e) * 255 for e in range(k)], axis=-1).astype(np.uint8)
        masks = masks if fmt.mask_layout == "HWK" else masks.transpose(2, 0, 1)
        floats = {name: rng.random(shape).astype(np.float32) for name, shape in fmt.floats.items()}
        strings = {name: [b"large"] * k for name in fmt.strings}
        records.append(frame(example({"image": image, "mask": masks[..., None]}, floats, strings)))
    count = 0
    with open(path, "wb") as handle, gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6) as out:
        while count * len(records[0]) < raw_mb * 1e6 or handle.tell() < disk_mb * 1e6:
            out.write(records[count % len(records)])
            count += 1
    return count


def measure(mode: str, path: str, variant: str) -> dict:
    """Run in a child process: one of gzip | read | convert."""
    from structae.data import multi_object
    from structae.data.datasets import make_split

    start = time.perf_counter()
    raw_bytes = records = 0
    if mode == "gzip":
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                raw_bytes += len(chunk)
    elif mode == "read":  # everything but the HDF5 writing: read, check CRCs, decode in batches
        options = multi_object.MultiObjectOptions(variant=variant)
        for batch in multi_object.convert(Path(path), options, slice(0, None)):
            records += len(batch["image"])
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
    parser.add_argument("--disk-mb", type=float, default=110.0, help="size on disk of the multi_dsprites file")
    parser.add_argument("--clevr-mb", type=float, default=220.0, help="uncompressed size of the CLEVR file")
    parser.add_argument("--content", choices=("scenes", "noise"), default="scenes")
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
            sizes = (0, args.disk_mb) if variant.startswith("multi") else (args.clevr_mb, 0)
            n = craft(path, variant, *sizes, args.content)
            results = {mode: child(mode, path, variant) for mode in ("gzip", "read", "convert")}
            raw_mb = results["gzip"]["raw_bytes"] / 1e6
            for mode, what in (("gzip", "gzip.open().read() (ceiling)"), ("read", "read + CRC + batch decode"),
                               ("convert", "convert to HDF5 (CLI path)")):
                r = results[mode]
                rows.append((label, f"{path.stat().st_size / 1e6:.0f}", what, f"{n / r['seconds']:.0f}",
                             f"{raw_mb / r['seconds']:.0f}",
                             f"{100 * results['gzip']['seconds'] / r['seconds']:.0f}%", f"{r['peak_rss_mb']:.0f}"))
    header = ("file", "MB on disk", "path", "records/s", "MB/s uncompressed", "of gzip", "peak RSS MB")
    print_table(header, [tuple(map(str, row)) for row in rows])
    print(f"record content: {args.content}")


if __name__ == "__main__":
    main()
