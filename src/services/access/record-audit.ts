/**
 * The audit log: every mutation writes one entry in its own transaction (pass `tx`),
 * with who, from where, which request, what and a summary of the change. Never put a
 * secret in `summary`. The table refuses UPDATE and DELETE (migration 0002).
 */
import type { Executor } from "../../db/database.js";
import { auditLog } from "../../db/schema.js";
import type { CallContext } from "../call-context.js";

export interface AuditRecord {
  /**
   * What was done, named after the use case (`run.start`, `api_key.rotate`, …): each
   * service declares its own (`runAuditActions`, …). docs/access-control.md lists them.
   */
  action: `${string}.${string}`;
  /** `kind:id`, e.g. `run:<uuid>`. */
  resource: string;
  summary?: Record<string, unknown>;
  /** Defaults to the caller's organization. */
  organizationId?: string;
}

export async function recordAudit(tx: Executor, ctx: CallContext, entry: AuditRecord): Promise<void> {
  await tx.insert(auditLog).values({
    organizationId: entry.organizationId ?? ctx.caller.organizationId,
    actorPrincipalId: ctx.caller.principalId,
    apiKeyId: ctx.caller.apiKeyId ?? null,
    action: entry.action,
    resource: entry.resource,
    requestId: ctx.requestId,
    clientAddress: ctx.clientAddress,
    summary: entry.summary ?? {},
  });
}
