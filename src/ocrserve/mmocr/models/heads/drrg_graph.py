"""DRRG's test-time graph: text components from the maps, then one local graph per component.

MMOCR 0.6.3's ``ProposalLocalGraphs`` (``mmocr/models/textdet/modules/proposal_local_graph.py``
and ``utils.py``), step for step where a later step depends on it:

1. Text region (sigmoid > ``text_region_thr``) and centre region (sigmoid > ``center_region_thr``
   inside the text region, holes filled); each external centre contour over
   ``center_region_area_thr`` pixels proposes one rectangle per pixel of text score >
   ``comp_score_thr`` (pixels in numpy 1.x's unstable ``argsort`` order of their row), merged by
   locality-aware NMS (`merge_quadrangle_n9`); a contour whose rectangles lie less than half in
   the text region is dropped.
2. Components are clipped to the map *after* their centres are taken (MMOCR clips through a
   view); their score is the mean text score under the rectangle; attributes
   ``(x, y, h, w, cos, sin)`` are read at the truncated centre.
3. Node features: rotated RoI-Align (4 x 3) of the neck output and the six maps, with the RoI
   ``(x, y, h, w, angle)``: DRRG gives the height where the op reads the width, kept as is; and a
   120-long sinusoidal embedding of the attributes.
4. Local graphs: a pivot's 8 nearest components and each one's 4 nearest, in the order Python's
   ``set`` leaves them (MMOCR builds them with sets of integers, whose order is deterministic);
   3 nearest neighbours link nodes; the adjacency is normalised as ``D^-1/2 (A + I) D^-1/2``.
   Nearest neighbours come from numpy 1.x's ``argsort`` of the distance matrix, equal distances
   included (`legacy_argsort` where they decide the first places of a row).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from ocrserve.mmocr.models.lanms import merge_quadrangle_n9
from ocrserve.mmocr.models.roi_align_rotated import roi_align_rotated
from ocrserve.mmocr.pipelines.postprocess.fce import fill_hole
from ocrserve.mmocr.pipelines.postprocess.introsort import legacy_argsort

__all__ = ["GraphSettings", "LocalGraphs", "build_local_graphs", "propose_components"]


@dataclass(frozen=True)
class GraphSettings:
    """``DRRGHead``'s test-time settings (MMOCR's defaults)."""

    k_at_hops: tuple[int, int] = (8, 4)
    num_adjacent_linkages: int = 3
    node_geo_feat_len: int = 120
    pooling_scale: float = 1.0
    pooling_output_size: tuple[int, int] = (4, 3)
    nms_thr: float = 0.3
    min_width: float = 8.0
    max_width: float = 24.0
    comp_shrink_ratio: float = 1.03
    comp_ratio: float = 0.4
    comp_score_thr: float = 0.3
    text_region_thr: float = 0.2
    center_region_thr: float = 0.2
    center_region_area_thr: int = 50


@dataclass
class LocalGraphs:
    """The GCN's input for one image, and what turns its output into edges."""

    node_feats: Tensor  # graphs x max nodes x feature length (pivot-relative, zero-padded)
    adjacency: Tensor  # graphs x max nodes x max nodes
    knn_inds: Tensor  # graphs x k (positions of the pivot's neighbours in its graph)
    graph_nodes: Tensor  # graphs x max nodes (component indexes, pivot first, 0-padded)
    text_comps: np.ndarray  # components x 9 (x1, y1, ..., x4, y4, score), float64
    rois: Tensor  # components x 6, the rotated RoIs pooled
    pooled: Tensor  # components x C x 4 x 3


def _components_of(
    score_map: np.ndarray,
    top: np.ndarray,
    bot: np.ndarray,
    sin: np.ndarray,
    cos: np.ndarray,
    s: GraphSettings,
) -> np.ndarray:
    """MMOCR's ``propose_comps``: one rectangle per pixel over the score threshold."""
    centres = np.argwhere(score_map > s.comp_score_thr)
    centres = centres[legacy_argsort(centres[:, 0].astype(np.float64))]
    y, x = centres[:, 0], centres[:, 1]
    top_h = top[y, x].reshape((-1, 1)) * np.float32(s.comp_shrink_ratio)
    bot_h = bot[y, x].reshape((-1, 1)) * np.float32(s.comp_shrink_ratio)
    sin_c = sin[y, x].reshape((-1, 1))
    cos_c = cos[y, x].reshape((-1, 1))
    top_mid = centres + np.hstack([top_h * sin_c, top_h * cos_c])
    bot_mid = centres - np.hstack([bot_h * sin_c, bot_h * cos_c])
    width = np.clip((top_h + bot_h) * np.float32(s.comp_ratio), s.min_width, s.max_width)
    half = width / np.float32(2)
    offset = np.hstack([-half * sin_c, half * cos_c])
    corners = [
        top_mid[:, ::-1] - offset,
        top_mid[:, ::-1] + offset,
        bot_mid[:, ::-1] + offset,
        bot_mid[:, ::-1] - offset,
    ]
    comps = np.hstack(corners).astype(np.float32)
    return np.hstack([comps, score_map[y, x].reshape((-1, 1))])


def _filled_area(contour: np.ndarray) -> int:
    """Pixels ``cv2.drawContours`` fills for the contour (drawn on its bounding box only)."""
    x, y, w, h = cv2.boundingRect(contour)
    canvas = np.zeros((h, w), dtype=np.uint8)
    cv2.drawContours(canvas, [contour], -1, (1,), -1, offset=(-x, -y))
    return int(canvas.sum(dtype=np.int64))


def propose_components(
    maps: np.ndarray, s: GraphSettings
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """``maps`` (6 x H x W: text and centre probabilities, sin, cos, top and bottom heights) ->
    (attributes ``n x 6``, components ``n x 9``), both float64, or (None, None)."""
    text_region, center_region, sin_map, cos_map, top_map, bot_map = maps
    text_mask = text_region > s.text_region_thr
    center_mask = (center_region > s.center_region_thr) * text_mask
    scale = np.sqrt(np.float32(1.0) / (sin_map**2 + cos_map**2 + np.float32(1e-8)))
    sin_map, cos_map = sin_map * scale, cos_map * scale
    center_mask = fill_hole(center_mask)
    contours, _ = cv2.findContours(
        center_mask.astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE
    )
    size = center_region.shape
    found = []
    for contour in contours:
        if _filled_area(contour) <= s.center_region_area_thr:
            continue
        region = np.zeros(size)
        cv2.drawContours(region, [contour], -1, (1,), -1)
        comps = _components_of(text_region * region, top_map, bot_map, sin_map, cos_map, s)
        comps = merge_quadrangle_n9(comps, s.nms_thr)
        if len(comps) == 0:
            continue
        drawn = np.zeros(size)
        quads = comps[:, :8].reshape((-1, 4, 2)).astype(np.int32)
        cv2.drawContours(drawn, list(quads), -1, (1,), -1)
        if (drawn * text_mask).sum() < drawn.sum() * 0.5:
            continue
        found.append(comps)
    if not found:
        return None, None

    comps = np.vstack(found)
    boxes = comps[:, :8].reshape((-1, 4, 2))  # a view: clipping below changes comps, as in MMOCR
    corner_sum = boxes[:, 0] + boxes[:, 1] + boxes[:, 2] + boxes[:, 3]
    centres = (corner_sum / np.float32(4)).astype(np.int32)
    x, y = centres[:, 0], centres[:, 1]
    scores = []
    for box in boxes:
        box[:, 0] = np.clip(box[:, 0], 0, size[1] - 1)
        box[:, 1] = np.clip(box[:, 1], 0, size[0] - 1)
        low = np.min(box, axis=0).astype(np.int32)
        high = np.max(box, axis=0).astype(np.int32)
        extent = high - low + 1
        mask = np.zeros((extent[1], extent[0]), dtype=np.uint8)
        cv2.fillPoly(mask, [(box - low).astype(np.int32)], (1,))
        patch = text_region[low[1] : high[1] + 1, low[0] : high[0] + 1]
        scores.append(cv2.mean(patch, mask)[0])
    comps = np.hstack([comps[:, :-1], np.array(scores).reshape((-1, 1))])

    h = top_map[y, x].reshape((-1, 1)) + bot_map[y, x].reshape((-1, 1))
    w = np.clip(h * np.float32(s.comp_ratio), s.min_width, s.max_width)
    sin = sin_map[y, x].reshape((-1, 1))
    cos = cos_map[y, x].reshape((-1, 1))
    attribs = np.hstack([x.reshape((-1, 1)), y.reshape((-1, 1)), h, w, cos, sin])
    return attribs, comps


def _distances(points: np.ndarray) -> np.ndarray:
    """MMOCR's ``euclidean_distance_matrix`` of the points with themselves."""
    n = points.shape[0]
    sq = (points * points).sum(axis=1)
    d2 = sq.reshape((n, 1)) * np.ones((1, n)) + sq * np.ones((n, 1)) - 2 * points.dot(points.T)
    d2[d2 < 0.0] = 0.0
    return np.sqrt(d2)


def _nearest(dist: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` columns of numpy 1.x's ``argsort(dist, axis=1)``.

    Where no two of a row's first ``count`` distances (and the next one) are equal, any sort
    gives them; rows with a tie there are sorted as numpy 1.x did."""
    count = min(count, dist.shape[1])
    order = np.argsort(dist, axis=1, kind="stable")
    ranked = np.take_along_axis(dist, order, axis=1)
    upto = min(count + 1, dist.shape[1])
    ties = (np.diff(ranked[:, :upto], axis=1) == 0).any(axis=1)
    out = order[:, :count].copy()
    for row in np.flatnonzero(ties):
        out[row] = legacy_argsort(dist[row])[:count]
    return out


def embed_geometry(attribs: np.ndarray, length: int) -> np.ndarray:
    """MMOCR's ``feature_embedding``: sines and cosines of the attributes over wavelengths
    ``1000 ** (2 (j // 2) / repeats)``, ``n x length`` float32."""
    num, dim = attribs.shape
    repeats, residue = divmod(length, dim)
    stacked = np.repeat(np.expand_dims(attribs, axis=0), repeats, axis=0)
    extra = 1 if residue > 0 else 0
    if residue > 0:
        rest = np.hstack([attribs[:, 0:residue], np.zeros((num, dim - residue))])
        stacked = np.concatenate([stacked, np.expand_dims(rest, axis=0)], axis=0)
    waves = np.array(
        [np.power(1000, 2.0 * (j // 2) / repeats + extra) for j in range(repeats + extra)]
    ).reshape((repeats + extra, 1, 1))
    embedded = stacked / waves
    embedded[:, 0::2] = np.sin(embedded[:, 0::2])
    embedded[:, 1::2] = np.cos(embedded[:, 1::2])
    flat = np.transpose(embedded, (1, 0, 2)).reshape((num, -1))
    return flat[:, :length] if residue > 0 else flat.astype(np.float32)


def _normalized_adjacency(adjacency: np.ndarray) -> np.ndarray:
    a = adjacency + np.eye(adjacency.shape[0])
    d = np.clip(np.sum(a, axis=0), 0, None)
    d_inv = np.power(d, -0.5).flatten()
    d_inv[np.isinf(d_inv)] = 0.0
    d_inv = np.diag(d_inv)
    return a.dot(d_inv).transpose().dot(d_inv)


def build_local_graphs(
    pred_maps: Tensor, feat_maps: Tensor, s: GraphSettings
) -> LocalGraphs | None:
    """One image's head output (``1 x 6 x H x W``) and features (``1 x C x H x W``) -> its local
    graphs, or None when fewer than two components are found."""
    preds = pred_maps[0]
    maps = np.stack(
        [
            torch.sigmoid(preds[0]).cpu().numpy(),
            torch.sigmoid(preds[1]).cpu().numpy(),
            preds[2].cpu().numpy(),
            preds[3].cpu().numpy(),
            preds[4].cpu().numpy(),
            preds[5].cpu().numpy(),
        ]
    )
    attribs, comps = propose_components(maps, s)
    if attribs is None or comps is None or len(attribs) < 2:
        return None
    device = pred_maps.device
    dist = _distances(attribs[:, 0:2])
    geo = torch.from_numpy(embed_geometry(attribs, s.node_geo_feat_len)).to(device)
    attribs32 = attribs.astype(np.float32)
    angle = (np.arccos(attribs32[:, -2]) * np.sign(attribs32[:, -1])).reshape((-1, 1))
    batch_id = np.zeros((len(attribs32), 1), dtype=np.float32)
    rois = torch.from_numpy(np.hstack([batch_id, attribs32[:, :-2], angle])).to(device)
    pooled = roi_align_rotated(
        feat_maps, rois, s.pooling_output_size, s.pooling_scale, 0, True, False
    )
    node_feats = torch.cat([pooled.reshape(pooled.shape[0], -1), geo], dim=-1)

    k1, k2 = s.k_at_hops
    nearest = _nearest(dist, max(k1, k2, s.num_adjacent_linkages) + 1).tolist()
    graphs, knns = [], []
    for pivot in range(len(nearest)):
        knn = nearest[pivot][1 : k1 + 1]
        # The same set operations as MMOCR, so that Python leaves the same order.
        members = set(knn)
        for neighbour in knn:
            members.update(set(nearest[neighbour][1 : k2 + 1]))
        members.discard(pivot)
        graph = list(members)
        graph.insert(0, pivot)
        graphs.append(graph)
        knns.append(knn)
    return _pack(graphs, knns, nearest, node_feats, s, comps, rois, pooled)


def _pack(
    graphs: list[list[int]],
    knns: list[list[int]],
    nearest: list[list[int]],
    node_feats: Tensor,
    s: GraphSettings,
    comps: np.ndarray,
    rois: Tensor,
    pooled: Tensor,
) -> LocalGraphs:
    """Pad every local graph to the largest: pivot-relative features, normalised adjacency."""
    size = max(len(g) for g in graphs)
    feats = node_feats.new_zeros((len(graphs), size, node_feats.shape[1]))
    adjacency = torch.zeros((len(graphs), size, size), dtype=torch.float32)
    knn_inds = torch.zeros((len(graphs), len(knns[0])), dtype=torch.long)
    nodes = torch.zeros((len(graphs), size), dtype=torch.long)
    links = s.num_adjacent_linkages
    for g, (graph, knn) in enumerate(zip(graphs, knns)):
        position = {node: i for i, node in enumerate(graph)}
        knn_inds[g] = torch.tensor([position[i] for i in knn], dtype=torch.long)
        feats[g, : len(graph)] = node_feats[graph] - node_feats[graph[0]]
        a = np.zeros((len(graph), len(graph)))
        for node in graph:
            for neighbour in nearest[node][1 : links + 1]:
                if neighbour in position:
                    a[position[node], position[neighbour]] = 1
                    a[position[neighbour], position[node]] = 1
        adjacency[g, : len(graph), : len(graph)] = torch.from_numpy(_normalized_adjacency(a))
        nodes[g, : len(graph)] = torch.tensor(graph, dtype=torch.long)
    return LocalGraphs(
        node_feats=feats,
        adjacency=adjacency.to(node_feats.device),
        knn_inds=knn_inds.to(node_feats.device),
        graph_nodes=nodes,
        text_comps=comps,
        rois=rois,
        pooled=pooled,
    )
