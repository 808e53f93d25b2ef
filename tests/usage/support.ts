/**
 * Shared by the provider, policy and usage suites: a Fabric whose control plane has the
 * OpenAI fake enabled, one call helper for any RPC over REST or gRPC (answers normalised to
 * REST's JSON, failures to status + code + issues + Retry-After), the streamed execute on
 * both transports, and database counts.
 */
import { randomUUID } from "node:crypto";
import { fromJson, toJson, type DescService, type JsonValue } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { ExecuteResponseSchema, ExecuteStreamRequestSchema, ProviderService } from "../../gen/proto/fabric/v1/providers_pb.js";
import { query } from "../../src/db/database.js";
import { startFakeOpenAI, type FakeServer } from "../../src/providers/fakes/index.js";
import { jsonOptions } from "../../src/control-plane/contract.js";
import { client, failedFromConnect, failedFromRest, headersOf, type Actor, type Client, type Failed, type Via } from "../helpers/calls.js";
export { transports, type Failed, type Ok, type Result, type Via } from "../helpers/calls.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";



export interface ProviderFabric {
  fabric: TestFabric;
  fake: FakeServer;
  /** One call helper per transport. */
  api: Record<Via, Api>;
  /** The streamed execute: the deltas and the final result (REST JSON), or the failure. */
  stream(via: Via, call: Record<string, unknown>, actor: Actor): Promise<{ ok: true; deltas: string[]; result: any; events: string[] } | Failed>;
  close(): Promise<void>;
}

export type Api = Client;

export async function startProviderFabric(): Promise<ProviderFabric> {
  const fake = await startFakeOpenAI();
  const fabric = await startTestFabric({ worker: false, env: { OPENAI_API_KEY: "k", OPENAI_BASE_URL: fake.url } });
  const sessions = new Http2SessionManager(fabric.grpcUrl);
  const transport = createGrpcTransport({ baseUrl: fabric.grpcUrl, sessionManager: sessions });
  const clients = new Map<DescService, any>();
  const grpcOf = (s: DescService) => {
    let c = clients.get(s);
    if (!c) clients.set(s, (c = createClient(s, transport)));
    return c;
  };

  async function stream(via: Via, call: Record<string, unknown>, actor: Actor) {
    if (via === "grpc") {
      const deltas: string[] = [];
      const events: string[] = [];
      let result: any;
      try {
        const client = grpcOf(ProviderService);
        for await (const chunk of client.executeStream(fromJson(ExecuteStreamRequestSchema, { call } as JsonValue), { headers: headersOf(actor, `t-${randomUUID()}`) })) {
          events.push(chunk.chunk.case);
          if (chunk.chunk.case === "delta") deltas.push(chunk.chunk.value.text);
          else if (chunk.chunk.case === "result") result = toJson(ExecuteResponseSchema, chunk.chunk.value, jsonOptions);
        }
      } catch (err) {
        return { ...failedFromConnect(err), ...(events.length ? { deltas } : {}) };
      }
      return { ok: true as const, deltas, result, events };
    }
    const res = await fetch(`${fabric.restUrl}/v1/providers/execute/stream`, {
      method: "POST",
      headers: { ...headersOf(actor, `t-${randomUUID()}`), "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(call),
    });
    if (res.status !== 200) return failedFromRest(res);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const messages = parseSse(await res.text());
    const deltas = messages.filter((m) => m.event === "delta").map((m) => JSON.parse(m.data).text as string);
    const last = messages.at(-1);
    const result = last?.event === "result" ? JSON.parse(last.data) : undefined;
    if (last?.event === "error") {
      const p = JSON.parse(last.data);
      return { ok: false as const, status: p.status, code: p.code, detail: p.detail, requestId: p.request_id ?? "", issues: [], retryAfter: null, deltas };
    }
    return { ok: true as const, deltas, result, events: messages.map((m) => m.event ?? "message") };
  }

  return {
    fabric,
    fake,
    api: { rest: client(fabric, "rest", transport), grpc: client(fabric, "grpc", transport) },
    stream,
    async close() {
      sessions.abort();
      await fabric?.close();
      await fake?.close();
    },
  };
}

/** SSE text → messages (event, data); comment lines are dropped. */
export function parseSse(text: string): { event?: string; data: string }[] {
  const out: { event?: string; data: string }[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (event !== undefined || data.length) out.push({ ...(event !== undefined ? { event } : {}), data: data.join("\n") });
  }
  return out;
}

export interface UsageRow {
  id: string;
  organization_id: string;
  team_id: string | null;
  principal_id: string | null;
  api_key_id: string | null;
  provider: string;
  model: string;
  operation: string;
  status: string;
  input_tokens: string;
  output_tokens: string;
  estimated_nano_usd: string | null;
  actual_nano_usd: string | null;
  price_table: string;
  error_code: string | null;
}

/** Every usage record (optionally of one organization), oldest first; numbers as text. */
export async function usageRows(fabric: TestFabric, organizationId?: string): Promise<UsageRow[]> {
  return query<UsageRow>(
    fabric.database.db,
    sql`SELECT id::text AS id, organization_id, team_id, principal_id, api_key_id, provider, model, operation, status, input_tokens::text AS input_tokens,
          output_tokens::text AS output_tokens, estimated_nano_usd::text AS estimated_nano_usd, actual_nano_usd::text AS actual_nano_usd, price_table, error_code
        FROM usage_records ${organizationId ? sql`WHERE organization_id = ${organizationId}` : sql``} ORDER BY usage_records.id`,
  );
}

export async function usageCount(fabric: TestFabric): Promise<number> {
  const [row] = await query<{ n: number }>(fabric.database.db, sql`SELECT count(*)::int AS n FROM usage_records`);
  return Number(row!.n);
}

export async function usageRecord(fabric: TestFabric, id: string): Promise<UsageRow> {
  const row = (await usageRows(fabric)).find((r) => r.id === id);
  expect(row, `usage record ${id}`).toBeDefined();
  return row!;
}

/** ceil(chars / 4): what the fakes (and echo) report as tokens. */
export const tokens = (...parts: string[]) => Math.ceil(parts.reduce((n, p) => n + p.length, 0) / 4);

/**
 * Waits out the last seconds of a minute, so a test counting requests in one fixed
 * one-minute window does not straddle two.
 */
export async function freshMinute(marginSeconds = 50): Promise<void> {
  const s = new Date().getUTCSeconds() + new Date().getUTCMilliseconds() / 1000;
  if (s > marginSeconds) await new Promise((r) => setTimeout(r, (60 - s) * 1000 + 200));
}

/** Seconds until the next UTC midnight (a daily budget's reset). */
export function secondsToUtcMidnight(now = new Date()): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.ceil((next - now.getTime()) / 1000);
}
