/**
 * Typed Connect clients for the gRPC face (port 3002 by default): the generated
 * `WorkflowService` and `RunService`, over gRPC / HTTP/2, with the client's auth.
 *
 * Messages are the generated protobuf-es types (camelCase, int64 as bigint,
 * Timestamps) — that is the gRPC contract, and deliberately not reshaped. Errors are
 * the SDK's `FabricError` (the ConnectError is its `cause`), so one `catch` works
 * for both transports.
 */
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { RunService } from "../../gen/proto/fabric/v1/run_pb.js";
import { WorkflowService } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { FabricError } from "./core/fabric-error.js";

export interface FabricGrpc {
  workflows: Client<typeof WorkflowService>;
  runs: Client<typeof RunService>;
}

export interface GrpcClients extends FabricGrpc {
  /** Closes the HTTP/2 connection. */
  close(): void;
}

export function createGrpcClients(opts: { baseUrl: string; headers: Record<string, string> }): GrpcClients {
  const sessionManager = new Http2SessionManager(opts.baseUrl);
  const auth: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(opts.headers)) if (!req.header.has(k)) req.header.set(k, v);
    return next(req);
  };
  const transport = createGrpcTransport({ baseUrl: opts.baseUrl, sessionManager, interceptors: [auth] });
  return {
    workflows: withFabricErrors(WorkflowService, createClient(WorkflowService, transport)),
    runs: withFabricErrors(RunService, createClient(RunService, transport)),
    close: () => sessionManager.abort(),
  };
}

/** Cancellation (the caller's signal or timeout) stays a ConnectError `Canceled`; everything else becomes a FabricError. */
function mapError(err: unknown): unknown {
  if (err instanceof ConnectError && err.code === Code.Canceled) return err;
  return FabricError.from(err);
}

/** The same client, with every method's errors mapped (unary and server-streaming). */
function withFabricErrors<S extends DescService>(service: S, client: Client<S>): Client<S> {
  const wrapped: Record<string, unknown> = {};
  const raw = client as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of service.methods) {
    const fn = raw[method.localName]!;
    if (method.methodKind === "unary") {
      wrapped[method.localName] = async (...args: unknown[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          throw mapError(err);
        }
      };
    } else if (method.methodKind === "server_streaming") {
      wrapped[method.localName] = async function* (...args: unknown[]) {
        try {
          yield* fn(...args) as AsyncIterable<unknown>;
        } catch (err) {
          throw mapError(err);
        }
      };
    } else {
      wrapped[method.localName] = fn;
    }
  }
  return wrapped as Client<S>;
}
