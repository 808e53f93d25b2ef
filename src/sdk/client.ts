/**
 * `FabricClient`: the TypeScript client of Fabric's control plane (REST + SSE, and
 * optionally the typed gRPC clients).
 *
 * ```ts
 * const fabric = new FabricClient({ baseUrl: "http://127.0.0.1:3001", apiKey: process.env.FABRIC_API_KEY });
 * const wf = await fabric.workflows.upsert(spec);
 * const run = await fabric.runs.start({ workflow_id: wf.id, input: { topic: "hello world" } });
 * const done = await fabric.runs.wait(run.id, { timeoutMs: 60_000 });
 * for await (const ev of fabric.runs.watch(run.id)) console.log(ev.id, ev.kind);
 *
 * // As a user: log in, then act in an organization with the access token.
 * const anon = new FabricClient({ baseUrl });
 * const { tokens } = await anon.auth.login({ email, password });
 * const me = anon.withAuth({ token: tokens.access_token, organizationId });
 * const team = await me.teams.create(organizationId, { slug: "platform", name: "Platform" });
 * for await (const ev of me.events.stream({ kinds: "workflow.run.*", signal })) console.log(ev.kind);
 *
 * // Webhooks: the signing secret is shown once.
 * const { webhook, secret } = await me.webhooks.create(organizationId, { url: "https://example.com/hook", event_filter: "workflow.run.*" });
 *
 * // Provider calls (routed, policy-checked, billed), streamed or not, and jobs.
 * const { text, cost } = await fabric.providers.execute({ prompt: "Say hi", max_tokens: 64 });
 * for await (const c of fabric.providers.stream({ prompt: "Say hi" })) if (c.type === "delta") process.stdout.write(c.text);
 * const job = await fabric.jobs.create({ modality: "text", input: { prompt: "Say hi" } });
 * const finished = await fabric.jobs.wait(job.id, { timeoutMs: 60_000 }); // finished.result?.text
 * ```
 *
 * ## snake_case, on purpose
 * Requests, responses and events are the REST wire shapes, typed by the generated
 * OpenAPI types, unchanged: `run.workflow_id`, `{ page_size, page_token }`,
 * `event.node_key`. Reasons:
 * - Most of a run is user data (`input`, `context`, `metadata`, `state`, node `output`,
 *   event `payload`) whose keys must never be rewritten; a camelCase layer would have to
 *   know, field by field, where schema ends and user data starts — and get it wrong
 *   the day the schema grows.
 * - Validation `issues[].path` are JSON pointers into the wire body
 *   (`/nodes/1/depends_on/0`); they only point somewhere in a snake_case object.
 * - What you read here is what `curl`, the OpenAPI document, the docs, the CLI and
 *   webhook bodies show; no second vocabulary, no conversion cost on large contexts.
 * Options that are the SDK's own and never go over the wire as such (`signal`,
 * `timeoutMs`, `afterId`, `retry`) follow JS conventions (camelCase). The gRPC
 * clients (`client.grpc`) speak protobuf-es messages (camelCase), as gRPC does.
 *
 * ## Errors, retries, time limits
 * Every failure is a `FabricError` (see ./core/fabric-error.ts) carrying the problem's
 * `code`, `status`, `requestId`, `issues` and `detail`; aborting through a signal
 * rethrows the signal's reason. Reads, `PUT`s and `DELETE`s that failed on the network,
 * with 429 or with a 5xx are retried (`maxRetries`, honouring `Retry-After`); `POST`s
 * never are. A call gives up after `timeoutMs`; event streams reconnect instead
 * (`retry`). See ./core/rest-transport.ts.
 *
 * ## Layout
 * `FabricClient` only composes: the REST core is in ./core (transport, errors, paging,
 * SSE reading and resumption), each resource group in ./resources, the gRPC clients in
 * ./grpc.ts.
 */
import { defaultRetry, type RetryOptions } from "./core/follow-events.js";
import { RestTransport, type FetchLike, type OpenInit, type RequestOptions } from "./core/rest-transport.js";
import { connectGrpc, type FabricGrpc, type GrpcConnection } from "./grpc.js";
import { ApiKeysResource } from "./resources/api-keys.js";
import { AuditResource } from "./resources/audit.js";
import { AuthzResource } from "./resources/authz.js";
import { EventsResource } from "./resources/events.js";
import { AuthResource, MeResource } from "./resources/identity.js";
import { JobsResource } from "./resources/jobs.js";
import { ProvidersResource } from "./resources/providers.js";
import { RunsResource } from "./resources/runs.js";
import { InvitationsResource, MembersResource, OrganizationsResource, TeamsResource } from "./resources/tenancy.js";
import { PoliciesResource, UsageResource } from "./resources/usage.js";
import { WebhooksResource } from "./resources/webhooks.js";
import { SchedulesResource } from "./resources/schedules.js";
import { RetentionResource } from "./resources/retention.js";
import { WorkflowsResource } from "./resources/workflows.js";
import type { paths } from "../../gen/openapi/schema.js";
import type { HttpMethod, JsonBody, Operation, PathParams, QueryParams, SuccessJson } from "./types.js";

export interface FabricClientOptions {
  /** The REST base URL, e.g. `http://127.0.0.1:3001`. */
  baseUrl: string;
  /** An API key (`fab_…`), sent as `Authorization: Bearer …`. */
  apiKey?: string;
  /** A bearer token (e.g. a JWT), sent as `Authorization: Bearer …`. Give `apiKey` or `token`, not both. */
  token?: string;
  /**
   * The organization a JWT caller acts in, sent as `X-Organization-Id` (needed when the
   * user belongs to several organizations; an API key acts in its own).
   */
  organizationId?: string;
  /** Custom fetch (proxies, tests, instrumentation). */
  fetch?: FetchLike;
  /** The gRPC base URL, e.g. `http://127.0.0.1:3002`; enables `client.grpc`. */
  grpcBaseUrl?: string;
  /** Extra headers on every request of both transports. */
  headers?: Record<string, string>;
  /**
   * How often a failed REST call that is safe to repeat (GET, PUT, DELETE) is tried
   * again: after a network error, 429 or 5xx, waiting the server's `Retry-After` (up to
   * 30 s; a longer one is thrown at once) or an exponential backoff. POSTs are never
   * retried. Default 2; 0 turns retries off. Per call: `RequestOptions.maxRetries`.
   */
  maxRetries?: number;
  /**
   * Time limit of one REST call, its retries and waits included, in milliseconds; then
   * it fails with a FabricError `timeout`. Default 300000 (five minutes: a provider call
   * may generate for that long); 0: no limit. Event streams are not bounded by it (they
   * watch for silence instead: `retry.idleTimeoutMs`). Per call: `RequestOptions.timeoutMs`.
   */
  timeoutMs?: number;
  /** Reconnection policy of event streams (`runs.watch`, `runs.wait`, `jobs.watch`, …); `idleTimeoutMs` also bounds `providers.stream`. */
  retry?: RetryOptions;
}

export class FabricClient {
  readonly baseUrl: string;
  readonly workflows: WorkflowsResource;
  readonly runs: RunsResource;
  readonly auth: AuthResource;
  readonly me: MeResource;
  readonly organizations: OrganizationsResource;
  readonly teams: TeamsResource;
  readonly members: MembersResource;
  readonly invitations: InvitationsResource;
  readonly apiKeys: ApiKeysResource;
  readonly authz: AuthzResource;
  readonly audit: AuditResource;
  readonly events: EventsResource;
  readonly webhooks: WebhooksResource;
  readonly providers: ProvidersResource;
  readonly jobs: JobsResource;
  readonly usage: UsageResource;
  readonly policies: PoliciesResource;
  readonly schedules: SchedulesResource;
  readonly retention: RetentionResource;
  /** The organization sent as `X-Organization-Id`, if any. */
  readonly organizationId: string | undefined;
  /** The reconnection policy of event streams, defaults filled in. */
  readonly retry: Required<RetryOptions>;
  readonly #transport: RestTransport;
  readonly #headers: Record<string, string>;
  readonly #grpcBaseUrl: string | undefined;
  #grpc: GrpcConnection | undefined;
  readonly #options: FabricClientOptions;

  constructor(opts: FabricClientOptions) {
    if (!opts?.baseUrl) throw new TypeError("FabricClient: baseUrl is required");
    if (opts.apiKey && opts.token) throw new TypeError("FabricClient: give apiKey or token, not both");
    for (const name of ["maxRetries", "timeoutMs"] as const) {
      const v = opts[name];
      if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new TypeError(`FabricClient: ${name} must be a whole number ≥ 0`);
    }
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    const fetchImpl = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!fetchImpl) throw new TypeError("FabricClient: no fetch available; pass options.fetch");
    const secret = opts.apiKey ?? opts.token;
    this.#options = { ...opts };
    this.organizationId = opts.organizationId || undefined;
    this.#headers = { ...opts.headers, ...(secret ? { authorization: `Bearer ${secret}` } : {}), ...(this.organizationId ? { "x-organization-id": this.organizationId } : {}) };
    this.#grpcBaseUrl = opts.grpcBaseUrl?.replace(/\/+$/, "");
    this.retry = { ...defaultRetry, ...opts.retry };
    const transport = new RestTransport({ baseUrl: this.baseUrl, fetch: fetchImpl, headers: this.#headers, maxRetries: opts.maxRetries ?? 2, timeoutMs: opts.timeoutMs ?? 300_000 });
    this.#transport = transport;
    this.workflows = new WorkflowsResource(transport);
    this.runs = new RunsResource(transport, this.retry);
    this.auth = new AuthResource(transport);
    this.me = new MeResource(transport);
    this.organizations = new OrganizationsResource(transport);
    this.teams = new TeamsResource(transport);
    this.members = new MembersResource(transport);
    this.invitations = new InvitationsResource(transport);
    this.apiKeys = new ApiKeysResource(transport);
    this.authz = new AuthzResource(transport);
    this.audit = new AuditResource(transport);
    this.events = new EventsResource(transport, this.retry);
    this.webhooks = new WebhooksResource(transport);
    this.providers = new ProvidersResource(transport, this.retry);
    this.jobs = new JobsResource(transport, this.retry);
    this.usage = new UsageResource(transport);
    this.policies = new PoliciesResource(transport);
    this.schedules = new SchedulesResource(transport);
    this.retention = new RetentionResource(transport);
  }

  /**
   * A new client like this one (same base URLs, fetch, headers, retry policies, time
   * limit) that authenticates differently: e.g. with the access token of `auth.login`
   * and the organization to act in. Auth fields not given are dropped, not inherited.
   *
   * ```ts
   * const { tokens } = await anon.auth.login({ email, password });
   * const me = anon.withAuth({ token: tokens.access_token, organizationId });
   * ```
   */
  withAuth(auth: { apiKey?: string; token?: string; organizationId?: string }): FabricClient {
    const { apiKey: _a, token: _t, organizationId: _o, ...rest } = this.#options;
    return new FabricClient({ ...rest, ...auth });
  }

  /**
   * A typed Connect client per gRPC service of the contract (`client.grpc.runs`,
   * `.tenancy`, `.webhooks`, …: see `grpcServices`), over gRPC (HTTP/2) with this
   * client's auth; created on first use. Throws when `grpcBaseUrl` was not given.
   */
  get grpc(): FabricGrpc {
    if (!this.#grpcBaseUrl) throw new TypeError("FabricClient: pass grpcBaseUrl to use client.grpc");
    this.#grpc ??= connectGrpc({ baseUrl: this.#grpcBaseUrl, headers: this.#headers });
    return this.#grpc.clients;
  }

  /** Releases the gRPC connection, if one was opened. REST needs no closing. */
  close(): void {
    this.#grpc?.close();
    this.#grpc = undefined;
  }

  /**
   * One REST call, typed by the OpenAPI `paths`: path and query parameters and the JSON
   * body as the operation declares them; resolves with the 2xx JSON body. For what the
   * resources do not cover; same retries, time limit and errors as theirs.
   */
  call<P extends keyof paths, M extends HttpMethod>(
    method: M,
    path: P,
    init: { path?: PathParams<Operation<P, M>>; query?: QueryParams<Operation<P, M>>; body?: JsonBody<Operation<P, M>>; options?: RequestOptions | undefined } = {},
  ): Promise<SuccessJson<Operation<P, M>>> {
    return this.#transport.call(method, path, init);
  }

  /** @internal Sends one request (no retry, no time limit); resolves with a 2xx response, throws FabricError otherwise. */
  send(method: HttpMethod, pathTemplate: string, init: OpenInit): Promise<Response> {
    return this.#transport.open(method, pathTemplate, init);
  }
}
