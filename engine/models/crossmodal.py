"""Cross-modal passage embeddings: sheet-music snippets and audio excerpts in one space.

Two subnetworks, one per modality, each a CNN encoder followed by a fully connected encoder
and a graph-convolutional encoder over a k-nearest-neighbour graph of the modality's own items
(the batch while training, the library's items at search time); the two encodings are fused
into one unit vector in the common space. Trained with a semantic loss (a passage's snippet
and its audio against the other passages of the batch) and a modality-invariance loss (the
two encodings of one passage close together), a passage's image and its sound land together.
Without the graph encoder (`graph=False`) it is the plain two-branch embedding of audio-sheet
music retrieval work on MSMD, the baseline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from engine.models import load_checkpoint, stored_config

CHECKPOINT_VERSION = 1
SHEET_SIZE = (80, 144)  # (height, width) a sheet snippet is resized to
AUDIO_SIZE = (96, 64)  # (mel bands, frames) an audio excerpt is resized to


@dataclass(frozen=True)
class CrossModalConfig:
    """Shape of a CrossModalNet; stored inside its checkpoint."""

    channels: tuple[int, ...] = (8, 16, 32, 64)  # CNN widths, one 2x2 pooling after each
    hidden: int = 256  # width of the fully connected and graph encoders
    dim: int = 64  # the common space
    graph: bool = True  # the graph-convolutional encoder (False: the two-branch baseline)
    neighbours: int = 5  # k of the k-nearest-neighbour graph
    dropout: float = 0.1


def _cnn(channels: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = 1
    for out in channels:
        layers += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ELU(),
                   nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ELU(),
                   nn.MaxPool2d(2)]
        width = out
    # Flattened, not pooled: where a note sits (pitch, and order in time) is what matches.
    return nn.Sequential(*layers, nn.Flatten())


def knn_adjacency(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Normalised adjacency D^-1/2 (A + I) D^-1/2 of the symmetric k-NN graph (cosine)."""
    unit = nn.functional.normalize(keys, dim=1)
    similarity = unit @ unit.T
    count = keys.shape[0]
    k = min(k, count - 1)
    adjacency = torch.eye(count, device=keys.device)
    if k > 0:
        similarity = similarity - 2 * torch.eye(count, device=keys.device)  # not itself
        nearest = similarity.topk(k, dim=1).indices
        adjacency = adjacency.scatter(1, nearest, 1.0)
        adjacency = ((adjacency + adjacency.T) > 0).float()
    degree = adjacency.sum(dim=1).rsqrt()
    return degree[:, None] * adjacency * degree[None, :]


def sparse_knn_adjacency(keys: torch.Tensor, k: int, block: int = 2048) -> torch.Tensor:
    """`knn_adjacency` as a sparse matrix, its neighbours found a block of rows at a time, for
    the many items of a library."""
    unit = nn.functional.normalize(keys, dim=1)
    count = keys.shape[0]
    k = min(k, count - 1)
    rows, cols = [torch.arange(count)], [torch.arange(count)]
    for first in range(0, count if k > 0 else 0, block):
        similarity = unit[first:first + block] @ unit.T
        index = torch.arange(first, min(first + block, count))
        similarity[index - first, index] = -2.0  # not itself
        nearest = similarity.topk(k, dim=1).indices
        rows += [index.repeat_interleave(k), nearest.flatten()]
        cols += [nearest.flatten(), index.repeat_interleave(k)]
    pairs = torch.unique(torch.stack([torch.cat(rows), torch.cat(cols)]), dim=1)
    degree = torch.bincount(pairs[0], minlength=count).float().rsqrt()
    values = degree[pairs[0]] * degree[pairs[1]]
    return torch.sparse_coo_tensor(pairs, values, (count, count), check_invariants=True).coalesce()


@dataclass
class Nodes:
    """Items of one modality as the encoders after the CNN see them."""

    dense: torch.Tensor  # (N, hidden) fully connected encodings; the k-NN graph joins these
    graph: torch.Tensor | None  # (N, hidden) the graph encoder's input (None without it)

    def __len__(self) -> int:
        return len(self.dense)

    def take(self, index: torch.Tensor | slice) -> Nodes:
        """Some of the items."""
        return Nodes(self.dense[index], None if self.graph is None else self.graph[index])

    @staticmethod
    def joined(*parts: Nodes) -> Nodes:
        """Sets of items as one."""
        graph = None if parts[0].graph is None else torch.cat([p.graph for p in parts])
        return Nodes(torch.cat([p.dense for p in parts]), graph)


class Branch(nn.Module):
    """One modality's subnetwork: CNN -> fully connected encoder (+ graph encoder) -> fusion."""

    def __init__(self, config: CrossModalConfig, size: tuple[int, int]) -> None:
        super().__init__()
        self.config = config
        self.cnn = _cnn(config.channels)
        shrink = 2 ** len(config.channels)
        width = config.channels[-1] * (size[0] // shrink) * (size[1] // shrink)
        self.dense = nn.Sequential(nn.Linear(width, config.hidden), nn.ELU(),
                                   nn.Dropout(config.dropout),
                                   nn.Linear(config.hidden, config.hidden), nn.ELU())
        if config.graph:
            self.graph_in = nn.Linear(width, config.hidden)
            self.graph_out = nn.Linear(config.hidden, config.hidden)
        fused = config.hidden * (2 if config.graph else 1)
        self.fuse = nn.Linear(fused, config.dim)

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """CNN features of a batch (B, 1, H, W) -> (B, features)."""
        return self.cnn(inputs)

    def nodes(self, features: torch.Tensor) -> Nodes:
        """CNN features -> the items' states before the graph: what a library stores."""
        return Nodes(self.dense(features), self.graph_in(features) if self.config.graph else None)

    def combine(self, nodes: Nodes, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """Items' states -> unit vectors in the common space.

        Args:
            nodes: N items of this modality (`nodes`).
            adjacency: their normalised graph, dense (`knn_adjacency`) or sparse
                (`sparse_knn_adjacency`); built over the items when not given. Ignored
                without the graph encoder.
        """
        parts = [nodes.dense]
        if nodes.graph is not None:
            if adjacency is None:
                adjacency = knn_adjacency(nodes.dense, self.config.neighbours)
            hidden = nn.functional.elu(adjacency @ nodes.graph)
            parts.append(nn.functional.elu(adjacency @ self.graph_out(hidden)))
        return nn.functional.normalize(self.fuse(torch.cat(parts, dim=1)), dim=1)

    def embed(self, features: torch.Tensor,
              adjacency: torch.Tensor | None = None) -> torch.Tensor:
        """CNN features (N, features) -> unit vectors in the common space (`combine`)."""
        return self.combine(self.nodes(features), adjacency)

    def embed_library(self, nodes: Nodes) -> torch.Tensor:
        """The embeddings of many stored items, their graph over all of them (sparse)."""
        if nodes.graph is None or not len(nodes):
            return self.combine(nodes)
        return self.combine(nodes, sparse_knn_adjacency(nodes.dense, self.config.neighbours))

    def embed_among(self, queries: Nodes, items: Nodes) -> torch.Tensor:
        """Embeddings of new items (a query's snippets) in the graph of stored ones.

        Each query joins the graph beside its k nearest stored items; its embedding is read
        from the sub-graph of those items and their own nearest neighbours (the two hops the
        graph encoder sees), so a query costs one nearest-neighbour search, not the library's
        whole graph.

        Args:
            queries: (Q items) the queries' states (`nodes`).
            items: (N items) the states of the stored items of the same modality.
        """
        if queries.graph is None or not len(items):
            return self.combine(queries, torch.eye(len(queries)))
        k = min(self.config.neighbours, len(items))
        unit_items = nn.functional.normalize(items.dense, dim=1)
        unit_queries = nn.functional.normalize(queries.dense, dim=1)
        near = (unit_queries @ unit_items.T).topk(k, dim=1).indices
        second = (unit_items[near.flatten()] @ unit_items.T).topk(k, dim=1).indices
        rows = []
        for index in range(len(queries)):
            hops = torch.cat([near[index], second[index * k:(index + 1) * k].flatten()]).unique()
            subgraph = Nodes.joined(queries.take(slice(index, index + 1)), items.take(hops))
            rows.append(self.combine(subgraph)[0])
        return torch.stack(rows)


class CrossModalNet(nn.Module):
    """The sheet branch and the audio branch."""

    def __init__(self, config: CrossModalConfig) -> None:
        super().__init__()
        self.config = config
        self.sheet = Branch(config, SHEET_SIZE)
        self.audio = Branch(config, AUDIO_SIZE)

    def forward(self, sheets: torch.Tensor,
                audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paired batches (B, 1, *SHEET_SIZE), (B, 1, *AUDIO_SIZE) -> their embeddings."""
        return (self.sheet.embed(self.sheet.features(sheets)),
                self.audio.embed(self.audio.features(audio)))

    def save(self, path: Path, *, metrics: dict) -> None:
        """Write a slim self-describing checkpoint (weights, config, metrics)."""
        torch.save({"state_dict": self.state_dict(), "config": asdict(self.config),
                    "version": CHECKPOINT_VERSION, "metrics": metrics}, path)

    @classmethod
    def from_checkpoint(cls, path: Path, *,
                        device: str | torch.device = "cpu") -> tuple[CrossModalNet, dict]:
        """Rebuild the model from its checkpoint: (model in eval mode, stored metrics).

        Raises:
            ModelUnavailable: when the file is missing or not a cross-modal checkpoint.
        """

        def build(stored: dict) -> CrossModalNet:
            model = cls(stored_config(CrossModalConfig, stored))
            model.load_state_dict(stored["state_dict"])
            return model

        model, stored = load_checkpoint(
            path, build, device=device, name="The score search model file",
            missing="is missing. Reinstall the studio or retrain it "
            "(see checkpoints/crossmodal.md).",
        )
        return model, stored.get("metrics", {})
