#!/usr/bin/env python3
"""Makes the token-file fixtures in tests/data/formats/ with each format's own writer.

- llm.c shards: llm.c's writer is a script, not a package, so `write_llmc_shard` below follows its
  published layout byte for byte (dev/data/data_common.py: a 256 x int32 header with magic, version
  and token count, then the ids as uint16 (GPT-2: magic 20240520, version 1) or uint32 (Llama-3:
  magic 20240801, version 7)).
- Megatron-LM indexed datasets: megatron-core's own IndexedDatasetBuilder
  (`pip install --no-deps megatron-core`; pure Python, runs on CPU with torch and numpy), used as
  tools/preprocess_data.py uses it: add_document(ids, [len(ids)]) per document, ids ending in EOD.
- Native lctrain HDF5: written with h5py (contiguous datasets, as docs/data.md specifies), to show
  files made outside lctrain read back. With --lcdata PATH the script also writes
  lcdata_native.h5 with our own writer (`lcdata convert`) and checks it with h5py.

expected.json records what each fixture holds (documents, ids, masks) for the C++ tests, and
SHA256SUMS the bytes of every fixture. Tests never run this script (no torch at test time).
Usage: python3 tools/make_data_fixtures.py [--lcdata build/bin/lcdata]
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "formats")

LLMC_GPT2 = (20240520, 1, np.uint16)
LLMC_LLAMA3 = (20240801, 7, np.uint32)


def write_llmc_shard(path, ids, kind):
    """llm.c's write_datafile: header[0] magic, header[1] version, header[2] count, rest zero."""
    magic, version, dtype = kind
    ids = np.asarray(ids)
    assert len(ids) < 2**31 and (len(ids) == 0 or (ids.min() >= 0 and ids.max() <= np.iinfo(dtype).max))
    header = np.zeros(256, dtype=np.int32)
    header[0], header[1], header[2] = magic, version, len(ids)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(ids.astype(dtype).tobytes())


def documents(rng, vocab, lengths, eod):
    """Documents of random ids below `vocab` that never contain `eod` (it is added where needed)."""
    docs = []
    for n in lengths:
        d = rng.integers(0, vocab, size=n, dtype=np.int64)
        d[d == eod] = (eod + 1) % vocab
        docs.append(d)
    return docs


def write_megatron(prefix, docs, dtype, multi_sequence=False):
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=dtype)
    for d in docs:
        if multi_sequence and len(d) >= 3:  # a document of several sequences ("sentences")
            cut = len(d) // 3
            builder.add_item(torch.tensor(d[:cut]))
            builder.add_item(torch.tensor(d[cut:]))
            builder.end_document()
        else:
            builder.add_document(torch.tensor(d), [len(d)])
    builder.finalize(prefix + ".idx")


def write_h5py_native(path, docs, masks, vocab, eod, tokenizer):
    import h5py

    ids = np.concatenate(docs) if docs else np.zeros(0, np.int64)
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(d) for d in docs])
    with h5py.File(path, "w", track_order=False) as f:
        f.create_dataset("tokens", data=ids.astype(np.uint32))
        f.create_dataset("doc_offsets", data=offsets)
        if masks is not None:
            f.create_dataset("loss_mask", data=np.concatenate(masks).astype(np.uint8))
        f.attrs["format_version"] = np.int64(1)
        f.attrs["vocab_size"] = np.int64(vocab)
        f.attrs["eod_token"] = np.int64(eod)
        f.attrs["tokenizer"] = tokenizer


def record(entry_docs, eod_joined, masks=None, **meta):
    """What the C++ tests compare against: documents as stored, the stream, the mask."""
    starts = [0]
    for d in entry_docs:
        starts.append(starts[-1] + len(d))
    stream, stream_mask = [], []
    for i, d in enumerate(entry_docs):
        stream.extend(int(x) for x in d)
        stream_mask.extend(int(x) for x in (masks[i] if masks is not None else np.ones(len(d))))
        if eod_joined is not None:
            stream.append(int(eod_joined))
            stream_mask.append(1)
    out = dict(meta)
    out.update(doc_starts=starts, tokens=[int(x) for d in entry_docs for x in d], stream=stream,
               loss_mask=stream_mask if masks is not None else None)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lcdata", help="path of a built lcdata, to also write lcdata_native.h5")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240520)
    expected = {}

    # GPT-2 style: vocab 50257, <|endoftext|> = 50256 in front of every document (llm.c's fineweb.py).
    gpt2_eot = 50256
    docs = documents(rng, 50257, [37, 1, 120, 64, 250], gpt2_eot)
    ids = np.concatenate([np.concatenate([[gpt2_eot], d]) for d in docs])
    write_llmc_shard(os.path.join(OUT, "llmc_gpt2.bin"), ids, LLMC_GPT2)
    expected["llmc_gpt2.bin"] = record([ids], None, format="llmc", dtype="uint16", version=1, vocab_size=0,
                                       eod_token=-1, writer="python llm.c layout")

    # Llama-3 style: ids above 65535 need uint32.
    l3_eot = 128001
    docs = documents(rng, 128256, [50, 3, 200], l3_eot)
    ids = np.concatenate([np.concatenate([[128000], d, [l3_eot]]) for d in docs])
    write_llmc_shard(os.path.join(OUT, "llmc_llama3.bin"), ids, LLMC_LLAMA3)
    expected["llmc_llama3.bin"] = record([ids], None, format="llmc", dtype="uint32", version=7, vocab_size=0,
                                         eod_token=-1, writer="python llm.c layout")

    # Megatron: preprocess_data.py --append-eod; dtype by vocabulary (uint16 below 65500, else int32).
    docs = [np.append(d, gpt2_eot) for d in documents(rng, 50257, [12, 0, 99, 31], gpt2_eot)]
    write_megatron(os.path.join(OUT, "megatron_u16"), docs, np.uint16)
    expected["megatron_u16.idx"] = record(docs, None, format="megatron", dtype="uint16", version=1, vocab_size=0,
                                          eod_token=-1, writer="megatron-core IndexedDatasetBuilder")
    docs = [np.append(d, l3_eot) for d in documents(rng, 128256, [80, 7, 45], l3_eot)]
    write_megatron(os.path.join(OUT, "megatron_i32"), docs, np.int32)
    expected["megatron_i32.idx"] = record(docs, None, format="megatron", dtype="int32", version=1, vocab_size=0,
                                          eod_token=-1, writer="megatron-core IndexedDatasetBuilder")
    docs = [np.append(d, gpt2_eot) for d in documents(rng, 50257, [40, 2, 17], gpt2_eot)]
    write_megatron(os.path.join(OUT, "megatron_multiseq"), docs, np.uint16, multi_sequence=True)
    expected["megatron_multiseq.idx"] = record(docs, None, format="megatron", dtype="uint16", version=1,
                                               vocab_size=0, eod_token=-1,
                                               writer="megatron-core IndexedDatasetBuilder (add_item)")

    # Native HDF5 (h5py): chat-like documents with a loss mask, eod joined by the loader.
    vocab, eod = 1000, 999
    docs = documents(rng, vocab, [30, 0, 75, 5], eod)
    masks = []
    for d in docs:
        m = np.ones(len(d), np.uint8)
        m[: len(d) // 3] = 0  # the "prompt" part is not a target
        masks.append(m)
    write_h5py_native(os.path.join(OUT, "h5py_native.h5"), docs, masks, vocab, eod, "test-vocab-1000")
    expected["h5py_native.h5"] = record(docs, eod, masks, format="hdf5", dtype="uint32", version=1,
                                        vocab_size=vocab, eod_token=eod, tokenizer="test-vocab-1000",
                                        writer="h5py")

    names = ["llmc_gpt2.bin", "llmc_llama3.bin", "megatron_u16.idx", "megatron_u16.bin", "megatron_i32.idx",
             "megatron_i32.bin", "megatron_multiseq.idx", "megatron_multiseq.bin", "h5py_native.h5"]
    if args.lcdata:
        native = os.path.join(OUT, "lcdata_native.h5")
        subprocess.run([args.lcdata, "convert", os.path.join(OUT, "h5py_native.h5"), native], check=True)
        import h5py
        with h5py.File(native, "r") as f:
            exp = expected["h5py_native.h5"]
            assert f["tokens"][:].tolist() == exp["tokens"], "tokens differ"
            assert f["doc_offsets"][:].tolist() == exp["doc_starts"], "doc_offsets differ"
            assert f["loss_mask"][:].tolist() == [int(x) for m in masks for x in m], "loss_mask differs"
            assert int(f.attrs["eod_token"]) == eod and int(f.attrs["vocab_size"]) == vocab
            assert f.attrs["tokenizer"] in ("test-vocab-1000", b"test-vocab-1000")
            assert f["tokens"].id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS
        expected["lcdata_native.h5"] = dict(expected["h5py_native.h5"], dtype="uint16", writer="lcdata convert")
        names.append("lcdata_native.h5")
    elif os.path.exists(os.path.join(OUT, "lcdata_native.h5")):
        names.append("lcdata_native.h5")
        old = json.load(open(os.path.join(OUT, "expected.json")))
        expected["lcdata_native.h5"] = old["lcdata_native.h5"]

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    names.append("expected.json")
    with open(os.path.join(OUT, "SHA256SUMS"), "w") as f:
        for n in sorted(names):
            f.write(f"{hashlib.sha256(open(os.path.join(OUT, n), 'rb').read()).hexdigest()}  {n}\n")
    print(f"wrote {len(names)} fixtures to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    sys.exit(main())
