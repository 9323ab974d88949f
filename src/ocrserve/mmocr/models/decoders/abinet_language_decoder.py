"""MMOCR's ``ABILanguageDecoder``: ABINet's language model (spelling correction).

It reads the previous prediction's logits (``N x T x C``), not the image: their softmax is
projected (``proj``) and position-encoded (``token_encoder``) into keys and values; the queries
are positional encodings alone (``pos_encoder``). Post-norm mmcv transformer layers
(``decoder_layers.N``: ``cross_attn, norm, ffn, norm``, or with ``self_attn`` first) attend with
each position's own key masked (the diagonal location mask) and the keys past the text's length
masked. The length is one past the first ``pad_idx`` (``<BOS/EOS>``) arg-max of the input logits,
the whole sequence without one, clamped to ``[2, max_seq_len]``. Returns ``feature``
(``N x T x E``) and ``logits`` (``cls``: ``N x T x C``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import DECODERS
from ocrserve.mmocr.models.transformer_layers import MMCVTransformerLayer, PositionalEncoding

__all__ = ["ABILanguageDecoder", "text_lengths"]

_CROSS = ("cross_attn", "norm", "ffn", "norm")
_SELF_CROSS = ("self_attn", "norm", "cross_attn", "norm", "ffn", "norm")


def text_lengths(logits: Tensor, end_idx: int, max_len: int) -> Tensor:
    """``N`` int64 lengths: one past the first position whose arg-max is ``end_idx`` (``T``
    when none is), clamped to ``[2, max_len]``.

    Counting the positions before the first end token keeps this a fixed-shape computation, so
    an ONNX export traces it instead of freezing the lengths of its sample input.
    """
    is_end = (logits.argmax(dim=-1) == end_idx).to(torch.int64)
    before_first_end = (is_end.cumsum(dim=-1) == 0).to(torch.int64).sum(dim=-1)
    return (before_first_end + 1).clamp(2, max_len)


@DECODERS.register("ABILanguageDecoder")
class ABILanguageDecoder(nn.Module):
    """``proj``, ``token_encoder``, ``pos_encoder``, ``decoder_layers``, ``cls``."""

    def __init__(
        self,
        d_model: int = 512,
        n_head: int = 8,
        d_inner: int = 2048,
        n_layers: int = 4,
        max_seq_len: int = 40,
        dropout: float = 0.1,
        detach_tokens: bool = True,
        num_chars: int = 90,
        use_self_attn: bool = False,
        pad_idx: int = 0,
        **kwargs: Any,
    ) -> None:
        # Takes and ignores num_classes, start_idx, padding_idx (the recognizer passes them to
        # every decoder, as MMOCR's does); ``pad_idx`` is the end token the lengths look for.
        super().__init__()
        self.max_seq_len = max_seq_len
        self.pad_idx = pad_idx
        self.proj = nn.Linear(num_chars, d_model, bias=False)
        self.token_encoder = PositionalEncoding(d_model, n_position=max_seq_len, dropout=0.1)
        self.pos_encoder = PositionalEncoding(d_model, n_position=max_seq_len)
        order = _SELF_CROSS if use_self_attn else _CROSS
        self.n_attn = 2 if use_self_attn else 1
        self.decoder_layers = nn.ModuleList(
            MMCVTransformerLayer(order, d_model, n_head, d_inner) for _ in range(n_layers)
        )
        self.cls = nn.Linear(d_model, num_chars)

    def forward(
        self,
        feat: Tensor | None,
        logits: Tensor,
        img_metas: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Tensor]:
        """``logits``: the previous prediction (``N x T x C``); ``feat`` is not read."""
        seq_len = self.max_seq_len
        lengths = text_lengths(logits, self.pad_idx, seq_len)
        embed = self.token_encoder(self.proj(torch.softmax(logits, dim=-1)))
        positions = torch.arange(seq_len, device=logits.device)
        # Additive (0 / -inf), the float form PyTorch makes of mmcv's boolean mask before
        # merging it with the float location mask: the same numbers, without mixing mask types.
        is_padding = positions.view(1, -1) >= lengths.view(-1, 1)
        key_padding = torch.zeros(is_padding.shape, device=logits.device, dtype=embed.dtype)
        key_padding = key_padding.masked_fill(is_padding, float("-inf"))
        eye = torch.eye(seq_len, device=logits.device)
        location_mask = eye.masked_fill(eye == 1, float("-inf"))
        query = self.pos_encoder(embed.new_zeros(embed.shape)).permute(1, 0, 2)
        embed = embed.permute(1, 0, 2)
        output = query
        for layer in self.decoder_layers:
            output = layer(
                output,
                embed,
                embed,
                attn_masks=[location_mask] * self.n_attn,
                key_padding_mask=key_padding,
            )
        output = output.permute(1, 0, 2)
        return {"feature": output, "logits": self.cls(output)}
