/**
 * API failures as the console shows them: the problem document's title and detail, its
 * stable code and the request id (which the server's logs carry too).
 */
import type { components } from "../../../gen/openapi/schema";

type Problem = components["schemas"]["Problem"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
    readonly code: string,
    readonly requestId: string | undefined,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

/** The body of a successful answer, or an `ApiError` made from the problem document. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch (err) {
    throw new ApiError(0, "The API could not be reached", err instanceof Error ? err.message : String(err), "network_error", undefined);
  }
  const { data, error, response } = result;
  if (response.ok) return data as T;
  const p = (error && typeof error === "object" ? error : {}) as Partial<Problem>;
  throw new ApiError(response.status, p.title ?? (response.statusText || `HTTP ${response.status}`), p.detail, p.code ?? "unknown", p.request_id ?? response.headers.get("x-request-id") ?? undefined);
}
