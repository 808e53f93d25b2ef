/**
 * The DAG as an SVG: boxes coloured by status, edges coloured by whether the dependency
 * is satisfied. Each box is a keyboard-focusable button (Enter/Space selects it). The
 * time from layout to the first paint of a given shape is written to `data-render-ms`
 * (the browser tests read it).
 */
import { useEffect, useMemo, useRef } from "preact/hooks";
import { layoutDag, nodeHeight, nodeWidth } from "./layout.js";

export interface DagNode {
  key: string;
  operation: string;
  depends_on: string[];
}

export interface DagViewProps {
  nodes: DagNode[];
  /** Status by node key; a node without one is drawn as `blocked`. */
  statuses?: Record<string, string>;
  selected?: string;
  onSelect?: (key: string) => void;
  label: string;
}

const satisfied = new Set(["succeeded", "skipped"]);

export function DagView({ nodes, statuses = {}, selected, onSelect, label }: DagViewProps) {
  const started = useRef(0);
  const shape = nodes.map((n) => `${n.key}<${n.depends_on.join(",")}`).join(";");
  const layout = useMemo(() => {
    started.current = performance.now();
    return layoutDag(nodes);
  }, [shape]);
  const figure = useRef<HTMLElement>(null);
  useEffect(() => {
    // After the commit, once the browser has painted the new shape.
    requestAnimationFrame(() => figure.current?.setAttribute("data-render-ms", (performance.now() - started.current).toFixed(1)));
  }, [layout]);
  const byKey = useMemo(() => new Map(nodes.map((n) => [n.key, n])), [shape]);
  const select = (key: string) => onSelect?.(key);
  return (
    <figure class="dag" ref={figure} data-node-count={nodes.length}>
      <div class="dag-scroll">
        <svg width={layout.width} height={layout.height} viewBox={`0 0 ${layout.width} ${layout.height}`} role="group" aria-label={label}>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" class="dag-arrow" />
            </marker>
          </defs>
          {layout.edges.map((e) => {
            const done = satisfied.has(statuses[e.from] ?? "");
            return (
              <polyline
                key={`${e.from}->${e.to}`}
                class={`dag-edge ${done ? "dag-edge-done" : ""}`}
                points={e.points.map((p) => `${p.x},${p.y}`).join(" ")}
                marker-end="url(#arrow)"
                data-edge={`${e.from}->${e.to}`}
              />
            );
          })}
          {layout.nodes.map((p) => {
            const n = byKey.get(p.key)!;
            const status = statuses[p.key] ?? "blocked";
            const keyText = clip(p.key, 22);
            const opText = `${clip(n.operation, 13)} · ${status}`;
            return (
              <g
                key={p.key}
                class={`dag-node status-${status} ${selected === p.key ? "selected" : ""}`}
                transform={`translate(${p.x - nodeWidth / 2},${p.y - nodeHeight / 2})`}
                role="button"
                // Lower-case on purpose: SVG attributes are case-sensitive, and `tabIndex` would not make the box focusable.
                tabindex={0}
                aria-pressed={selected === p.key}
                // No aria-label: the name is the visible text (key, operation, status), so what is seen is what is announced.
                data-node-key={p.key}
                data-status={status}
                onClick={() => select(p.key)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" || e.key === " ") {
                    e.preventDefault();
                    select(p.key);
                  }
                }}
              >
                <rect width={nodeWidth} height={nodeHeight} rx="6" />
                <text x="10" y="18" class="dag-key">
                  {keyText}
                </text>
                <text x="10" y="34" class="dag-op">
                  {opText}
                </text>
              </g>
            );
          })}
        </svg>
      </div>
      <figcaption class="muted small">
        {nodes.length} node{nodes.length === 1 ? "" : "s"}; arrows point from a dependency to the node that waits for it.
      </figcaption>
    </figure>
  );
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
