/**
 * Typed Connect clients for the gRPC face (port 3002 by default): one per service of the
 * contract (`grpcServices`), over gRPC / HTTP/2 on one shared connection, with the
 * client's auth headers.
 *
 * Messages are the generated protobuf-es types (camelCase, int64 as bigint,
 * Timestamps) — that is the gRPC contract, and deliberately not reshaped. Errors are
 * the SDK's `FabricError` (the ConnectError is its `cause`) for every method, unary and
 * streaming alike, so one `catch` works for both transports. Cancelling a call through
 * its own `signal` is not an error of Fabric: the ConnectError `canceled` is rethrown
 * as is, as REST calls rethrow the signal's reason.
 */
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, createClient, type CallOptions, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ApiKeyService, AuditService, AuthzService } from "../../gen/proto/fabric/v1/access_pb.js";
import { EventService } from "../../gen/proto/fabric/v1/events_pb.js";
import { IdentityService } from "../../gen/proto/fabric/v1/identity_pb.js";
import { JobService } from "../../gen/proto/fabric/v1/jobs_pb.js";
import { ProviderService } from "../../gen/proto/fabric/v1/providers_pb.js";
import { RunService } from "../../gen/proto/fabric/v1/run_pb.js";
import { TenancyService } from "../../gen/proto/fabric/v1/tenancy_pb.js";
import { PolicyService, UsageService } from "../../gen/proto/fabric/v1/usage_pb.js";
import { WebhookService } from "../../gen/proto/fabric/v1/webhooks_pb.js";
import { ScheduleService } from "../../gen/proto/fabric/v1/schedules_pb.js";
import { RetentionService } from "../../gen/proto/fabric/v1/retention_pb.js";
import { WorkflowService } from "../../gen/proto/fabric/v1/workflow_pb.js";
import { FabricError } from "./core/fabric-error.js";

/** Every gRPC service of the contract, under the name `client.grpc` exposes its client by (the REST resource's name where there is one). */
export const grpcServices = {
  workflows: WorkflowService,
  runs: RunService,
  identity: IdentityService,
  tenancy: TenancyService,
  apiKeys: ApiKeyService,
  authz: AuthzService,
  audit: AuditService,
  events: EventService,
  webhooks: WebhookService,
  providers: ProviderService,
  jobs: JobService,
  usage: UsageService,
  policies: PolicyService,
  schedules: ScheduleService,
  retention: RetentionService,
} as const satisfies Record<string, DescService>;

/** A typed Connect client per service; see `grpcServices` for which is which. */
export type FabricGrpc = { readonly [K in keyof typeof grpcServices]: Client<(typeof grpcServices)[K]> };

export interface GrpcConnection {
  clients: FabricGrpc;
  /** Closes the HTTP/2 connection. */
  close(): void;
}

export function connectGrpc(opts: { baseUrl: string; headers: Record<string, string> }): GrpcConnection {
  const sessionManager = new Http2SessionManager(opts.baseUrl);
  const auth: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(opts.headers)) if (!req.header.has(k)) req.header.set(k, v);
    return next(req);
  };
  const transport = createGrpcTransport({ baseUrl: opts.baseUrl, sessionManager, interceptors: [auth] });
  const clients: Record<string, unknown> = {};
  for (const [name, service] of Object.entries(grpcServices)) clients[name] = withFabricErrors(service, createClient(service, transport));
  return { clients: clients as FabricGrpc, close: () => sessionManager.abort() };
}

/** The call's own cancellation stays as it is; everything else becomes a FabricError. */
function mapError(err: unknown, options: CallOptions | undefined): unknown {
  if (options?.signal?.aborted && err instanceof ConnectError) return err;
  return FabricError.from(err);
}

/**
 * The same client, with every method's errors mapped. The argument after the request
 * is the call's `CallOptions` for every method kind, which is where its signal is.
 */
function withFabricErrors<S extends DescService>(service: S, client: Client<S>): Client<S> {
  const wrapped: Record<string, unknown> = {};
  const raw = client as unknown as Record<string, (input: unknown, options?: CallOptions) => unknown>;
  for (const method of service.methods) {
    const fn = raw[method.localName]!;
    const answersOnce = method.methodKind === "unary" || method.methodKind === "client_streaming";
    wrapped[method.localName] = answersOnce
      ? async (input: unknown, options?: CallOptions) => {
          try {
            return await fn(input, options);
          } catch (err) {
            throw mapError(err, options);
          }
        }
      : async function* (input: unknown, options?: CallOptions) {
          try {
            yield* fn(input, options) as AsyncIterable<unknown>;
          } catch (err) {
            throw mapError(err, options);
          }
        };
  }
  return wrapped as Client<S>;
}
