/**
 * Calling Fabric in tests over either transport: who a call acts as (`Actor`), how a gRPC
 * status reads as an HTTP one, and one call helper for any RPC (`client`): answers
 * normalised to REST's `data` JSON, failures to status + stable code + issues +
 * Retry-After, so one test body checks both transports.
 */
import { randomUUID } from "node:crypto";
import { fromJson, toJson, type DescService, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "vitest";
import { ValidationIssueSchema } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { jsonOptions, restOperations, services } from "../../src/control-plane/contract.js";
import { connectCode, httpStatus } from "../../src/control-plane/error-mapping.js";
import type { TestFabric } from "./fabric.js";

/** An API key, or (development) a principal id with an optional organization. */
export type Actor = { key: string } | { principalId: string; organizationId?: string };

/** The HTTP status REST answers for the domain error a gRPC code stands for (the servers' own mapping). */
export const grpcStatus: Partial<Record<Code, number>> = Object.fromEntries(
  (Object.keys(connectCode) as (keyof typeof connectCode)[]).map((k) => [connectCode[k], httpStatus[k]]),
);

export function headersOf(actor: Actor, requestId: string): Record<string, string> {
  const h: Record<string, string> = { "x-request-id": requestId };
  if ("key" in actor) h["authorization"] = `Bearer ${actor.key}`;
  else {
    h["x-principal-id"] = actor.principalId;
    if (actor.organizationId) h["x-organization-id"] = actor.organizationId;
  }
  return h;
}

export type Via = "rest" | "grpc";
export const transports: readonly Via[] = ["rest", "grpc"];

export type Ok = { ok: true; status: number; data: any; json: any; requestId: string; headers: Headers };
export type Failed = {
  ok: false;
  status: number;
  code: string;
  detail: string;
  requestId: string;
  issues: { path: string; code: string }[];
  /** REST's Retry-After header, gRPC's `retry-after` metadata. */
  retryAfter: string | null;
  /** The gRPC status code, on gRPC. */
  grpcCode?: Code;
  /** A stream that failed after it opened: the deltas it had sent. */
  deltas?: string[];
};
export type Result = Ok | Failed;

/** A Connect error as a `Failed` (status mapped to REST's, code from `fabric-error-code`). */
export function failedFromConnect(err: unknown, requestId = ""): Failed {
  const e = ConnectError.from(err);
  return {
    ok: false,
    status: grpcStatus[e.code] ?? 0,
    code: e.metadata.get("fabric-error-code") ?? Code[e.code],
    detail: e.rawMessage,
    requestId,
    issues: e.findDetails(ValidationIssueSchema).map((i) => ({ path: i.path, code: i.code })),
    retryAfter: e.metadata.get("retry-after"),
    grpcCode: e.code,
  };
}

/** A REST problem response as a `Failed`. */
export async function failedFromRest(res: Response, requestId = ""): Promise<Failed> {
  const json: any = await res.json();
  return { ok: false, status: res.status, code: json.code, detail: json.detail, requestId, issues: (json.issues ?? []).map((i: any) => ({ path: i.path, code: i.code })), retryAfter: res.headers.get("retry-after") };
}

export interface Client {
  readonly via: Via;
  /**
   * Calls `rpc` (e.g. `ApiKeyService/CreateApiKey`) with proto-JSON `fields`; REST puts
   * path fields in the path, the rest in the query (GET) or the body.
   */
  call(rpc: string, fields: Record<string, unknown>, actor: Actor, requestId?: string): Promise<Result>;
  /** Like `call`, failing the test unless it succeeded; returns `data`. */
  ok(rpc: string, fields: Record<string, unknown>, actor: Actor, requestId?: string): Promise<any>;
  /** Like `call`, failing the test unless it failed with `status` (and `code`, when given). */
  fails(rpc: string, fields: Record<string, unknown>, actor: Actor, status: number, code?: string): Promise<Failed>;
}

/** `transport`: a shared gRPC transport (default: one per client). */
export function client(fabric: TestFabric, via: Via, transport?: Transport): Client {
  const grpcClients = new Map<DescService, any>();
  const grpcOf = (s: DescService) => {
    let c = grpcClients.get(s);
    if (!c) grpcClients.set(s, (c = createClient(s, transport ?? createGrpcTransport({ baseUrl: fabric.grpcUrl }))));
    return c;
  };

  async function call(rpc: string, fields: Record<string, unknown>, actor: Actor, requestId = `a-${randomUUID()}`): Promise<Result> {
    const full = `fabric.v1.${rpc}`;
    const op = restOperations.find((o) => o.rpc === full);
    if (!op) throw new Error(`no REST operation for ${full}`);
    const desc = op.protoMethod!;
    if (via === "grpc") {
      const service = services.find((s) => s.typeName === full.split("/")[0])!;
      try {
        const res = await grpcOf(service)[desc.localName](fromJson(desc.input, fields as JsonValue), { headers: headersOf(actor, requestId) });
        const json = toJson(desc.output, res, jsonOptions) as Record<string, unknown>;
        return { ok: true, status: 200, data: op.data === "*" ? json : json[op.data!], json, requestId, headers: new Headers() };
      } catch (err) {
        return failedFromConnect(err, requestId);
      }
    }
    const rest: Record<string, unknown> = { ...fields };
    const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const v = rest[name];
      delete rest[name];
      return encodeURIComponent(String(v ?? ""));
    });
    const qs = op.body ? "" : new URLSearchParams(Object.entries(rest).map(([k, v]): [string, string] => [k, String(v)])).toString();
    const body = op.body === "*" ? rest : op.body ? rest[op.body] : undefined;
    const res = await fetch(fabric.restUrl + path + (qs ? `?${qs}` : ""), {
      method: op.method,
      headers: { ...headersOf(actor, requestId), ...(op.body ? { "content-type": "application/json" } : {}) },
      body: op.body ? JSON.stringify(body ?? {}) : undefined,
    });
    if (res.status < 200 || res.status >= 300) return failedFromRest(res, requestId);
    const json: any = await res.json();
    return { ok: true, status: res.status, data: json.data, json, requestId, headers: res.headers };
  }

  return {
    via,
    call,
    async ok(rpc, fields, actor, requestId) {
      const r = await call(rpc, fields, actor, requestId);
      expect(r, `${via} ${rpc} should succeed`).toMatchObject({ ok: true });
      return (r as Ok).data;
    },
    async fails(rpc, fields, actor, status, code) {
      const r = await call(rpc, fields, actor);
      expect(r.ok, `${via} ${rpc} should fail with ${status} ${code ?? ""}: ${JSON.stringify(r)}`).toBe(false);
      const f = r as Failed;
      expect(f.status, `${via} ${rpc}: ${f.code} ${f.detail}`).toBe(status);
      if (code !== undefined) expect(f.code, `${via} ${rpc}: ${f.detail}`).toBe(code);
      return f;
    },
  };
}

/** GET /v1/workflows with `key`: the status only (a cheap "does this key work?"). */
export async function probe(fabric: TestFabric, key: string, method: "GET" | "POST" = "GET"): Promise<number> {
  const res = await fabric.rest("/v1/workflows", method === "GET" ? { key } : { key, method: "POST", json: { name: `probe-${randomUUID().slice(0, 8)}`, nodes: [{ key: "a", operation: "workflow.noop" }] } });
  await res.body?.cancel();
  return res.status;
}
