/**
 * The gRPC / gRPC-Web / Connect edge. Like REST it only translates: each proto method
 * is bound generically to the service method of the same name, after the one
 * authentication + permission check; domain errors map to Connect codes in one place.
 */
import { randomUUID } from "node:crypto";
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, createContextKey, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import type { Authenticator } from "../../services/identity/authenticator.js";
import type { Guard } from "../../services/access/permission-checks.js";
import type { CallContext } from "../../services/call-context.js";
import { operationRules } from "../operation-rules.js";
import type { Logger } from "../../logger.js";
import { protoFiles, services } from "../contract.js";
import { toConnectError, toDomainError } from "../errors.js";
import type { ServiceImpls } from "../rest/app.js";
import { addReflection } from "./reflection.js";

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's address, put into each call's context values by the Node adapter (see server.ts). */
export const clientAddressKey = createContextKey<string>("", { description: "client address" });

type GrpcOptions = { services: ServiceImpls; authenticator: Authenticator; guard: Guard; log: Logger };

export function createGrpcRoutes(opts: GrpcOptions) {
  return (router: ConnectRouter) => {
    for (const service of services) router.service(service, bindService(service, opts) as any);
    addReflection(router, protoFiles);
  };
}

function bindService(service: DescService, opts: GrpcOptions) {
  const impl = opts.services[service.typeName];
  if (!impl) throw new Error(`no implementation for ${service.typeName}`);
  const handlers: Record<string, unknown> = {};
  for (const method of service.methods) {
    const rpc = `${service.typeName}/${method.name}`;
    const fn = impl[method.localName];
    if (!fn) throw new Error(`no implementation for ${rpc}`);
    const rule = operationRules[rpc];
    const anonymous = !!rule && "anonymous" in rule && rule.anonymous === true;

    const begin = async (hctx: HandlerContext, req: unknown): Promise<CallContext> => {
      const given = hctx.requestHeader.get("x-request-id");
      const requestId = given && requestIdPattern.test(given) ? given : randomUUID();
      hctx.responseHeader.set("x-request-id", requestId);
      try {
        const caller = anonymous
          ? { principalId: "", organizationId: "", via: "api_key" as const, scopes: [] }
          : await opts.authenticator.authenticate({
              authorization: hctx.requestHeader.get("authorization"),
              principalId: hctx.requestHeader.get("x-principal-id"),
              organizationId: hctx.requestHeader.get("x-organization-id"),
            });
        const ctx: CallContext = { caller, requestId, signal: hctx.signal, clientAddress: hctx.values.get(clientAddressKey) };
        await opts.guard(ctx, rpc, req);
        return ctx;
      } catch (err) {
        throw mapError(err, requestId, rpc, opts.log);
      }
    };

    if (method.methodKind === "server_streaming") {
      const wrapsEvent = method.output.fields.some((f) => f.localName === "event" && f.fieldKind === "message" && f.message.typeName === "fabric.v1.Event");
      handlers[method.localName] = async function* (req: unknown, hctx: HandlerContext) {
        const ctx = await begin(hctx, req);
        try {
          // Event streams: the services yield Events and the response wraps each one.
          for await (const item of (await fn(ctx, req)) as AsyncIterable<unknown>) yield wrapsEvent ? { event: item } : item;
        } catch (err) {
          throw mapError(err, ctx.requestId, rpc, opts.log);
        }
      };
    } else {
      handlers[method.localName] = async (req: unknown, hctx: HandlerContext) => {
        const ctx = await begin(hctx, req);
        try {
          return await fn(ctx, req);
        } catch (err) {
          throw mapError(err, ctx.requestId, rpc, opts.log);
        }
      };
    }
  }
  return handlers;
}

function mapError(err: unknown, requestId: string, rpc: string, log: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  const domain = toDomainError(err);
  if (domain.kind === "internal") log.error("rpc failed", { request_id: requestId, rpc, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  return toConnectError(domain, requestId);
}
