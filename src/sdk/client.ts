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
 * ## Errors
 * Every failure is a `FabricError` (see ./errors.ts) carrying the problem's `code`,
 * `status`, `requestId`, `issues` and `detail`; aborting through a signal rethrows the
 * signal's reason.
 */
import type { components, paths } from "../../gen/openapi/schema.js";
import { FabricError } from "./errors.js";
import { createGrpcClients, type FabricGrpc, type GrpcClients } from "./grpc.js";
import { readSse } from "./sse.js";
import type {
  AddMemberRequest,
  ApiKey,
  AuditEntry,
  Budget,
  CheckRequest,
  CheckResponse,
  CreateApiKeyRequest,
  CreateApiKeyResponse,
  CreateInvitationRequest,
  CreateInvitationResponse,
  CreateJobRequest,
  CreateOrganizationRequest,
  CreateServiceAccountRequest,
  CreateTeamRequest,
  EstimateCostResponse,
  ExecuteResponse,
  FabricEvent,
  GetMeResponse,
  Invitation,
  Job,
  JobUsage,
  ListAuditParams,
  ListJobsParams,
  ListMembersParams,
  ListProvidersResponse,
  ListUsageRecordsParams,
  LoginRequest,
  LoginResponse,
  MeScopeParams,
  Membership,
  MyOrganization,
  MyPermissions,
  MyTeam,
  Organization,
  Policy,
  PolicyScopeParams,
  ProviderCall,
  ProviderStreamChunk,
  QueryUsageParams,
  QueryUsageResponse,
  RotateApiKeyResponse,
  SetBudgetRequest,
  SetPolicyRequest,
  SignUpRequest,
  SignUpResponse,
  Team,
  Tokens,
  UpdateMemberRequest,
  UpdateOrganizationRequest,
  UpdateTeamRequest,
  UsageRecord,
  HttpMethod,
  JsonBody,
  ListRunsParams,
  ListWorkflowsParams,
  Operation,
  Page,
  PathParams,
  QueryParams,
  Run,
  RunEvent,
  SignalRunRequest,
  StartRunRequest,
  SuccessJson,
  ValidateWorkflowResult,
  WorkflowDefinition,
  WorkflowSpec,
} from "./types.js";

export const sdkVersion = "0.1.0";

/** What the client calls to send requests; `globalThis.fetch` by default. */
export type FetchLike = (input: string | URL, init: RequestInit) => Promise<Response>;

export interface RetryOptions {
  /** Reconnection attempts in a row without receiving an event, before giving up. Default 5. */
  maxAttempts?: number;
  /** First delay; doubles per further attempt (with ±20 % jitter). Default 250 ms. */
  initialDelayMs?: number;
  /** Upper bound of one delay. Default 5000 ms. */
  maxDelayMs?: number;
  /**
   * Reconnect when a stream has carried nothing — not even the server's `: ping`
   * heartbeat (every 15 s) — for this long: a half-open connection otherwise hangs
   * forever. Default 45000 ms.
   */
  idleTimeoutMs?: number;
}

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
  /** Reconnection policy of event streams (`runs.watch`, `runs.wait`, `jobs.watch`, …); `idleTimeoutMs` also bounds `providers.stream`. */
  retry?: RetryOptions;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Extra headers for this call (e.g. `x-request-id`). */
  headers?: Record<string, string>;
}

/** Options of `runs.watch` and `jobs.watch`. */
export interface WatchOptions {
  /** Start after this event id (exclusive) instead of from the run's (job's) first event. */
  afterId?: string | number | bigint;
  signal?: AbortSignal;
  /** Overrides the client's reconnection policy. */
  retry?: RetryOptions;
}

/** Options of `runs.wait` and `jobs.wait`. */
export interface WaitOptions {
  /** Give up after this long with a FabricError `timeout` (the run or job keeps going). Default: no limit. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const terminalEventKinds: ReadonlySet<string> = new Set(["workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"]);
export const terminalRunStatuses: ReadonlySet<Run["status"]> = new Set(["completed", "failed", "cancelled"]);

interface CallInit {
  path?: Record<string, string>;
  query?: Record<string, string | number | boolean | undefined> | undefined;
  body?: unknown;
  options?: RequestOptions | undefined;
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
  readonly providers: ProvidersResource;
  readonly jobs: JobsResource;
  readonly usage: UsageResource;
  readonly policies: PoliciesResource;
  /** The organization sent as `X-Organization-Id`, if any. */
  readonly organizationId: string | undefined;
  /** @internal */
  readonly retry: Required<RetryOptions>;
  readonly #fetch: FetchLike;
  readonly #headers: Record<string, string>;
  readonly #grpcBaseUrl: string | undefined;
  #grpc: GrpcClients | undefined;
  readonly #options: FabricClientOptions;

  constructor(opts: FabricClientOptions) {
    if (!opts?.baseUrl) throw new TypeError("FabricClient: baseUrl is required");
    if (opts.apiKey && opts.token) throw new TypeError("FabricClient: give apiKey or token, not both");
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    const fetchImpl = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!fetchImpl) throw new TypeError("FabricClient: no fetch available; pass options.fetch");
    this.#fetch = fetchImpl;
    const secret = opts.apiKey ?? opts.token;
    this.#options = { ...opts };
    this.organizationId = opts.organizationId || undefined;
    this.#headers = { ...opts.headers, ...(secret ? { authorization: `Bearer ${secret}` } : {}), ...(this.organizationId ? { "x-organization-id": this.organizationId } : {}) };
    this.#grpcBaseUrl = opts.grpcBaseUrl?.replace(/\/+$/, "");
    this.retry = { maxAttempts: 5, initialDelayMs: 250, maxDelayMs: 5000, idleTimeoutMs: 45_000, ...opts.retry };
    this.workflows = new WorkflowsResource(this);
    this.runs = new RunsResource(this);
    this.auth = new AuthResource(this);
    this.me = new MeResource(this);
    this.organizations = new OrganizationsResource(this);
    this.teams = new TeamsResource(this);
    this.members = new MembersResource(this);
    this.invitations = new InvitationsResource(this);
    this.apiKeys = new ApiKeysResource(this);
    this.authz = new AuthzResource(this);
    this.audit = new AuditResource(this);
    this.events = new EventsResource(this);
    this.providers = new ProvidersResource(this);
    this.jobs = new JobsResource(this);
    this.usage = new UsageResource(this);
    this.policies = new PoliciesResource(this);
  }

  /**
   * A new client like this one (same base URLs, fetch, headers, retry policy) that
   * authenticates differently: e.g. with the access token of `auth.login` and the
   * organization to act in. Auth fields not given are dropped, not inherited.
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
   * Typed Connect clients of `WorkflowService` and `RunService` over gRPC (HTTP/2),
   * with this client's auth; created on first use. Throws when `grpcBaseUrl` was not given.
   */
  get grpc(): FabricGrpc {
    if (!this.#grpcBaseUrl) throw new TypeError("FabricClient: pass grpcBaseUrl to use client.grpc");
    this.#grpc ??= createGrpcClients({ baseUrl: this.#grpcBaseUrl, headers: this.#headers });
    return this.#grpc;
  }

  /** Releases the gRPC connection, if one was opened. REST needs no closing. */
  close(): void {
    this.#grpc?.close();
    this.#grpc = undefined;
  }

  /**
   * One REST call, typed by the OpenAPI `paths`: path and query parameters and the JSON
   * body as the operation declares them; resolves with the 2xx JSON body.
   */
  async call<P extends keyof paths, M extends HttpMethod>(
    method: M,
    path: P,
    init: { path?: PathParams<Operation<P, M>>; query?: QueryParams<Operation<P, M>>; body?: JsonBody<Operation<P, M>>; options?: RequestOptions | undefined } = {},
  ): Promise<SuccessJson<Operation<P, M>>> {
    const res = await this.send(method, path, init as CallInit);
    const text = await readBody(res, init.options?.signal, `${method.toUpperCase()} ${path}`);
    try {
      return JSON.parse(text) as SuccessJson<Operation<P, M>>;
    } catch {
      throw new FabricError({ status: res.status, code: "invalid_response", detail: `${method.toUpperCase()} ${path}: the response is not JSON`, requestId: res.headers.get("x-request-id") ?? undefined });
    }
  }

  /** @internal Sends a request; resolves with a 2xx response, throws FabricError otherwise. */
  async send(method: HttpMethod, pathTemplate: string, init: CallInit & { accept?: string; extraHeaders?: Record<string, string> }): Promise<Response> {
    const path = pathTemplate.replace(/\{(\w+)\}/g, (_, name: string) => {
      const v = init.path?.[name];
      if (v === undefined || v === "") throw new TypeError(`FabricClient: missing path parameter ${name}`);
      return encodeURIComponent(v);
    });
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      "user-agent": `fabric-sdk-ts/${sdkVersion}`,
      accept: init.accept ?? "application/json",
      ...this.#headers,
      ...init.extraHeaders,
      ...init.options?.headers,
    };
    let body: string | undefined;
    if (init.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.body);
    }
    const signal = init.options?.signal;
    const what = `${method.toUpperCase()} ${path}`;
    let res: Response;
    try {
      res = await this.#fetch(url, { method: method.toUpperCase(), headers, body, signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw FabricError.network(err, what);
    }
    if (!res.ok) throw await FabricError.fromResponse(res);
    return res;
  }
}

async function readBody(res: Response, signal: AbortSignal | undefined, what: string): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw FabricError.network(err, what);
  }
}

function unwrap<T>(body: { data: T }, what: string): T {
  if (!body || typeof body !== "object" || !("data" in body)) throw new FabricError({ status: 0, code: "invalid_response", detail: `${what}: no "data" in the response` });
  return body.data;
}

/** Walks every page of a list, starting from `params.page_token` if given. */
async function* allPages<T>(list: (token: string | undefined) => Promise<Page<T>>, first: string | undefined): AsyncGenerator<T, void, undefined> {
  let token = first;
  for (;;) {
    const page = await list(token);
    yield* page.data;
    if (!page.next_page_token) return;
    token = page.next_page_token;
  }
}

export class WorkflowsResource {
  constructor(private readonly client: FabricClient) {}

  /** Registers a definition by name: a new version when the spec changed, else the latest one. */
  async upsert(spec: WorkflowSpec, options?: RequestOptions): Promise<WorkflowDefinition> {
    return unwrap(await this.client.call("post", "/v1/workflows", { body: spec, options }), "upsertWorkflow");
  }

  /** One definition version by id. */
  async get(id: string, options?: RequestOptions): Promise<WorkflowDefinition> {
    return unwrap(await this.client.call("get", "/v1/workflows/{id}", { path: { id }, options }), "getWorkflow");
  }

  /** One page of definitions, newest first. */
  async list(params: ListWorkflowsParams = {}, options?: RequestOptions): Promise<Page<WorkflowDefinition>> {
    return this.client.call("get", "/v1/workflows", { query: params, options });
  }

  /** Every definition (matching `params.name`), page by page. */
  listAll(params: Omit<ListWorkflowsParams, "page_token"> & { page_token?: string } = {}, options?: RequestOptions): AsyncGenerator<WorkflowDefinition, void, undefined> {
    return allPages((page_token) => this.list({ ...params, page_token }, options), params.page_token);
  }

  /** Validates a spec without storing it: `{ valid, issues }` (an invalid spec is not an error here). */
  async validate(spec: WorkflowSpec, options?: RequestOptions): Promise<ValidateWorkflowResult> {
    return unwrap(await this.client.call("post", "/v1/workflows/validate", { body: spec, options }), "validateWorkflow");
  }
}

export class RunsResource {
  constructor(private readonly client: FabricClient) {}

  /** Starts a run (queued at once). With an `idempotency_key` already used, the original run. */
  async start(request: StartRunRequest, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.client.call("post", "/v1/workflow-runs", { body: request, options }), "startRun");
  }

  /** A run with its context and nodes. */
  async get(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.client.call("get", "/v1/workflow-runs/{id}", { path: { id }, options }), "getRun");
  }

  /** One page of runs, newest first (nodes are not filled in lists). */
  async list(params: ListRunsParams = {}, options?: RequestOptions): Promise<Page<Run>> {
    return this.client.call("get", "/v1/workflow-runs", { query: params, options });
  }

  /** Every run matching `params`, page by page. */
  listAll(params: ListRunsParams = {}, options?: RequestOptions): AsyncGenerator<Run, void, undefined> {
    return allPages((page_token) => this.list({ ...params, page_token }, options), params.page_token);
  }

  /** Cancels a run, aborting in-flight steps. */
  async cancel(id: string, reason?: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.client.call("post", "/v1/workflow-runs/{id}/cancel", { path: { id }, body: reason === undefined ? {} : { reason }, options }), "cancelRun");
  }

  /** Pauses a run: in-flight steps finish, no new ones start. */
  async pause(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.client.call("post", "/v1/workflow-runs/{id}/pause", { path: { id }, body: {}, options }), "pauseRun");
  }

  /** Resumes a paused run. */
  async resume(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.client.call("post", "/v1/workflow-runs/{id}/resume", { path: { id }, body: {}, options }), "resumeRun");
  }

  /** Signals a run waiting in a `workflow.wait_signal` node; `payload` becomes that node's output. */
  async signal(id: string, request: SignalRunRequest = {}, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.client.call("post", "/v1/workflow-runs/{id}/signal", { path: { id }, body: request, options }), "signalRun");
  }

  /** Re-executes a failed run from the nodes that did not succeed; resolves with the new run. */
  async rerun(id: string, options?: RequestOptions): Promise<Run> {
    return unwrap(await this.client.call("post", "/v1/workflow-runs/{id}/rerun", { path: { id }, body: {}, options }), "rerunRun");
  }

  /**
   * The run's events, in id order: the history (after `afterId`), then live ones; the
   * iterator ends after the terminal event (`workflow.run.completed|failed|cancelled`).
   *
   * A dropped connection, a 5xx / 429, or a server-side stream error is retried with
   * `Last-Event-ID` (bounded, exponential backoff with jitter; the attempt count resets
   * whenever an event arrives), so the consumer sees no gap and no duplicate. A 4xx
   * (`not_found`, `unauthenticated`, …) is thrown at once. Breaking out of the loop, or
   * aborting `signal`, closes the connection.
   */
  async *watch(id: string, opts: WatchOptions = {}): AsyncGenerator<RunEvent, void, undefined> {
    yield* watchUntilTerminal(this.client, { noun: "run", id, path: "/v1/workflow-runs/{id}/events", get: (signal) => this.get(id, { signal }) }, opts);
  }

  /**
   * Resolves with the run once it is terminal (completed, failed or cancelled — a
   * failed run resolves, it does not throw). Follows the event stream, no polling.
   * After `timeoutMs`, rejects with a FabricError `timeout` (the run is unaffected).
   */
  async wait(id: string, opts: WaitOptions = {}): Promise<Run> {
    return waitUntilTerminal({ noun: "run", id, watch: (signal) => this.watch(id, { signal }), get: (signal) => this.get(id, { signal }) }, opts);
  }
}

/** What runs and jobs share: a status that says whether it is over. A job is a run of a built-in one-node workflow. */
interface RunLike {
  status: Run["status"];
}

/**
 * The event stream of a run (or of a job, i.e. its run): `followEvents` ending after the
 * terminal event, with the run's status telling a clean end past the last event apart
 * from an early close. Shared by `runs.watch` and `jobs.watch`.
 */
function watchUntilTerminal(
  client: FabricClient,
  target: { noun: string; id: string; path: string; get: (signal: AbortSignal | undefined) => Promise<RunLike> },
  opts: WatchOptions,
): AsyncGenerator<RunEvent, void, undefined> {
  const { noun, id } = target;
  return followEvents(client, {
    what: `event stream of ${noun} ${id}`,
    path: target.path,
    pathParams: { id },
    afterId: opts.afterId,
    signal: opts.signal,
    retry: { ...client.retry, ...opts.retry },
    isLast: (ev) => terminalEventKinds.has(ev.kind),
    // An empty, clean end: if the run is over, either its terminal event is at or
    // before lastId (resumed past the end: done) or the server closed before
    // delivering it — one more connection tells them apart.
    emptyEndMayBeFinal: async (signal) => terminalRunStatuses.has((await target.get(signal)).status),
    endedEarly: `the event stream of ${noun} ${id} kept ending before the ${noun} did`,
  });
}

/**
 * Follows `watch` to the terminal event, then resolves with `get` (which must be
 * terminal by then). `timeoutMs` rejects with a FabricError `timeout`; `signal` rethrows
 * its reason. Shared by `runs.wait` and `jobs.wait`.
 */
async function waitUntilTerminal<T extends RunLike>(
  target: { noun: string; id: string; watch: (signal: AbortSignal) => AsyncIterable<RunEvent>; get: (signal: AbortSignal) => Promise<T> },
  opts: WaitOptions,
): Promise<T> {
  const { noun, id } = target;
  const timeout = new AbortController();
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => timeout.abort(), opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
  try {
    for await (const ev of target.watch(signal)) {
      if (terminalEventKinds.has(ev.kind)) break;
    }
    const done = await target.get(signal);
    if (!terminalRunStatuses.has(done.status)) throw new FabricError({ status: 0, code: "invalid_response", detail: `the event stream of ${noun} ${id} ended but the ${noun} is ${done.status}` });
    return done;
  } catch (err) {
    if (timeout.signal.aborted && !opts.signal?.aborted) throw new FabricError({ status: 0, code: "timeout", detail: `${noun} ${id} did not finish within ${opts.timeoutMs} ms` });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

interface FollowInit {
  what: string;
  path: string;
  pathParams?: Record<string, string>;
  query?: Record<string, string | undefined>;
  afterId: string | number | bigint | undefined;
  signal: AbortSignal | undefined;
  retry: Required<RetryOptions>;
  /** The stream is over once this event was yielded. */
  isLast?: (ev: RunEvent) => boolean;
  /** After a clean end that carried nothing: may the stream be over? (confirmed by one more empty connection) */
  emptyEndMayBeFinal?: (signal: AbortSignal | undefined) => Promise<boolean>;
  endedEarly: string;
}

/**
 * Follows an SSE event stream of Fabric: reconnects with `Last-Event-ID` after dropped
 * connections, 5xx / 429 and server-side stream errors (bounded exponential backoff with
 * jitter; the attempt count resets whenever an event arrives), never yields an event
 * twice, and throws 4xx problems at once. Shared by `runs.watch`, `jobs.watch` and `events.stream`.
 */
async function* followEvents(client: FabricClient, init: FollowInit): AsyncGenerator<RunEvent, void, undefined> {
  const { retry, signal, what } = init;
  let lastId = init.afterId === undefined ? undefined : String(init.afterId);
  if (lastId !== undefined && !/^\d+$/.test(lastId)) throw new TypeError(`${what}: afterId must be an event id`);
  let failures = 0;
  let confirmingEnd = false;
  for (;;) {
    signal?.throwIfAborted();
    const connection = new AbortController();
    const onAbort = () => connection.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let received = 0;
    let lastError: unknown;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new FabricError({ status: 0, code: "network_error", detail: `${what}: no data for ${retry.idleTimeoutMs} ms` })), retry.idleTimeoutMs);
    };
    try {
      alive();
      const res = await client.send("get", init.path, {
        path: init.pathParams,
        query: init.query,
        accept: "text/event-stream",
        extraHeaders: { "cache-control": "no-cache", ...(lastId !== undefined ? { "last-event-id": lastId } : {}) },
        options: { signal: connection.signal },
      });
      if (!res.body) throw new FabricError({ status: res.status, code: "invalid_response", detail: "the event stream has no body" });
      for await (const msg of readSse(res.body, alive)) {
        if (msg.event === "error") throw streamProblem(msg.data, res);
        if (!msg.data) continue;
        const ev = parseEvent(msg.data, res);
        const evId = BigInt(ev.id);
        // Never hand out an event twice, whatever the server replays.
        if (lastId !== undefined && evId <= BigInt(lastId)) continue;
        lastId = String(evId);
        received++;
        failures = 0;
        confirmingEnd = false;
        if (init.isLast?.(ev)) {
          yield ev;
          return;
        }
        // A slow consumer is not an idle connection: no watchdog while the event is out.
        clearTimeout(idle);
        yield ev;
        alive();
      }
      // The server ended the stream without a last event (shutdown, restart, or we
      // resumed after the last event): find out which below.
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const reason: unknown = connection.signal.aborted ? connection.signal.reason : err; // the idle watchdog's error
      const e = reason instanceof FabricError ? reason : FabricError.network(err, what);
      if (!e.retryable) throw e;
      lastError = e;
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener("abort", onAbort);
      connection.abort();
    }
    if (lastError === undefined && received === 0 && init.emptyEndMayBeFinal && (await init.emptyEndMayBeFinal(signal))) {
      if (confirmingEnd) return;
      confirmingEnd = true;
      continue;
    }
    if (++failures > retry.maxAttempts) {
      throw lastError ?? new FabricError({ status: 0, code: "network_error", detail: init.endedEarly });
    }
    await sleep(backoff(failures, retry), signal);
  }
}

function parseEvent(data: string, res: Response): RunEvent {
  let ev: unknown;
  try {
    ev = JSON.parse(data);
  } catch {
    ev = undefined;
  }
  const e = ev as RunEvent | undefined;
  if (!e || typeof e !== "object" || typeof e.kind !== "string" || !/^\d+$/.test(String(e.id))) {
    throw new FabricError({ status: 0, code: "invalid_response", detail: `not an event: ${data.slice(0, 200)}`, requestId: res.headers.get("x-request-id") ?? undefined });
  }
  return e;
}

/** An `event: error` message: the server's problem document for a stream that failed after it started. */
function streamProblem(data: string, res: Response): FabricError {
  let p: unknown;
  try {
    p = JSON.parse(data);
  } catch {
    p = undefined;
  }
  return FabricError.fromProblem(p && typeof p === "object" ? p : { detail: data.slice(0, 200) }, { status: 500, requestId: res.headers.get("x-request-id") });
}

function backoff(attempt: number, r: Required<RetryOptions>): number {
  const base = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

// ---- identity, tenancy, keys, authz, audit, events ---------------------------------

export class AuthResource {
  constructor(private readonly client: FabricClient) {}

  /** Creates a user; resolves with the principal and its first tokens. No credentials needed. */
  async signUp(request: SignUpRequest, options?: RequestOptions): Promise<SignUpResponse> {
    return unwrap(await this.client.call("post", "/v1/auth/signup", { body: request, options }), "signUp");
  }

  /** Email and password for tokens (`tokens.access_token` is the JWT to pass as `token`). No credentials needed. */
  async login(request: LoginRequest, options?: RequestOptions): Promise<LoginResponse> {
    return unwrap(await this.client.call("post", "/v1/auth/login", { body: request, options }), "login");
  }

  /** Exchanges a refresh token for new tokens; the old refresh token is spent. */
  async refresh(refreshToken: string, options?: RequestOptions): Promise<Tokens> {
    return unwrap(await this.client.call("post", "/v1/auth/refresh", { body: { refresh_token: refreshToken }, options }), "refreshToken");
  }

  /** Ends the session of this refresh token: its refresh tokens and the access tokens issued in it stop working at once (the caller must be authenticated). */
  async logout(refreshToken: string, options?: RequestOptions): Promise<void> {
    unwrap(await this.client.call("post", "/v1/auth/logout", { body: { refresh_token: refreshToken }, options }), "logout");
  }
}

export class MeResource {
  constructor(private readonly client: FabricClient) {}

  /** Who the caller is: the principal, and the organization / API key it acts through. */
  async get(options?: RequestOptions): Promise<GetMeResponse> {
    return unwrap(await this.client.call("get", "/v1/me", { options }), "getMe");
  }

  /** The caller's organizations, with its role in each. */
  async organizations(options?: RequestOptions): Promise<MyOrganization[]> {
    return unwrap(await this.client.call("get", "/v1/me/organizations", { options }), "listMyOrganizations");
  }

  /** The caller's teams (of `params.organization_id`, or of the organization it acts in). */
  async teams(params: MeScopeParams = {}, options?: RequestOptions): Promise<MyTeam[]> {
    return unwrap(await this.client.call("get", "/v1/me/teams", { query: params, options }), "listMyTeams");
  }

  /** The caller's effective permissions, organization-wide and per team. */
  async permissions(params: MeScopeParams = {}, options?: RequestOptions): Promise<MyPermissions> {
    return unwrap(await this.client.call("get", "/v1/me/permissions", { query: params, options }), "getMyPermissions");
  }
}

export class OrganizationsResource {
  constructor(private readonly client: FabricClient) {}

  /** Creates an organization; the calling user becomes its owner. */
  async create(request: CreateOrganizationRequest, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.client.call("post", "/v1/organizations", { body: request, options }), "createOrganization");
  }

  async get(id: string, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.client.call("get", "/v1/organizations/{id}", { path: { id }, options }), "getOrganization");
  }

  async update(id: string, request: UpdateOrganizationRequest, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.client.call("patch", "/v1/organizations/{id}", { path: { id }, body: request, options }), "updateOrganization");
  }

  async archive(id: string, options?: RequestOptions): Promise<Organization> {
    return unwrap(await this.client.call("post", "/v1/organizations/{id}/archive", { path: { id }, body: {}, options }), "archiveOrganization");
  }
}

export class TeamsResource {
  constructor(private readonly client: FabricClient) {}

  async create(organizationId: string, request: CreateTeamRequest, options?: RequestOptions): Promise<Team> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/teams", { path: { organization_id: organizationId }, body: request, options }), "createTeam");
  }

  async get(organizationId: string, id: string, options?: RequestOptions): Promise<Team> {
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/teams/{id}", { path: { organization_id: organizationId, id }, options }), "getTeam");
  }

  /** The organization's teams the caller may read. */
  async list(organizationId: string, options?: RequestOptions): Promise<Team[]> {
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/teams", { path: { organization_id: organizationId }, options }), "listTeams");
  }

  async update(organizationId: string, id: string, request: UpdateTeamRequest, options?: RequestOptions): Promise<Team> {
    return unwrap(await this.client.call("patch", "/v1/organizations/{organization_id}/teams/{id}", { path: { organization_id: organizationId, id }, body: request, options }), "updateTeam");
  }

  async delete(organizationId: string, id: string, options?: RequestOptions): Promise<void> {
    unwrap(await this.client.call("delete", "/v1/organizations/{organization_id}/teams/{id}", { path: { organization_id: organizationId, id }, options }), "deleteTeam");
  }
}

export class MembersResource {
  constructor(private readonly client: FabricClient) {}

  /** Memberships of the organization (organization-wide and team ones), or of `params.team_id`. */
  async list(organizationId: string, params: ListMembersParams = {}, options?: RequestOptions): Promise<Membership[]> {
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/members", { path: { organization_id: organizationId }, query: params, options }), "listMembers");
  }

  /** Adds a principal to the organization, or to `team_id`, with `role`. */
  async add(organizationId: string, request: AddMemberRequest, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/members", { path: { organization_id: organizationId }, body: request, options }), "addMember");
  }

  /** Changes a membership's role. */
  async update(organizationId: string, id: string, request: UpdateMemberRequest, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.client.call("patch", "/v1/organizations/{organization_id}/members/{id}", { path: { organization_id: organizationId, id }, body: request, options }), "updateMember");
  }

  async remove(organizationId: string, id: string, options?: RequestOptions): Promise<void> {
    unwrap(await this.client.call("delete", "/v1/organizations/{organization_id}/members/{id}", { path: { organization_id: organizationId, id }, options }), "removeMember");
  }

  /** Creates a service account; resolves with its membership (give it a key with `apiKeys.create`). */
  async createServiceAccount(organizationId: string, request: CreateServiceAccountRequest, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/service-accounts", { path: { organization_id: organizationId }, body: request, options }), "createServiceAccount");
  }
}

export class InvitationsResource {
  constructor(private readonly client: FabricClient) {}

  /** Invites an email address; resolves with the invitation and its single-use `token` (shown once). */
  async create(organizationId: string, request: CreateInvitationRequest, options?: RequestOptions): Promise<CreateInvitationResponse> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/invitations", { path: { organization_id: organizationId }, body: request, options }), "createInvitation");
  }

  async list(organizationId: string, options?: RequestOptions): Promise<Invitation[]> {
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/invitations", { path: { organization_id: organizationId }, options }), "listInvitations");
  }

  async revoke(organizationId: string, id: string, options?: RequestOptions): Promise<Invitation> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/invitations/{id}/revoke", { path: { organization_id: organizationId, id }, body: {}, options }), "revokeInvitation");
  }

  /** Accepts an invitation as the calling user; resolves with the new membership. */
  async accept(token: string, options?: RequestOptions): Promise<Membership> {
    return unwrap(await this.client.call("post", "/v1/invitations/accept", { body: { token }, options }), "acceptInvitation");
  }
}

export class ApiKeysResource {
  constructor(private readonly client: FabricClient) {}

  /** Creates a key; resolves with it and its raw value `key` (shown once). */
  async create(organizationId: string, request: CreateApiKeyRequest, options?: RequestOptions): Promise<CreateApiKeyResponse> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/api-keys", { path: { organization_id: organizationId }, body: request, options }), "createApiKey");
  }

  /** The organization's keys (never their secrets). */
  async list(organizationId: string, options?: RequestOptions): Promise<ApiKey[]> {
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/api-keys", { path: { organization_id: organizationId }, options }), "listApiKeys");
  }

  /** A new secret for the key (the old one stops working); resolves with the new raw value `key`. */
  async rotate(organizationId: string, id: string, options?: RequestOptions): Promise<RotateApiKeyResponse> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/api-keys/{id}/rotate", { path: { organization_id: organizationId, id }, body: {}, options }), "rotateApiKey");
  }

  async revoke(organizationId: string, id: string, options?: RequestOptions): Promise<ApiKey> {
    return unwrap(await this.client.call("post", "/v1/organizations/{organization_id}/api-keys/{id}/revoke", { path: { organization_id: organizationId, id }, body: {}, options }), "revokeApiKey");
  }
}

export class AuthzResource {
  constructor(private readonly client: FabricClient) {}

  /** May the caller perform `action` on `resource` (`organization:<id>`, `team:<id>`, …)? A denial is `allowed: false`, not an error. */
  async check(request: CheckRequest, options?: RequestOptions): Promise<CheckResponse> {
    return unwrap(await this.client.call("post", "/v1/authz/check", { body: request, options }), "checkPermission");
  }

  /** Several checks at once; one verdict per check, in order. */
  async batchCheck(checks: CheckRequest[], options?: RequestOptions): Promise<CheckResponse[]> {
    return unwrap(await this.client.call("post", "/v1/authz/check-batch", { body: { checks }, options }), "batchCheckPermissions");
  }
}

export class AuditResource {
  constructor(private readonly client: FabricClient) {}

  /** One page of the organization's audit log, newest first, filtered by actor, action, resource and time. */
  async list(organizationId: string, params: ListAuditParams = {}, options?: RequestOptions): Promise<Page<AuditEntry>> {
    return this.client.call("get", "/v1/organizations/{organization_id}/audit-log", { path: { organization_id: organizationId }, query: params, options });
  }

  /** Every entry matching `params`, page by page. */
  listAll(organizationId: string, params: ListAuditParams = {}, options?: RequestOptions): AsyncGenerator<AuditEntry, void, undefined> {
    return allPages((page_token) => this.list(organizationId, { ...params, page_token }, options), params.page_token);
  }
}

export interface EventStreamOptions {
  /** Event kinds to receive; a trailing `*` matches a prefix (`workflow.run.*`). Default: all. */
  kinds?: string | readonly string[];
  /** Only this run's events. */
  runId?: string;
  /** Only events of this team's runs. */
  teamId?: string;
  /** Start after this event id (replaying what followed it) instead of from now. */
  afterId?: string | number | bigint;
  /** Ends the stream (the iterator then finishes normally). */
  signal?: AbortSignal;
  /** Overrides the client's reconnection policy. */
  retry?: RetryOptions;
}

export class EventsResource {
  constructor(private readonly client: FabricClient) {}

  /**
   * The organization's events the caller may see (run and node events of readable
   * teams, plus organization-wide events for callers with `event.read` across it), live,
   * in id order. Reconnects like `runs.watch` (`Last-Event-ID`, bounded backoff, no gap,
   * no duplicate); a 4xx — e.g. the key was revoked mid-stream — is thrown.
   *
   * It never ends by itself: abort `signal` (or break out of the loop) to stop; after an
   * abort the iterator simply finishes.
   */
  async *stream(opts: EventStreamOptions = {}): AsyncGenerator<FabricEvent, void, undefined> {
    const kinds = typeof opts.kinds === "string" ? opts.kinds : opts.kinds?.join(",");
    const { signal } = opts;
    if (signal?.aborted) return;
    try {
      yield* followEvents(this.client, {
        what: "organization event stream",
        path: "/v1/events/stream",
        query: { kinds: kinds || undefined, run_id: opts.runId, team_id: opts.teamId },
        afterId: opts.afterId,
        signal,
        retry: { ...this.client.retry, ...opts.retry },
        endedEarly: "the organization event stream kept ending",
      });
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
  }
}

// ---- providers, jobs, usage, policies and budgets ----------------------------------

/** The wire body of a provider call (the generated type misspells `operation`; see `ProviderCall`). */
const wireCall = (call: ProviderCall) => call as unknown as components["schemas"]["ProviderCallInput"];

export class ProvidersResource {
  constructor(private readonly client: FabricClient) {}

  /** The enabled providers, their models with prices (of the caller's price table), breakers and latency, and the default routing strategy. */
  async list(options?: RequestOptions): Promise<ListProvidersResponse> {
    // Cast: the generated schema types ModelInfo.operation as "ai" (see ProviderOperation).
    return unwrap(await this.client.call("get", "/v1/providers", { options }), "listProviders") as unknown as ListProvidersResponse;
  }

  /**
   * One provider call: routed (strategy, pins, tier, health), checked against the
   * organization's and `team_id`'s policy, reserved against every budget that applies,
   * made (with fallback), and settled in a usage record. Refusals are FabricErrors with
   * their code: `model_not_allowed` (403), `budget_exceeded` / `rate_limited` (429, with
   * `retryAfterSeconds` when waiting helps).
   */
  async execute(call: ProviderCall, options?: RequestOptions): Promise<ExecuteResponse> {
    return unwrap(await this.client.call("post", "/v1/providers/execute", { body: wireCall(call), options }), "executeProvider");
  }

  /**
   * An `ai.generate` call, streamed: `{ type: "delta", text }` as text arrives (the deltas
   * concatenate to the result's text), then one `{ type: "result", result }` (usage,
   * cost, routing), after which the iterator ends.
   *
   * A refusal or a failure before the first token is thrown as the call's FabricError
   * (as `execute` throws it); a failure after the stream began arrives as the server's
   * problem and is thrown the same way. A stream that ends (or, counting the server's
   * heartbeats, stays silent for the client's `retry.idleTimeoutMs`) before the result is
   * a `network_error`. Never retried: the call may have been made and billed.
   *
   * Breaking out of the loop, or aborting `options.signal` (its reason is rethrown),
   * aborts the request, and so the provider call.
   */
  async *stream(call: ProviderCall, options: RequestOptions = {}): AsyncGenerator<ProviderStreamChunk, void, undefined> {
    const what = "POST /v1/providers/execute/stream";
    const { signal } = options;
    signal?.throwIfAborted();
    const idleMs = this.client.retry.idleTimeoutMs;
    const connection = new AbortController();
    const onAbort = () => connection.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new FabricError({ status: 0, code: "network_error", detail: `${what}: no data for ${idleMs} ms` })), idleMs);
    };
    try {
      alive();
      const res = await this.client.send("post", "/v1/providers/execute/stream", {
        body: wireCall(call),
        accept: "text/event-stream",
        extraHeaders: { "cache-control": "no-cache" },
        options: { headers: options.headers, signal: connection.signal },
      });
      if (!res.body) throw new FabricError({ status: res.status, code: "invalid_response", detail: `${what}: the event stream has no body` });
      for await (const msg of readSse(res.body, alive)) {
        if (msg.event === "error") throw streamProblem(msg.data, res);
        if (msg.event === "delta") {
          const delta = parseJsonObject(msg.data, res) as { text?: unknown };
          if (typeof delta.text !== "string") throw invalidMessage(msg.data, res);
          // A slow consumer is not an idle connection: no watchdog while the chunk is out.
          clearTimeout(idle);
          yield { type: "delta", text: delta.text };
          alive();
        } else if (msg.event === "result") {
          const result = parseJsonObject(msg.data, res) as ExecuteResponse;
          if (typeof result.text !== "string") throw invalidMessage(msg.data, res);
          clearTimeout(idle);
          yield { type: "result", result };
          return;
        }
        // Other events (none today) are ignored: newer servers may add some.
      }
      throw new FabricError({ status: 0, code: "network_error", detail: `${what}: the stream ended before the result`, requestId: res.headers.get("x-request-id") ?? undefined });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (connection.signal.aborted && connection.signal.reason instanceof FabricError) throw connection.signal.reason; // the idle watchdog
      throw err instanceof FabricError ? err : FabricError.network(err, what);
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener("abort", onAbort);
      connection.abort();
    }
  }

  /**
   * What a call would cost and where it would be routed, without calling anything: the
   * decision, the upper-bound estimate, every budget that applies, and whether the call
   * would be admitted now (`allowed`, else `refusal_code`; a refusal is not an error here).
   */
  async estimate(call: ProviderCall, options?: RequestOptions): Promise<EstimateCostResponse> {
    return unwrap(await this.client.call("post", "/v1/providers/estimate", { body: wireCall(call), options }), "estimateCost");
  }
}

function parseJsonObject(data: string, res: Response): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    v = undefined;
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw invalidMessage(data, res);
  return v as Record<string, unknown>;
}

function invalidMessage(data: string, res: Response): FabricError {
  return new FabricError({ status: 0, code: "invalid_response", detail: `not a stream message of the contract: ${data.slice(0, 200)}`, requestId: res.headers.get("x-request-id") ?? undefined });
}

export class JobsResource {
  constructor(private readonly client: FabricClient) {}

  /**
   * Queues a job — one provider call (`modality` `text` or `embedding`) run as a one-node
   * workflow run — and resolves at once with it. With an `idempotency_key` already used
   * in the organization, the original job. The rate limit refuses at once
   * (`rate_limited`); policy and budget refusals fail the job (see `wait`).
   */
  async create(request: CreateJobRequest, options?: RequestOptions): Promise<Job> {
    return unwrap(await this.client.call("post", "/v1/jobs", { body: request, options }), "createJob");
  }

  /** A job with its `result` (text or embeddings, usage, cost, routing) once completed, or its `error`. */
  async get(id: string, options?: RequestOptions): Promise<Job> {
    return unwrap(await this.client.call("get", "/v1/jobs/{id}", { path: { id }, options }), "getJob");
  }

  /** One page of jobs, newest first. */
  async list(params: ListJobsParams = {}, options?: RequestOptions): Promise<Page<Job>> {
    return this.client.call("get", "/v1/jobs", { query: params, options });
  }

  /** Every job matching `params`, page by page. */
  listAll(params: ListJobsParams = {}, options?: RequestOptions): AsyncGenerator<Job, void, undefined> {
    return allPages((page_token) => this.list({ ...params, page_token }, options), params.page_token);
  }

  /** The job's usage records (one per provider attempt that got that far) and their total. */
  async usage(id: string, options?: RequestOptions): Promise<JobUsage> {
    return unwrap(await this.client.call("get", "/v1/jobs/{id}/usage", { path: { id }, options }), "getJobUsage");
  }

  /**
   * The job's events (those of its run), in id order, ending after the terminal event;
   * reconnects exactly like `runs.watch` (`Last-Event-ID`, bounded backoff, no gap, no
   * duplicate). Breaking out of the loop, or aborting `signal`, closes the connection.
   */
  async *watch(id: string, opts: WatchOptions = {}): AsyncGenerator<RunEvent, void, undefined> {
    yield* watchUntilTerminal(this.client, { noun: "job", id, path: "/v1/jobs/{id}/events", get: (signal) => this.get(id, { signal }) }, opts);
  }

  /**
   * Resolves with the job once it is terminal (completed, failed or cancelled — a failed
   * job resolves, it does not throw: see its `error`, e.g. `code` `model_not_allowed`).
   * Follows the event stream, no polling. After `timeoutMs`, rejects with a FabricError
   * `timeout` (the job is unaffected).
   */
  async wait(id: string, opts: WaitOptions = {}): Promise<Job> {
    return waitUntilTerminal({ noun: "job", id, watch: (signal) => this.watch(id, { signal }), get: (signal) => this.get(id, { signal }) }, opts);
  }
}

/** RFC 3339 from a Date; a string as given. */
function rfc3339(t: string | Date | undefined, name: string): string | undefined {
  if (!(t instanceof Date)) return t;
  if (Number.isNaN(t.getTime())) throw new TypeError(`FabricClient: ${name} is an invalid Date`);
  return t.toISOString();
}

export class UsageResource {
  constructor(private readonly client: FabricClient) {}

  /**
   * Usage and cost totals of the organization's provider calls, grouped by `group_by`
   * (`team`, `principal`, `api_key`, `run`, `provider`, `model`, `operation`, `day`;
   * comma-separated or an array) and filtered; `total` sums every matching call.
   */
  async query(organizationId: string, params: QueryUsageParams = {}, options?: RequestOptions): Promise<QueryUsageResponse> {
    const groupBy = typeof params.group_by === "string" ? params.group_by : params.group_by?.join(",");
    const query = { ...params, group_by: groupBy || undefined, start_time: rfc3339(params.start_time, "start_time"), end_time: rfc3339(params.end_time, "end_time") };
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/usage", { path: { organization_id: organizationId }, query, options }), "queryUsage");
  }

  /** One page of usage records (one per provider call attempt), newest first. */
  async records(organizationId: string, params: ListUsageRecordsParams = {}, options?: RequestOptions): Promise<Page<UsageRecord>> {
    const query = { ...params, start_time: rfc3339(params.start_time, "start_time"), end_time: rfc3339(params.end_time, "end_time") };
    return this.client.call("get", "/v1/organizations/{organization_id}/usage/records", { path: { organization_id: organizationId }, query, options });
  }

  /** Every usage record matching `params`, page by page. */
  recordsAll(organizationId: string, params: ListUsageRecordsParams = {}, options?: RequestOptions): AsyncGenerator<UsageRecord, void, undefined> {
    return allPages((page_token) => this.records(organizationId, { ...params, page_token }, options), params.page_token);
  }
}

/**
 * The rules provider calls and jobs obey: a policy (allowed providers and models, a
 * per-run cost cap, a per-key rate limit, organization price overrides) and a budget
 * (daily / monthly hard caps), each for the organization or for one team (`team_id`).
 * A call billed to a team obeys the organization's rules and the team's.
 */
export class PoliciesResource {
  constructor(private readonly client: FabricClient) {}

  /** The organization's policy, or `params.team_id`'s (empty fields when none is set). */
  async get(organizationId: string, params: PolicyScopeParams = {}, options?: RequestOptions): Promise<Policy> {
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/policy", { path: { organization_id: organizationId }, query: params, options }), "getPolicy");
  }

  /** Replaces the whole policy of the organization, or of `request.team_id` (a field left out: no such rule); resolves with the policy now in force. */
  async set(organizationId: string, request: SetPolicyRequest, options?: RequestOptions): Promise<Policy> {
    return unwrap(await this.client.call("put", "/v1/organizations/{organization_id}/policy", { path: { organization_id: organizationId }, body: request, options }), "setPolicy");
  }

  /** The organization's budget, or `params.team_id`'s, with the current periods' spend. */
  async getBudget(organizationId: string, params: PolicyScopeParams = {}, options?: RequestOptions): Promise<Budget> {
    return unwrap(await this.client.call("get", "/v1/organizations/{organization_id}/budget", { path: { organization_id: organizationId }, query: params, options }), "getBudget");
  }

  /** Replaces the limits of the organization's budget, or of `request.team_id`'s (a limit left out: none); resolves with the budget now in force. */
  async setBudget(organizationId: string, request: SetBudgetRequest, options?: RequestOptions): Promise<Budget> {
    return unwrap(await this.client.call("put", "/v1/organizations/{organization_id}/budget", { path: { organization_id: organizationId }, body: request, options }), "setBudget");
  }
}
