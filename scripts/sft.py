"""Supervised fine-tuning helpers shared by the scripts that build memgym's tiny models."""

from __future__ import annotations

from typing import Any

__all__ = ["completion_batch", "encode_pairs", "sft_loss"]


def encode_pairs(pairs: list[tuple[str, str]], tokenizer: Any) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids + <|im_end|>) of each (prompt, completion), chat-templated."""
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}],
                                             add_generation_prompt=True, tokenize=False)
               for p, _ in pairs]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer([c for _, c in pairs], add_special_tokens=False)["input_ids"]
    return [(p, c + [eos]) for p, c in zip(prompt_ids, completion_ids)]


def completion_batch(examples, pad_id: int, prompt_weight: float = 0.0):
    """Right-padded ids, attention mask and per-token loss weights (of predicting token t)."""
    import torch

    width = max(len(p) + len(c) for p, c in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    weights = torch.zeros((len(examples), width))
    for row, (p, c) in enumerate(examples):
        seq = p + c
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        weights[row, 1: len(p)] = prompt_weight
        weights[row, len(p): len(seq)] = 1.0
    return ids, mask, weights


def sft_loss(model: Any, ids, mask, weights):
    """(the weighted next-token loss, the completion tokens' loss) of a `completion_batch`."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]        # [B, T-1, V]
    nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # [B, T-1]
    w = weights[:, 1:]
    completion = w == 1.0
    return (nll * w).sum() / w.sum(), (nll * completion).sum() / completion.sum()
