/**
 * The closed catalogue of event kinds, each with the read permission its subscriber needs
 * — the one the corresponding GET checks. `NewEvent.kind` (db/events.ts) is typed by it,
 * so a new kind cannot be emitted without deciding who may read it; the event stream
 * (services/events/event-service.ts) checks it per event, and an unknown kind is shown to
 * no one.
 *
 * `on` says where the permission is checked:
 * - `run`: on the run's team (run and node events, which carry `run_id`);
 * - `organization`: organization-wide;
 * - `payload_team`: on the team named by the payload's `team_id` (organization-wide when none);
 * - `owner_or_organization`: organization-wide, or on the caller's own resource (the
 *   payload's `principal_id`), as listing API keys does.
 *
 * Payloads carry ids, not what the GET hides from most readers: no webhook URL (it may hold
 * a token), no invitee email.
 */
import type { Action } from "./permissions.js";

export interface EventReadRule {
  action: Action;
  on: "run" | "organization" | "payload_team" | "owner_or_organization";
}

const run: EventReadRule = { action: "run.read", on: "run" };
const org = (action: Action): EventReadRule => ({ action, on: "organization" });
const team = (action: Action): EventReadRule => ({ action, on: "payload_team" });

export const eventKinds = {
  "workflow.run.created": run,
  "workflow.run.queued": run,
  "workflow.run.started": run,
  "workflow.run.waiting": run,
  "workflow.run.paused": run,
  "workflow.run.resumed": run,
  "workflow.run.completed": run,
  "workflow.run.failed": run,
  "workflow.run.cancelled": run,
  "workflow.node.ready": run,
  "workflow.node.started": run,
  "workflow.node.progress": run,
  "workflow.node.retrying": run,
  "workflow.node.waiting": run,
  "workflow.node.completed": run,
  "workflow.node.failed": run,
  "workflow.node.skipped": run,
  "workflow.node.cancelled": run,
  "workflow.definition.created": team("workflow.read"),
  "organization.created": org("organization.read"),
  "organization.updated": org("organization.read"),
  "organization.archived": org("organization.read"),
  "team.created": team("team.read"),
  "team.updated": team("team.read"),
  "team.deleted": org("team.read"),
  "member.added": team("member.read"),
  "member.updated": team("member.read"),
  "member.removed": team("member.read"),
  "service_account.created": org("member.read"),
  "invitation.created": team("invitation.read"),
  "invitation.revoked": team("invitation.read"),
  "invitation.accepted": team("invitation.read"),
  "api_key.created": { action: "api_key.read", on: "owner_or_organization" },
  "api_key.rotated": { action: "api_key.read", on: "owner_or_organization" },
  "api_key.revoked": { action: "api_key.read", on: "owner_or_organization" },
  "webhook.created": org("webhook.read"),
  "webhook.updated": org("webhook.read"),
  "webhook.deleted": org("webhook.read"),
  "webhook.disabled": org("webhook.read"),
  "policy.updated": team("policy.read"),
  "budget.updated": team("budget.read"),
  "budget.exceeded": team("budget.read"),
  "schedule.created": team("schedule.read"),
  "schedule.updated": team("schedule.read"),
  "schedule.deleted": team("schedule.read"),
  "schedule.fired": team("schedule.read"),
} as const satisfies Record<string, EventReadRule>;

export type EventKind = keyof typeof eventKinds;

/** The read rule of `kind`; undefined for a kind outside the catalogue (shown to no one). */
export function eventReadRule(kind: string): EventReadRule | undefined {
  return Object.hasOwn(eventKinds, kind) ? eventKinds[kind as EventKind] : undefined;
}
