"""Speaker-transition graphs of multi-party conversations (networkx), shared by scenarios and analyzers."""

from __future__ import annotations

from typing import Any

import networkx as nx

from sim.records import Turn


def transition_graph(turns: list[Turn]) -> nx.DiGraph:
    """A directed graph with an edge A -> B weighted by how often B spoke right after A."""
    graph = nx.DiGraph()
    graph.add_nodes_from(turn.speaker for turn in turns)
    for before, after in zip(turns, turns[1:]):
        weight = graph.get_edge_data(before.speaker, after.speaker, {"weight": 0})["weight"]
        graph.add_edge(before.speaker, after.speaker, weight=weight + 1)
    return graph


def graph_summary(graph: nx.DiGraph) -> dict[str, Any]:
    """Edges with weights and a few whole-graph measures, JSON-ready."""
    weights = sorted(((a, b, d["weight"]) for a, b, d in graph.edges(data=True)), key=lambda edge: (-edge[2], edge[0], edge[1]))
    return {
        "n_speakers": graph.number_of_nodes(),
        "edges": [list(edge) for edge in weights],
        "density": round(nx.density(graph), 4) if graph.number_of_nodes() > 1 else 0.0,
        "reciprocity": round(nx.overall_reciprocity(graph), 4) if graph.number_of_edges() else 0.0,
        "self_loops": nx.number_of_selfloops(graph),
    }
