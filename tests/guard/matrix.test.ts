/**
 * The permission matrix, generated from the operation table: every guarded operation ×
 * every kind of caller (each organization role, a team-only maintainer, a member of
 * another organization, a revoked key, an expired key, a key whose scopes lack the
 * action) × both transports → the allow/deny the role tables predict.
 *
 * Requests carry the organization's id and random ids for everything else, so an
 * allowed call gets past the guard and then fails (or not) in its service for ordinary
 * reasons (400 invalid body, 404 unknown id…). What the matrix asserts is the guard's
 * verdict: 401 / 403 / "organization not found" versus anything else.
 */
import { randomUUID } from "node:crypto";
import { create, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { restOperations, services } from "../../src/control-plane/contract.js";
import { organizationRoleGrants, scopeAllows, teamRoleGrants, type Action } from "../../src/domain/permissions.js";
import { operationRules, type OperationRule } from "../../src/control-plane/operation-rules.js";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { insertKey, insertMembership, insertTeam, insertUser } from "../helpers/fixtures.js";

type Verdict = "allowed" | "denied" | "hidden" | "unauthenticated";

interface Caller {
  name: string;
  key: string;
  expect: (rule: OperationRule) => Verdict;
}

const grantsOf = (role: keyof typeof organizationRoleGrants) => new Set<Action>([...organizationRoleGrants[role].all, ...organizationRoleGrants[role].own]);
const teamGrants = new Set<Action>([...teamRoleGrants.maintainer.all, ...teamRoleGrants.maintainer.own]);

/** What the guard should answer for a member whose allowed actions are `grants`. */
const byGrants = (grants: Set<Action>, scopes: string[] = []) => (rule: OperationRule): Verdict => {
  if (!("action" in rule) || rule.action === null) return "allowed";
  return grants.has(rule.action) && (scopes.length === 0 || scopeAllows(scopes, rule.action)) ? "allowed" : "denied";
};

/**
 * An outsider's key acts in its own organization: operations naming ours (by a field)
 * must not see it; operations on "the caller's organization" act in theirs.
 */
const outsider = (rule: OperationRule): Verdict => ("org" in rule && typeof rule.org === "object" ? "hidden" : "allowed");

// Archiving is last: it changes the organization every other call uses.
const guarded = Object.entries(operationRules)
  .filter(([, r]) => !("anonymous" in r && r.anonymous))
  .sort(([a], [b]) => Number(a.endsWith("/ArchiveOrganization")) - Number(b.endsWith("/ArchiveOrganization")));

describe("permission matrix: operation × caller × transport", () => {
  let fabric: TestFabric;
  const callers: Caller[] = [];

  beforeAll(async () => {
    fabric = await startTestFabric({ worker: false });
    const org = fabric.organizationId;
    const teamId = await insertTeam(fabric, org, { slugPrefix: "matrix", name: "Matrix" });
    const other = await fabric.otherOrg();

    const keyFor = async (principalId: string, opts: { scopes?: string[]; revoked?: boolean; expired?: boolean; organizationId?: string } = {}) =>
      (
        await insertKey(fabric, opts.organizationId ?? org, principalId, {
          name: "matrix",
          scopes: opts.scopes ?? [],
          revoked: opts.revoked ?? false,
          ...(opts.expired ? { expiresAt: new Date(Date.now() - 1000) } : {}),
        })
      ).key;
    const principal = async (role: string | null, teamRole?: string) => {
      const { principalId } = await insertUser(fabric);
      if (role) await insertMembership(fabric, org, principalId, role);
      if (teamRole) await insertMembership(fabric, org, principalId, teamRole, teamId);
      return principalId;
    };

    callers.push({ name: "owner", key: fabric.apiKey, expect: byGrants(grantsOf("owner")) });
    for (const role of ["admin", "member", "viewer"] as const) {
      callers.push({ name: role, key: await keyFor(await principal(role)), expect: byGrants(grantsOf(role)) });
    }
    callers.push({ name: "team maintainer only", key: await keyFor(await principal(null, "maintainer")), expect: byGrants(teamGrants) });
    callers.push({ name: "owner of another organization", key: other.apiKey, expect: outsider });
    callers.push({ name: "revoked key", key: await keyFor(fabric.principalId, { revoked: true }), expect: () => "unauthenticated" });
    callers.push({ name: "expired key", key: await keyFor(fabric.principalId, { expired: true }), expect: () => "unauthenticated" });
    callers.push({ name: "key scoped to runs:read", key: await keyFor(fabric.principalId, { scopes: ["runs:read"] }), expect: byGrants(grantsOf("owner"), ["runs:read"]) });
  });
  afterAll(() => fabric?.close());

  const serviceOf = (rpc: string): [DescService, DescMethod] => {
    const [svc, m] = rpc.split("/");
    const service = services.find((s) => s.typeName === svc)!;
    return [service, service.methods.find((x) => x.name === m)!];
  };

  /** Field values for a request: the organization where one is named, random ids elsewhere. */
  const requestFields = (rpc: string, rule: OperationRule): Record<string, string> => {
    const fields: Record<string, string> = { organization_id: fabric.organizationId, id: randomUUID() };
    if ("org" in rule && typeof rule.org === "object" && rule.org.field === "id") fields["id"] = fabric.organizationId;
    if (rpc.endsWith("/UpdateOrganization")) return fields; // no name: changes nothing
    return fields;
  };

  async function viaRest(rpc: string, rule: OperationRule, key: string): Promise<Verdict> {
    const op = restOperations.find((o) => o.rpc === rpc)!;
    const fields = requestFields(rpc, rule);
    const inPath = new Set<string>();
    const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => (inPath.add(name), fields[name]!));
    // GET operations take the remaining request fields as query parameters.
    const [, method] = serviceOf(rpc);
    const query = op.body ? [] : method.input.fields.filter((f) => !inPath.has(f.name) && fields[f.name] !== undefined).map((f) => `${f.name}=${fields[f.name]}`);
    const res = await fetch(fabric.restUrl + path + (query.length ? `?${query.join("&")}` : ""), {
      method: op.method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", accept: op.stream ? "text/event-stream" : "application/json" },
      body: op.body ? "{}" : undefined,
    });
    const type = res.headers.get("content-type") ?? "";
    const body: any = type.includes("json") ? await res.json() : (await res.body?.cancel(), {});
    return verdict(res.status, body.code, body.detail);
  }

  async function viaGrpc(rpc: string, rule: OperationRule, key: string): Promise<Verdict> {
    const [service, method] = serviceOf(rpc);
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${key}`);
      return next(req);
    };
    const client: any = createClient(service, createGrpcTransport({ baseUrl: fabric.grpcUrl, interceptors: [auth] }));
    const fields = requestFields(rpc, rule);
    const init: Record<string, unknown> = {};
    for (const f of method.input.fields) if (fields[f.name] !== undefined && f.fieldKind === "scalar") init[f.localName] = fields[f.name];
    const req = create(method.input, init);
    try {
      if (method.methodKind === "server_streaming") {
        // A live stream that passed the guard just waits for events: no error soon = allowed.
        try {
          for await (const _ of client[method.localName](req, { signal: AbortSignal.timeout(400) })) break;
        } catch (err) {
          if (ConnectError.from(err).code === Code.Canceled || ConnectError.from(err).code === Code.DeadlineExceeded) return "allowed";
          throw err;
        }
      } else {
        await client[method.localName](req);
      }
      return "allowed";
    } catch (err) {
      const e = ConnectError.from(err);
      const status = e.code === Code.Unauthenticated ? 401 : e.code === Code.PermissionDenied ? 403 : e.code === Code.NotFound ? 404 : 0;
      return verdict(status, e.metadata.get("fabric-error-code") ?? undefined, e.rawMessage);
    }
  }

  function verdict(status: number, code: string | undefined, detail: string | undefined): Verdict {
    if (status === 401) return "unauthenticated";
    if (status === 403 && code === "permission_denied") return "denied";
    if (status === 404 && /^organization "/.test(detail ?? "")) return "hidden";
    return "allowed";
  }

  for (const transport of ["rest", "grpc"] as const) {
    it(`every guarded operation answers as the role tables say (${transport})`, async () => {
      const mismatches: string[] = [];
      let checked = 0;
      for (const [rpc, rule] of guarded) {
        if (transport === "rest" && !restOperations.some((o) => o.rpc === rpc)) continue;
        for (const caller of callers) {
          const want = caller.expect(rule);
          const got = transport === "rest" ? await viaRest(rpc, rule, caller.key) : await viaGrpc(rpc, rule, caller.key);
          checked++;
          if (got !== want) mismatches.push(`${rpc} as ${caller.name}: expected ${want}, got ${got}`);
        }
      }
      expect(mismatches).toEqual([]);
      expect(checked).toBeGreaterThan(guarded.length * 8);
    }, 120_000);
  }
});
