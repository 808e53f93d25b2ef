/**
 * The seam between the generated contracts and the hand-written use cases, typed from the
 * proto service descriptors: for every service of `serviceDescriptors`, every method is a
 * use case taking the call context and the request message and answering the response
 * message. A missing method, a mistyped request or response, fails `tsc` — not start-up.
 *
 * Server-streaming use cases resolve to the stream once the call is known to be valid (a
 * missing run is an error response, not an empty stream). A stream whose response wraps a
 * `fabric.v1.Event` (`{event}`) yields the Events themselves, and each transport wraps them
 * its way (gRPC: the response message, REST: an SSE message with the event's id and kind);
 * any other stream yields its response messages.
 */
import { isReadMethod, retryReadOnce } from "./read-retry.js";
import type { DescMessage, DescMethod, DescMethodServerStreaming, DescMethodUnary, DescService, MessageShape } from "@bufbuild/protobuf";
import type { Event } from "../../gen/proto/fabric/v1/run_pb.js";
import type { CallContext } from "../services/call-context.js";
import type { serviceDescriptors } from "./contract.js";

type StreamItem<O extends DescMessage> = "event" extends keyof MessageShape<O> ? Event : MessageShape<O>;

export type UseCase<M extends DescMethod> =
  M extends DescMethodUnary<infer I, infer O>
    ? (ctx: CallContext, request: MessageShape<I>) => Promise<MessageShape<O>>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? (ctx: CallContext, request: MessageShape<I>) => Promise<AsyncIterable<StreamItem<O>>>
      : never;

/** A service's use cases, one per method, named as the method's `localName`. */
export type UseCases<S extends DescService> = { [K in keyof S["method"]]: UseCase<S["method"][K]> };

export type ServiceImpls = { [N in keyof typeof serviceDescriptors]: UseCases<(typeof serviceDescriptors)[N]> };

/** Whether a streaming method's response wraps an Event (the stream yields Events). */
export function wrapsEvent(method: DescMethod): boolean {
  return method.output.fields.some((f) => f.localName === "event" && f.fieldKind === "message" && f.message.typeName === "fabric.v1.Event");
}

/**
 * The use case of `method`, for the transports' generic binding (which walks the
 * descriptors, so it sees requests and answers as `unknown`: the types above are checked
 * where the use cases are assembled, server.ts).
 */
export function useCaseOf(impls: ServiceImpls, method: DescMethod): (ctx: CallContext, request: unknown) => Promise<unknown> {
  const service = (impls as Record<string, Record<string, unknown> | undefined>)[method.parent.typeName];
  const fn = service?.[method.localName];
  if (typeof fn !== "function") throw new Error(`no implementation for ${method.parent.typeName}/${method.name}`);
  const bound = fn.bind(service) as (ctx: CallContext, request: unknown) => Promise<unknown>;
  return isReadMethod(method) ? (ctx, request) => retryReadOnce(() => bound(ctx, request)) : bound;
}
