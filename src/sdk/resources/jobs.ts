/** Jobs: one provider call queued as a run of a built-in one-node workflow. */
import type { RetryOptions } from "../core/follow-events.js";
import { listAll, type Page } from "../core/paging.js";
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { CreateJobRequest, Job, JobUsage, ListJobsParams, RunEvent } from "../types.js";
import { waitUntilTerminal, watchUntilTerminal, type WaitOptions, type WatchOptions } from "./runs.js";

export class JobsResource {
  constructor(
    private readonly transport: RestTransport,
    private readonly reconnect: Required<RetryOptions>,
  ) {}

  /**
   * Queues a job — one provider call (`modality` `text` or `embedding`) run as a one-node
   * workflow run — and resolves at once with it. With an `idempotency_key` already used
   * in the organization, the original job. The rate limit refuses at once
   * (`rate_limited`); policy and budget refusals fail the job (see `wait`).
   */
  async create(request: CreateJobRequest, options?: RequestOptions): Promise<Job> {
    return unwrap(await this.transport.call("post", "/v1/jobs", { body: request, options }), "createJob");
  }

  /** A job with its `result` (text or embeddings, usage, cost, routing) once completed, or its `error`. */
  async get(id: string, options?: RequestOptions): Promise<Job> {
    return unwrap(await this.transport.call("get", "/v1/jobs/{id}", { path: { id }, options }), "getJob");
  }

  /** One page of jobs, newest first. */
  async list(params: ListJobsParams = {}, options?: RequestOptions): Promise<Page<Job>> {
    return this.transport.call("get", "/v1/jobs", { query: params, options });
  }

  /** Every job matching `params`, page by page. */
  listAll(params: ListJobsParams = {}, options?: RequestOptions): AsyncGenerator<Job, void, undefined> {
    return listAll((page_token) => this.list({ ...params, page_token }, options), params.page_token);
  }

  /** The job's usage records (one per provider attempt that got that far) and their total. */
  async usage(id: string, options?: RequestOptions): Promise<JobUsage> {
    return unwrap(await this.transport.call("get", "/v1/jobs/{id}/usage", { path: { id }, options }), "getJobUsage");
  }

  /**
   * The job's events (those of its run), in id order, ending after the terminal event;
   * reconnects exactly like `runs.watch` (`Last-Event-ID`, bounded backoff, no gap, no
   * duplicate). Breaking out of the loop, or aborting `signal`, closes the connection.
   */
  async *watch(id: string, opts: WatchOptions = {}): AsyncGenerator<RunEvent, void, undefined> {
    yield* watchUntilTerminal(this.transport, { ...this.reconnect, ...opts.retry }, { noun: "job", id, path: "/v1/jobs/{id}/events", get: (signal) => this.get(id, { signal }) }, opts);
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
