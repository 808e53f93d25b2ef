/** Workflow definitions: register (a new version when the spec changed), read, list, validate. */
import { listAll, type Page } from "../core/paging.js";
import { unwrap, type RequestOptions, type RestTransport } from "../core/rest-transport.js";
import type { ListWorkflowsParams, ValidateWorkflowResult, WorkflowDefinition, WorkflowSpec } from "../types.js";

export class WorkflowsResource {
  constructor(private readonly transport: RestTransport) {}

  /** Registers a definition by name: a new version when the spec changed, else the latest one. */
  async upsert(spec: WorkflowSpec, options?: RequestOptions): Promise<WorkflowDefinition> {
    return unwrap(await this.transport.call("post", "/v1/workflows", { body: spec, options }), "upsertWorkflow");
  }

  /** One definition version by id. */
  async get(id: string, options?: RequestOptions): Promise<WorkflowDefinition> {
    return unwrap(await this.transport.call("get", "/v1/workflows/{id}", { path: { id }, options }), "getWorkflow");
  }

  /** One page of definitions, newest first. */
  async list(params: ListWorkflowsParams = {}, options?: RequestOptions): Promise<Page<WorkflowDefinition>> {
    return this.transport.call("get", "/v1/workflows", { query: params, options });
  }

  /** Every definition (matching `params.name`), page by page. */
  listAll(params: ListWorkflowsParams = {}, options?: RequestOptions): AsyncGenerator<WorkflowDefinition, void, undefined> {
    return listAll((page_token) => this.list({ ...params, page_token }, options), params.page_token);
  }

  /** Validates a spec without storing it: `{ valid, issues }` (an invalid spec is not an error here). */
  async validate(spec: WorkflowSpec, options?: RequestOptions): Promise<ValidateWorkflowResult> {
    return unwrap(await this.transport.call("post", "/v1/workflows/validate", { body: spec, options }), "validateWorkflow");
  }
}
