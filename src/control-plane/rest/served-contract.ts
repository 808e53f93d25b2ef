/**
 * The OpenAPI document as served at `/openapi.json` (and so by the `/docs` page's "Try it
 * out"): its `servers` entry is the address the request came to — or FABRIC_PUBLIC_URL
 * when one is configured, for a server behind a proxy that changes the scheme or host —
 * and its description starts with this control plane's REST and gRPC addresses. The
 * document in gen/ names a local default that is right on one machine only.
 */
export interface PublicAddresses {
  /** FABRIC_PUBLIC_URL: the REST base URL clients use. Default: the request's own origin. */
  restUrl?: string;
  /** FABRIC_PUBLIC_GRPC_URL. Default: the REST URL's host with the gRPC port this process listens on. */
  grpcUrl?: string;
  /** The gRPC port this process listens on (known once it is listening). */
  grpcPort?: () => number | undefined;
}

export function createServedContract(document: Record<string, any>, addresses: PublicAddresses = {}) {
  const description = String(document.info?.description ?? "");
  // A few hosts at most reach one server (names, addresses, a load balancer's): a small
  // cache spares a copy per request, and its bound keeps arbitrary Host headers from growing it.
  const cache = new Map<string, Record<string, any>>();
  return (requestUrl: string): Record<string, any> => {
    const rest = trimSlash(addresses.restUrl ?? new URL(requestUrl).origin);
    const grpc = trimSlash(addresses.grpcUrl ?? derivedGrpcUrl(rest, addresses.grpcPort?.()));
    const key = `${rest} ${grpc}`;
    let served = cache.get(key);
    if (!served) {
      served = {
        ...document,
        info: { ...document.info, description: `This server: REST + SSE at ${rest}${grpc ? `; gRPC, gRPC-Web and Connect at ${grpc}` : ""}.\n\n${description}` },
        servers: [{ url: rest, description: addresses.restUrl ? "this server (FABRIC_PUBLIC_URL)" : "this server" }],
      };
      if (cache.size >= 16) cache.delete(cache.keys().next().value!);
      cache.set(key, served);
    }
    return served;
  };
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");

function derivedGrpcUrl(rest: string, port: number | undefined): string {
  if (!port) return "";
  const url = new URL(rest);
  return `${url.protocol}//${url.hostname.includes(":") && !url.hostname.startsWith("[") ? `[${url.hostname}]` : url.hostname}:${port}`;
}
