/**
 * The one step before every call, the same on both transports: the request id (the
 * client's `X-Request-Id` when well formed, else a new one), the caller (authenticated,
 * unless the operation is anonymous), and the guard (operation-rules.ts says what each
 * operation needs). The transports hand it what they read off the wire and map what it
 * throws in their own way (error-mapping.ts).
 */
import { randomUUID } from "node:crypto";
import type { Authenticator } from "../services/identity/authenticator.js";
import type { Caller, CallContext } from "../services/call-context.js";
import { DomainError } from "../domain/errors.js";
import { permissionsNarrowed } from "../domain/permissions.js";
import type { Guard } from "./guard.js";
import { operationRules } from "./operation-rules.js";
import { retryReadOnce } from "./read-retry.js";

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** The id of a request: the client's when it is well formed, else a new one. */
export function requestIdOf(given: string | null | undefined): string {
  return given && requestIdPattern.test(given) ? given : randomUUID();
}

/** What a transport read off the wire for one call. */
export interface IncomingCall {
  requestId: string;
  /** A request header by (case-insensitive) name. */
  header(name: string): string | null | undefined;
  signal: AbortSignal;
  /** The client's network address, for throttling and the audit log. */
  clientAddress: string;
}

export interface CallStep {
  /**
   * The call context of `rpc` (`fabric.v1.RunService/GetRun`), after authentication and
   * the guard. `request` holds what the guard may read — the organization's field — keyed
   * by the proto field's local (camelCase) name.
   */
  begin(rpc: string, call: IncomingCall, request: unknown): Promise<CallContext>;
}

/** Anonymous operations (sign-up, login, refresh) run with no principal and no organization. */
const anonymousCaller = (): Caller => ({ principalId: "", organizationId: "", via: "api_key", scopes: [] });

export function createCallStep(deps: { authenticator: Authenticator; guard: Guard }): CallStep {
  return {
    begin(rpc, call, request) {
      // Authentication and the guard only read: a transient database failure is retried once.
      return retryReadOnce(() => begin(rpc, call, request));
    },
  };

  async function begin(rpc: string, call: IncomingCall, request: unknown): Promise<CallContext> {
    const rule = operationRules[rpc];
    const anonymous = !!rule && "anonymous" in rule && rule.anonymous === true;
    const credentials = { authorization: call.header("authorization"), principalId: call.header("x-principal-id"), organizationId: call.header("x-organization-id"), clientAddress: call.clientAddress };
    const caller = anonymous ? anonymousCaller() : await deps.authenticator.authenticate(credentials);
    const ctx: CallContext = { caller, requestId: call.requestId, signal: call.signal, clientAddress: call.clientAddress };
    await deps.guard(ctx, rule, request);
    if (!anonymous) {
      ctx.recheck = async () => {
        const again = await deps.authenticator.authenticate({ ...credentials, organizationId: ctx.caller.organizationId || credentials.organizationId });
        if (again.principalId !== ctx.caller.principalId) throw new DomainError("unauthenticated", "the credentials of this call no longer name its caller");
        const fresh: CallContext = { ...ctx, caller: { ...again, organizationId: ctx.caller.organizationId || again.organizationId } };
        try {
          await deps.guard(fresh, rule, request);
        } catch (err) {
          // The organization answers "not found" to a non-member: for a stream it had access to, that is a denial.
          if (err instanceof DomainError && err.kind === "not_found") throw new DomainError("permission_denied", "the caller is no longer a member of this organization", { code: "access_revoked" });
          throw err;
        }
        if (ctx.permissions && fresh.permissions && permissionsNarrowed(ctx.permissions, fresh.permissions)) {
          throw new DomainError("permission_denied", "the caller's role changed and no longer grants what this call was opened with", { code: "access_revoked" });
        }
        ctx.caller.scopes = fresh.caller.scopes;
        ctx.permissions = fresh.permissions;
      };
    }
    return ctx;
  }
}
