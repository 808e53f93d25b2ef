/**
 * The gRPC / gRPC-Web / Connect edge. Like REST it only translates: each proto method
 * is bound generically to the use case of the same name, after the one call step
 * (request id, caller, guard); domain errors map to Connect codes in one place.
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { ConnectError, createContextKey, type ConnectRouter, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { CallContext } from "../../services/call-context.js";
import type { Logger } from "../../logger.js";
import { requestIdOf, type CallStep } from "../call-step.js";
import { protoFiles, serviceDescriptors, type ServiceName } from "../contract.js";
import { logFailure, toConnectError, toDomainError } from "../error-mapping.js";
import { checkRequiredFields } from "../required-fields.js";
import { useCaseOf, wrapsEvent, type ServiceImpls } from "../service-impls.js";
import { metrics } from "../../telemetry/metrics.js";
import { grpcCodeName, recordCall } from "../access-log.js";
import { file_grpc_health_v1_health as healthFile } from "../../../gen/proto/grpc/health/v1/health_pb.js";
import { addHealth } from "./health.js";
import { addReflection } from "./reflection.js";
import { withStatusDetails } from "./status-details.js";

/** The client's address, put into each call's context values by the Node adapter (see server.ts). */
export const clientAddressKey = createContextKey<string>("", { description: "client address" });

type GrpcOptions = {
  services: ServiceImpls;
  callStep: CallStep;
  log: Logger;
  /** Runs a call inside the trace the request's `traceparent` continues (telemetry/tracing.ts); absent without tracing. */
  traced?: <T>(rpc: string, headers: Headers, fn: () => Promise<T>) => Promise<T>;
  traceIdOf?: () => string | undefined;
  /** Answers grpc.health.v1.Health (health.ts); no health service without it. */
  ready?: () => Promise<void>;
};

export function createGrpcRoutes(opts: GrpcOptions) {
  return (router: ConnectRouter) => {
    const bind = <N extends ServiceName>(name: N) => router.service(serviceDescriptors[name], bindService(serviceDescriptors[name], opts));
    for (const name of Object.keys(serviceDescriptors) as ServiceName[]) bind(name);
    addReflection(router, opts.ready ? [...protoFiles, healthFile] : protoFiles);
    if (opts.ready) addHealth(router, { ready: opts.ready, services: Object.keys(serviceDescriptors) });
  };
}

/**
 * Every method of `service` as a Connect handler. Built by walking the descriptor, so the
 * handlers are typed here as Connect's `ServiceImpl` of the service; the use cases they
 * call are typed against the same descriptor in `ServiceImpls`.
 */
function bindService<S extends DescService>(service: S, opts: GrpcOptions): ServiceImpl<S> {
  const handlers: Record<string, unknown> = {};
  for (const method of service.methods) handlers[method.localName] = bindMethod(method, opts);
  return handlers as ServiceImpl<S>;
}

function bindMethod(method: DescMethod, opts: GrpcOptions) {
  const rpc = `${method.parent.typeName}/${method.name}`;
  const useCase = useCaseOf(opts.services, method);

  const begin = async (hctx: HandlerContext, req: unknown): Promise<CallContext> => {
    const requestId = requestIdOf(hctx.requestHeader.get("x-request-id"));
    hctx.responseHeader.set("x-request-id", requestId);
    try {
      const ctx = await opts.callStep.begin(rpc, { requestId, header: (name) => hctx.requestHeader.get(name), signal: hctx.signal, clientAddress: hctx.values.get(clientAddressKey) }, req);
      checkRequiredFields(method.input, req);
      return ctx;
    } catch (err) {
      throw mapError(err, requestId, rpc, opts.log);
    }
  };

  const finish = (started: number, requestId: string, ctx: CallContext | undefined, err: unknown) =>
    recordCall(opts.log, { transport: "grpc", operation: rpc, status: grpcCodeName(err === undefined ? undefined : ConnectError.from(err).code), durationSeconds: (performance.now() - started) / 1000, requestId, caller: ctx?.caller, traceId: opts.traceIdOf?.() });
  const traced = opts.traced ?? (<T>(_rpc: string, _h: Headers, fn: () => Promise<T>) => fn());
  if (method.methodKind === "server_streaming") {
    const wrap = wrapsEvent(method);
    return async function* (req: unknown, hctx: HandlerContext) {
      const started = performance.now();
      let ctx: CallContext | undefined;
      let failure: unknown;
      metrics.streamSubscribers.inc({ transport: "grpc" });
      try {
        ctx = await begin(hctx, req);
        // Event streams: the use cases yield Events and the response wraps each one.
        for await (const item of (await useCase(ctx, req)) as AsyncIterable<unknown>) yield wrap ? { event: item } : item;
      } catch (err) {
        failure = ctx ? mapError(err, ctx.requestId, rpc, opts.log) : err;
        throw failure;
      } finally {
        metrics.streamSubscribers.dec({ transport: "grpc" });
        finish(started, hctx.responseHeader.get("x-request-id") ?? "", ctx, failure);
      }
    };
  }
  return (req: unknown, hctx: HandlerContext) =>
    traced(rpc, hctx.requestHeader, async () => {
      const started = performance.now();
      let ctx: CallContext | undefined;
      try {
        ctx = await begin(hctx, req);
        const res = await useCase(ctx, req);
        finish(started, ctx.requestId, ctx, undefined);
        return res;
      } catch (err) {
        const mapped = ctx ? mapError(err, ctx.requestId, rpc, opts.log) : err;
        finish(started, hctx.responseHeader.get("x-request-id") ?? "", ctx, mapped);
        throw mapped;
      }
    });
}

function mapError(err: unknown, requestId: string, rpc: string, log: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  const domain = toDomainError(err);
  logFailure(log, domain, err, { request_id: requestId, rpc });
  return withStatusDetails(toConnectError(domain, requestId), domain, requestId);
}
