/** A schedule row's timing, as domain/schedule-timing.ts reads it. */
import type { Timing } from "../domain/schedule-timing.js";
import type { schedules } from "./schema.js";

export function timingOf(row: Pick<typeof schedules.$inferSelect, "cron" | "timezone" | "startAt">): Timing {
  return row.cron ? { cron: row.cron, timezone: row.timezone } : { startAt: row.startAt! };
}
