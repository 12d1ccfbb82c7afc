#!/usr/bin/python3
"""Writes a Llama checkpoint of a real model's shape with random bf16 weights, for the CPU
benchmarks (docs/performance.md, "CPU kernels"): a Hugging Face folder (config.json,
model.safetensors or shards with an index, tokenizer files from ../shared/testdata) and, with
--gguf-py, the same weights as a GGUF file for llama.cpp.

    bench/cpu/make_random_checkpoint.py --shape 1b --out /tmp/llama-1b-random
    bench/cpu/make_random_checkpoint.py --shape 110m --out /tmp/llama-110m \\
        --gguf-py /work/peers/llama.cpp/gguf-py

Shapes: 1b = Llama-3.2-1B (hidden 2048, 16 layers, 32/8 heads, FFN 8192, vocab 128256, tied),
110m = stories110M, a Llama-2 shape (hidden 768, 12 layers, 12 heads, FFN 2048, vocab 32000,
tied), 7b = Llama-2-7B (hidden 4096, 32 layers, 32 heads, FFN 11008, vocab 32000). RoPE
scaling is left out: it changes no cost. Each tensor is drawn from its own seed, N(0, 0.02)
(norm weights 1 +- 0.1), rounded to bf16, and written once to each file, so both systems read
the same numbers; q_proj/k_proj are permuted for GGUF as llama.cpp's converter does.
Needs python3-numpy (and python3-sentencepiece for --gguf-py); memory stays at about one tensor.
"""
import argparse
import gzip
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
               tie_word_embeddings=True, rope_theta=500000.0, max_position_embeddings=131072,
               rms_norm_eps=1e-5, bos_token_id=128000, eos_token_id=128001,
               tokenizer="llama3-tokenizer"),
    "110m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                 num_attention_heads=12, num_key_value_heads=12, head_dim=64, vocab_size=32000,
                 tie_word_embeddings=True, rope_theta=10000.0, max_position_embeddings=1024,
                 rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
                 tokenizer="llama2-tokenizer"),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, head_dim=128, vocab_size=32000,
               tie_word_embeddings=False, rope_theta=10000.0, max_position_embeddings=4096,
               rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
               tokenizer="llama2-tokenizer"),
}

SHARD_BYTES = 5 << 30  # as save_pretrained does: 5 GB shards


def tensor_list(c):
    """(HF name, shape, kind) in file order."""
    h, f, d = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * d, c["num_key_value_heads"] * d
    out = [("model.embed_tokens.weight", (c["vocab_size"], h), "matrix")]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (h,), "norm"),
                (p + "self_attn.q_proj.weight", (q, h), "matrix"),
                (p + "self_attn.k_proj.weight", (kv, h), "matrix"),
                (p + "self_attn.v_proj.weight", (kv, h), "matrix"),
                (p + "self_attn.o_proj.weight", (h, q), "matrix"),
                (p + "post_attention_layernorm.weight", (h,), "norm"),
                (p + "mlp.gate_proj.weight", (f, h), "matrix"),
                (p + "mlp.up_proj.weight", (f, h), "matrix"),
                (p + "mlp.down_proj.weight", (h, f), "matrix")]
    out.append(("model.norm.weight", (h,), "norm"))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (c["vocab_size"], h), "matrix"))
    return out


def random_bf16(name, shape, kind, seed):
    """The tensor's bf16 bit patterns (uint16), from a seed of its own."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    values = rng.standard_normal(size=shape, dtype=np.float32)
    values *= 0.1 if kind == "norm" else 0.02
    if kind == "norm":
        values += 1.0
    bits = values.view(np.uint32)
    bits += 0x7FFF + ((bits >> 16) & 1)  # round to nearest even
    return (bits >> 16).astype(np.uint16)


def write_safetensors(out, tensors, seed):
    """model.safetensors, or 5 GB shards with model.safetensors.index.json."""
    shards, current, size = [], [], 0
    for t in tensors:
        nbytes = int(np.prod(t[1])) * 2
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append(t)
        size += nbytes
    shards.append(current)
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    weight_map = {}
    for file_name, shard in zip(names, shards):
        header, offset = {}, 0
        for name, shape, _ in shard:
            nbytes = int(np.prod(shape)) * 2
            header[name] = {"dtype": "BF16", "shape": list(shape),
                            "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = file_name
        text = json.dumps(header).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(out / file_name, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for name, shape, kind in shard:
                random_bf16(name, shape, kind, seed).tofile(f)
        print(f"wrote {out / file_name}", file=sys.stderr)
    if len(shards) > 1:
        total = sum(int(np.prod(s)) * 2 for _, s, _ in tensors)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def gguf_name(name):
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    if name == "lm_head.weight":
        return "output.weight"
    layer, rest = name[len("model.layers."):].split(".", 1)
    table = {"input_layernorm.weight": "attn_norm", "self_attn.q_proj.weight": "attn_q",
             "self_attn.k_proj.weight": "attn_k", "self_attn.v_proj.weight": "attn_v",
             "self_attn.o_proj.weight": "attn_output",
             "post_attention_layernorm.weight": "ffn_norm", "mlp.gate_proj.weight": "ffn_gate",
             "mlp.up_proj.weight": "ffn_up", "mlp.down_proj.weight": "ffn_down"}
    return f"blk.{layer}.{table[rest]}.weight"


def permute_for_gguf(bits, heads):
    """HF's rotate_half rows -> GGUF's interleaved pairs (llama.cpp's converter's permute)."""
    rows, cols = bits.shape
    return (bits.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols))


def add_vocab(writer, gguf, tokenizer):
    """The tokenizer.json vocabulary in llama.cpp's metadata (BPE for Llama 3, SPM for Llama 2)."""
    model = tokenizer["model"]
    added = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    vocab = dict(model["vocab"], **added)
    tokens = [None] * (max(vocab.values()) + 1)
    for token, i in vocab.items():
        tokens[i] = token
    tokens = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)]
    types = []
    for i, t in enumerate(tokens):
        if t in added:
            types.append(gguf.TokenType.CONTROL)
        elif t.startswith("<0x") and len(t) == 6:
            types.append(gguf.TokenType.BYTE)
        elif t == "<unk>":
            types.append(gguf.TokenType.UNKNOWN)
        else:
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    if "▁" in "".join(tokens[:1000]):  # SentencePiece-style (Llama 2)
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores([-float(i) for i in range(len(tokens))])
        writer.add_token_types(types)
    else:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("llama-bpe")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)


def write_gguf(path, c, tensors, seed, tokenizer, gguf_py):
    sys.path.insert(0, str(gguf_py))
    import gguf  # llama.cpp's gguf-py, from a llama.cpp source tree

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("random")
    writer.add_context_length(c["max_position_embeddings"])
    writer.add_embedding_length(c["hidden_size"])
    writer.add_block_count(c["num_hidden_layers"])
    writer.add_feed_forward_length(c["intermediate_size"])
    writer.add_rope_dimension_count(c["head_dim"])
    writer.add_head_count(c["num_attention_heads"])
    writer.add_head_count_kv(c["num_key_value_heads"])
    writer.add_layer_norm_rms_eps(c["rms_norm_eps"])
    writer.add_rope_freq_base(c["rope_theta"])
    writer.add_vocab_size(c["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    add_vocab(writer, gguf, tokenizer)
    writer.add_bos_token_id(c["bos_token_id"])
    writer.add_eos_token_id(c["eos_token_id"])
    # llama.cpp keeps norm weights in F32 (its converter does): the same values, widened.
    for name, shape, kind in tensors:
        if kind == "norm":
            writer.add_tensor_info(gguf_name(name), shape, np.dtype(np.float32),
                                   int(np.prod(shape)) * 4)
        else:
            writer.add_tensor_info(gguf_name(name), shape, np.dtype(np.uint16),
                                   int(np.prod(shape)) * 2, raw_dtype=gguf.GGMLQuantizationType.BF16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, shape, kind in tensors:
        bits = random_bf16(name, shape, kind, seed)
        if name.endswith("q_proj.weight"):
            bits = permute_for_gguf(bits, c["num_attention_heads"])
        elif name.endswith("k_proj.weight"):
            bits = permute_for_gguf(bits, c["num_key_value_heads"])
        elif kind == "norm":
            bits = (bits.astype(np.uint32) << 16).view(np.float32)
        writer.write_tensor_data(bits)
    writer.close()
    print(f"wrote {path}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--testdata", type=Path,
                        default=Path(__file__).resolve().parents[2] / "../shared/testdata")
    parser.add_argument("--gguf-py", type=Path, help="llama.cpp's gguf-py folder: also write "
                        "model-bf16.gguf")
    args = parser.parse_args()

    shape = dict(SHAPES[args.shape])
    tokenizer_dir = args.testdata / shape.pop("tokenizer")
    config = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
                  attention_bias=False, mlp_bias=False, rope_scaling=None, torch_dtype="bfloat16",
                  **shape)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(config, indent=2))
    (args.out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]}))
    with gzip.open(tokenizer_dir / "tokenizer.json.gz", "rb") as f:
        tokenizer_text = f.read()
    (args.out / "tokenizer.json").write_bytes(tokenizer_text)
    shutil.copy(tokenizer_dir / "tokenizer_config.json", args.out / "tokenizer_config.json")

    tensors = tensor_list(config)
    write_safetensors(args.out, tensors, args.seed)
    if args.gguf_py:
        write_gguf(args.out / "model-bf16.gguf", config, tensors, args.seed,
                   json.loads(tokenizer_text), args.gguf_py)


if __name__ == "__main__":
    main()
