import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { ApiError } from "../api/problem.js";

/** An API failure as the problem document states it, with the request id to quote. */
export function ErrorNotice({ error, onDismiss }: { error: ApiError | undefined; onDismiss?: () => void }) {
  if (!error) return null;
  return (
    <div class="notice error" role="alert">
      <strong>{error.title}</strong>
      {error.detail && <span> — {error.detail}</span>}
      <div class="muted small">
        {error.status ? `HTTP ${error.status} · ` : ""}
        code <code>{error.code}</code>
        {error.requestId && (
          <>
            {" "}· request id <code data-testid="request-id">{error.requestId}</code>
          </>
        )}
      </div>
      {onDismiss && (
        <button type="button" class="link" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}

const statusTone: Record<string, string> = {
  completed: "ok",
  succeeded: "ok",
  failed: "bad",
  cancelled: "off",
  skipped: "off",
  running: "busy",
  ready: "wait",
  pending: "wait",
  blocked: "idle",
  paused: "warn",
  waiting: "warn",
  reserved: "busy",
  delivered: "ok",
};

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge tone-${statusTone[status] ?? "idle"}`}>{status}</span>;
}

export function Time({ value }: { value: string | undefined }) {
  if (!value) return <span class="muted">—</span>;
  const d = new Date(value);
  return (
    <time dateTime={value} title={d.toISOString()}>
      {d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" })}
    </time>
  );
}

export function duration(from: string | undefined, to: string | undefined): string {
  if (!from) return "—";
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A JSON value as a tree of native disclosure widgets (keyboard-operable as they are). */
export function JsonTree({ value, label, open = true }: { value: unknown; label?: string; open?: boolean }) {
  return (
    <div class="json-tree">
      <JsonNode name={label} value={value} depth={0} open={open} />
    </div>
  );
}

function JsonNode({ name, value, depth, open }: { name: string | undefined; value: unknown; depth: number; open: boolean }) {
  const keyLabel = name !== undefined ? <span class="json-key">{name}: </span> : null;
  if (value === null || typeof value !== "object") {
    return (
      <div class="json-leaf">
        {keyLabel}
        <span class={`json-${value === null ? "null" : typeof value}`}>{JSON.stringify(value)}</span>
      </div>
    );
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  if (entries.length === 0) {
    return (
      <div class="json-leaf">
        {keyLabel}
        <span class="muted">{Array.isArray(value) ? "[]" : "{}"}</span>
      </div>
    );
  }
  return (
    <details open={open && depth < 2}>
      <summary>
        {keyLabel}
        <span class="muted">{summary}</span>
      </summary>
      <div class="json-children">
        {entries.map(([k, v]) => (
          <JsonNode key={k} name={k} value={v} depth={depth + 1} open={open} />
        ))}
      </div>
    </details>
  );
}

/** Shows a secret once with a copy button; the page says it will not be shown again. */
export function SecretOnce({ label, secret }: { label: string; secret: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="notice secret" role="status">
      <p>
        <strong>{label}</strong> — shown once; copy it now.
      </p>
      <code class="secret-value" data-testid="secret">
        {secret}
      </code>{" "}
      <button
        type="button"
        onClick={async () => {
          await navigator.clipboard?.writeText(secret).catch(() => undefined);
          setCopied(true);
        }}
      >
        {copied ? "Copied" : "Copy"}
      </button>
    </div>
  );
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <section aria-labelledby={id} class="panel">
      <div class="panel-head">
        <h2 id={id}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted empty">{children}</p>;
}

/** Parses a JSON object typed by a person; the message says what is wrong and where. */
export function parseJsonObject(text: string): { value: Record<string, unknown>; error?: undefined } | { value?: undefined; error: string } {
  if (!text.trim()) return { value: {} };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return { error: `not valid JSON: ${(err as Error).message}` };
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return { error: "must be a JSON object, e.g. {\"topic\": \"hello\"}" };
  return { value: v as Record<string, unknown> };
}
