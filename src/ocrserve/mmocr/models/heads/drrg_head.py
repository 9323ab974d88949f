"""MMOCR's ``DRRGHead`` (Deep Relational Reasoning Graph network, test path) and its ``GCN``.

``out_conv`` (1x1) gives six maps at the input size: text region and centre region logits, sin,
cos, top and bottom heights. At test time (MMOCR's ``single_test``) the maps and the neck output
become components and local graphs (`ocrserve.mmocr.models.heads.drrg_graph`), the GCN scores
each pivot's links to its 8 nearest components, and the head returns ``(edges, scores,
text_comps)``: ``E x 2`` component pairs, ``E`` link probabilities (softmax, class 1) and
``n x 9`` components. ``DRRGPostprocessor`` turns them into boundaries.

For batching, `forward` returns them padded per image: edges with -1, scores and components
with NaN; the postprocessor drops the padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import HEADS
from ocrserve.mmocr.models.heads.drrg_graph import GraphSettings, LocalGraphs, build_local_graphs

__all__ = ["GCN", "DRRGHead", "GraphConv", "edges_of", "pad_results"]

#: Keys of ``DRRGHead`` that configure its test-time graph (`GraphSettings`).
_GRAPH_KEYS = tuple(GraphSettings.__dataclass_fields__)


class GraphConv(nn.Module):
    """``relu([x, A x] W + b)``: a node's features next to its neighbours' mean."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.weight = nn.Parameter(torch.empty(in_dim * 2, out_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, features: Tensor, adjacency: Tensor) -> Tensor:
        aggregated = torch.bmm(adjacency, features)
        out = torch.einsum("bnd,df->bnf", torch.cat([features, aggregated], dim=2), self.weight)
        return F.relu(out + self.bias)


class GCN(nn.Module):
    """BatchNorm1d (no affine) -> 4 `GraphConv` (512, 256, 128, 64) -> per-edge classifier."""

    def __init__(self, feat_len: int) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm1d(feat_len, affine=False)
        self.conv1 = GraphConv(feat_len, 512)
        self.conv2 = GraphConv(512, 256)
        self.conv3 = GraphConv(256, 128)
        self.conv4 = GraphConv(128, 64)
        self.classifier = nn.Sequential(nn.Linear(64, 32), nn.PReLU(32), nn.Linear(32, 2))

    def forward(self, x: Tensor, adjacency: Tensor, knn_inds: Tensor) -> Tensor:
        graphs, nodes, feat_len = x.shape
        x = self.bn0(x.reshape(-1, feat_len)).reshape(graphs, nodes, feat_len)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = conv(x, adjacency)
        index = knn_inds.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        return self.classifier(torch.gather(x, 1, index).reshape(-1, x.shape[-1]))


@HEADS.register("DRRGHead", ignore=("loss", "postprocessor", "train_cfg", "test_cfg", "init_cfg"))
class DRRGHead(nn.Module):
    """``out_conv`` (``in_channels`` -> 6) and the ``gcn``; the graph stage in between."""

    default_postprocessor: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"type": "DRRGPostprocessor", "link_thr": 0.85}
    )

    def __init__(
        self, in_channels: int, k_at_hops: tuple[int, int] | list[int] = (8, 4), **kwargs: Any
    ) -> None:
        super().__init__()
        if not isinstance(in_channels, int):
            raise ConfigError(f"DRRGHead: in_channels must be an int, got {in_channels!r}")
        # Other keys are ignored, as MMOCR's **kwargs does (text_repr_type, decoding_type).
        graph = {k: v for k, v in kwargs.items() if k in _GRAPH_KEYS}
        if "pooling_output_size" in graph:  # a list once the config is read as data
            graph["pooling_output_size"] = tuple(graph["pooling_output_size"])
        self.settings = GraphSettings(k_at_hops=(int(k_at_hops[0]), int(k_at_hops[1])), **graph)
        self._legacy_link_thr = kwargs.get("link_thr")
        self.in_channels = in_channels
        self.out_channels = 6
        self.downsample_ratio = 1.0
        self.out_conv = nn.Conv2d(in_channels, self.out_channels, kernel_size=1)
        pool_h, pool_w = self.settings.pooling_output_size
        feat_len = pool_h * pool_w * (in_channels + self.out_channels)
        self.gcn = GCN(feat_len + self.settings.node_geo_feat_len)

    def postprocessor_overrides(self) -> dict[str, Any]:
        """MMOCR 0.x moved a head's ``link_thr`` into its postprocessor config."""
        return {"link_thr": self._legacy_link_thr} if self._legacy_link_thr else {}

    def local_graphs(self, feats: Tensor) -> tuple[Tensor, LocalGraphs | None]:
        """One image's neck output -> (``out_conv`` maps, its local graphs or None)."""
        pred_maps = self.out_conv(feats)
        return pred_maps, build_local_graphs(
            pred_maps, torch.cat([feats, pred_maps], dim=1), self.settings
        )

    def classify(self, graphs: LocalGraphs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The GCN over one image's local graphs -> (edges, link scores, text_comps)."""
        logits = self.gcn(graphs.node_feats, graphs.adjacency, graphs.knn_inds)
        return edges_of(graphs, F.softmax(logits, dim=1))

    def single_test(self, feats: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """MMOCR's ``single_test`` on one image: (edges, scores, text_comps), or None."""
        _, graphs = self.local_graphs(feats)
        return None if graphs is None else self.classify(graphs)

    def forward(self, feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per image of the batch, `single_test`'s arrays, padded (see the module's doc)."""
        return pad_results([self.single_test(feats[i : i + 1]) for i in range(feats.shape[0])])


def pad_results(
    results: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None],
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image ``(edges, scores, text_comps)`` (None: no graph) -> batched tensors, edges
    padded with -1, scores and components with NaN."""
    num_edges = max([0] + [len(r[0]) for r in results if r is not None])
    num_comps = max([0] + [len(r[2]) for r in results if r is not None])
    batch = len(results)
    edges = torch.full((batch, num_edges, 2), -1, dtype=torch.long)
    scores = torch.full((batch, num_edges), float("nan"), dtype=torch.float64)
    comps = torch.full((batch, num_comps, 9), float("nan"), dtype=torch.float64)
    for i, result in enumerate(results):
        if result is not None:
            e, s, c = result
            edges[i, : len(e)] = torch.from_numpy(e)
            scores[i, : len(s)] = torch.from_numpy(s)
            comps[i, : len(c)] = torch.from_numpy(c)
    return edges, scores, comps


def edges_of(
    graphs: LocalGraphs, probabilities: Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pivot with each of its ``k`` nearest, the link probability, and the components."""
    k = graphs.knn_inds.shape[1]
    nodes = graphs.graph_nodes.cpu().numpy()
    knn = graphs.knn_inds.cpu().numpy()
    pivots = np.repeat(nodes[:, 0], k)
    neighbours = np.take_along_axis(nodes, knn, axis=1).reshape(-1)
    edges = np.stack([pivots, neighbours], axis=1).astype(np.int64)
    scores = probabilities[:, 1].double().cpu().numpy()
    return edges, scores, graphs.text_comps
