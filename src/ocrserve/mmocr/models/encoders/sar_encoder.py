"""MMOCR's ``SAREncoder``: a holistic feature from the column-wise max-pooled feature map.

Max pooling over the height gives a sequence of columns; a 2-layer LSTM (or GRU) runs over it and
the output at the last *valid* column (``ceil(W * valid_ratio) - 1`` with ``mask``) goes through
``linear``. Output ``N x d_enc`` (``2 * d_enc`` bidirectional).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import ENCODERS
from ocrserve.mmocr.models.valid_ratio import valid_ratios, valid_widths

__all__ = ["SAREncoder"]


@ENCODERS.register("SAREncoder")
class SAREncoder(nn.Module):
    """Holistic feature of SAR (``rnn_encoder``, ``linear``)."""

    def __init__(
        self,
        enc_bi_rnn: bool = False,
        enc_do_rnn: float = 0.0,
        enc_gru: bool = False,
        d_model: int = 512,
        d_enc: int = 512,
        mask: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.mask = mask
        rnn = nn.GRU if enc_gru else nn.LSTM
        self.rnn_encoder = rnn(
            input_size=d_model,
            hidden_size=d_enc,
            num_layers=2,
            batch_first=True,
            dropout=enc_do_rnn,
            bidirectional=enc_bi_rnn,
        )
        out_size = d_enc * (int(enc_bi_rnn) + 1)
        self.linear = nn.Linear(out_size, out_size)

    def forward(self, feat: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None) -> Tensor:
        ratios = valid_ratios(img_metas, self.mask, like=feat)
        # Max pooling over the whole height (MMOCR's max_pool2d with kernel (H, 1)).
        columns = feat.amax(dim=2).permute(0, 2, 1).contiguous()
        holistic = self.rnn_encoder(columns)[0]
        if ratios is not None:
            n, steps, size = holistic.size()
            # (a valid width of 0 takes the last step, as MMOCR's index -1 did)
            last_step = ((valid_widths(steps, ratios) - 1) % steps).expand(n)
            last = holistic.gather(1, last_step.view(n, 1, 1).expand(n, 1, size)).squeeze(1)
        else:
            last = holistic[:, -1, :]
        return self.linear(last)
