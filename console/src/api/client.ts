/**
 * The console's one way to call the API: openapi-fetch typed by the generated
 * `gen/openapi/schema.d.ts`, so every path, parameter and response shape comes from the
 * contract. `unwrap` turns a problem+json answer into an `ApiError` carrying the problem's
 * title, detail, code and request id, which pages show as they are.
 */
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "../../../gen/openapi/schema";
import { session } from "./session.js";

export { ApiError, unwrap } from "./problem.js";

export type Schemas = components["schemas"];
export type Run = Schemas["Run"];
export type RunNode = Schemas["RunNode"];
export type FabricEvent = Schemas["Event"];
export type WorkflowDefinition = Schemas["WorkflowDefinition"];
export type WorkflowSpec = Schemas["WorkflowSpec"];
export type Problem = Schemas["Problem"];

const authorize: Middleware = {
  async onRequest({ request, schemaPath }) {
    // Sign-in calls carry no credentials of their own.
    if (schemaPath.startsWith("/v1/auth/") && schemaPath !== "/v1/auth/logout") return request;
    for (const [k, v] of Object.entries(await session.headers())) request.headers.set(k, v);
    return request;
  },
  async onResponse({ response, schemaPath }) {
    // A 401 outside sign-in means the session ended (logged out elsewhere, key revoked).
    if (response.status === 401 && !schemaPath.startsWith("/v1/auth/")) session.expired();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });
api.use(authorize);

