"""The classifier: Embedding -> BiLSTM -> pooling -> dropout -> dense.

Kept alone in this file, nanoGPT style; `ModelArgs` travels in every checkpoint so another
program can rebuild the model without this training run's config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn


@dataclass
class ModelArgs:
    vocab_size: int
    embed_dim: int = 96
    hidden_dim: int = 64  # per direction
    # 1 logit = binary head (sigmoid); 3 logits = negative/positive/neutral head (softmax).
    num_outputs: int = 3
    pooling: Literal["mean", "attention"] = "mean"
    dropout: float = 0.3
    embed_dropout: float = 0.1
    pad_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reverse_index(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """[batch, seq] positions that reverse each row's first `length` steps, padding unchanged."""
    steps = torch.arange(seq_len, device=lengths.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    return torch.where(steps < lengths, lengths - 1 - steps, steps)


class BiLSTMClassifier(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.embedding = nn.Embedding(args.vocab_size, args.embed_dim, padding_idx=args.pad_id)
        self.embed_dropout = nn.Dropout(args.embed_dropout)
        # Two one-way LSTMs instead of nn.LSTM(bidirectional=True): see `forward`.
        self.lstm_fwd = nn.LSTM(args.embed_dim, args.hidden_dim, batch_first=True)
        self.lstm_bwd = nn.LSTM(args.embed_dim, args.hidden_dim, batch_first=True)
        self.attention = nn.Linear(2 * args.hidden_dim, 1) if args.pooling == "attention" else None
        self.dropout = nn.Dropout(args.dropout)
        self.head = nn.Linear(2 * args.hidden_dim, args.num_outputs)

    def forward(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """token_ids [batch, seq] right-padded, lengths [batch] >= 1 -> logits [batch, outputs]."""
        x = self.embed_dropout(self.embedding(token_ids))
        # The backward direction runs forward over each row reversed within its own length, so
        # it never reads padding first: the same result as packed sequences (and as ONNX LSTM
        # with sequence_lens) at a third of the CPU cost, since packing disables the fused kernel.
        rev = reverse_index(lengths, token_ids.shape[1]).unsqueeze(-1)
        fwd, _ = self.lstm_fwd(x)
        bwd, _ = self.lstm_bwd(x.gather(1, rev.expand_as(x)))
        bwd = bwd.gather(1, rev.expand_as(bwd))
        out = torch.cat([fwd, bwd], dim=-1)
        mask = (token_ids != self.args.pad_id).unsqueeze(-1).to(out.dtype)
        pooled = self._pool(out, mask)
        return self.head(self.dropout(pooled))

    def _pool(self, out: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.attention is None:
            return (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        scores = self.attention(torch.tanh(out)).masked_fill(mask == 0, -1e9)
        weights = torch.softmax(scores, dim=1)
        return (out * weights).sum(1)
