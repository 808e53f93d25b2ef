/**
 * Lays a workflow's DAG out left to right with dagre: one box per node, one edge per
 * dependency (from the dependency to the dependant). Pure: the same spec gives the same
 * picture, and it runs in Node for tests.
 */
import { Graph, layout } from "@dagrejs/dagre";

export interface GraphNodeInput {
  key: string;
  depends_on: string[];
}

export interface PlacedNode {
  key: string;
  /** Centre of the box. */
  x: number;
  y: number;
}

export interface PlacedEdge {
  from: string;
  to: string;
  /** Polyline points, from the dependency's box to the dependant's. */
  points: { x: number; y: number }[];
}

export interface DagLayout {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

export const nodeWidth = 168;
export const nodeHeight = 44;

export function layoutDag(nodes: GraphNodeInput[]): DagLayout {
  const g = new Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const keys = new Set(nodes.map((n) => n.key));
  for (const n of nodes) g.setNode(n.key, { width: nodeWidth, height: nodeHeight });
  for (const n of nodes) for (const d of n.depends_on) if (keys.has(d)) g.setEdge(d, n.key);
  layout(g);
  const placed = nodes.map((n) => {
    const p = g.node(n.key) as { x: number; y: number };
    return { key: n.key, x: p.x, y: p.y };
  });
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: ((g.edge(e) as { points?: { x: number; y: number }[] }).points ?? []).map((p) => ({ x: p.x, y: p.y })) }));
  const label = g.graph() as { width?: number; height?: number };
  return { nodes: placed, edges, width: Math.ceil(label.width ?? 0), height: Math.ceil(label.height ?? 0) };
}
