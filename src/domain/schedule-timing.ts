/**
 * When schedules fire (pure, no I/O): cron patterns read with croner (5 fields, or 6 with
 * seconds first) in an IANA time zone, one-off start times, the next fire times shown in
 * the API, and what a claim does with the fire times that are due (`dueFires`).
 *
 * Daylight saving time follows croner: a fixed-time pattern (`30 2 * * *`) whose wall-clock
 * time does not exist on the spring-forward day fires once at the first instant after the
 * gap (03:00), and once (at the first occurrence) on the fall-back day; a pattern with
 * wildcards or steps in its time fields (`*\/30 * * * *`) fires on every matching instant of
 * absolute time, so twice in the repeated hour. (schedule-timing.test.ts holds these.)
 *
 * Catch-up: a fire time more than `graceMs` in the past when a control plane claims it was
 * missed (no control plane ran then); what happens to missed fires is the schedule's
 * catch-up policy — `none`: none start, `latest`: the latest one starts, `all`: the latest
 * `limit` start (oldest first), the older ones count as missed. Fire times within the
 * grace window always start: a control plane that is a little late is not downtime.
 */
import { Cron } from "croner";

export const overlapPolicies = ["skip", "queue", "cancel_previous"] as const;
export type OverlapPolicy = (typeof overlapPolicies)[number];
export const catchUpPolicies = ["none", "latest", "all"] as const;
export type CatchUpPolicy = (typeof catchUpPolicies)[number];
export const fireOutcomes = ["started", "skipped", "queued", "missed", "failed"] as const;
export type FireOutcome = (typeof fireOutcomes)[number];

export const scheduleLimits = {
  nameMaxLength: 100,
  descriptionMaxLength: 500,
  cronMaxLength: 120,
  timezoneMaxLength: 64,
  catchUpLimitDefault: 10,
  catchUpLimitMax: 100,
  /** Fire times shown in a schedule's `next_fire_times`. */
  nextFireTimes: 5,
  /** Fires waiting behind an active run (overlap `queue`); further fires are skipped. */
  queuedMax: 100,
  /** Missed fires recorded one by one (the latest ones); older missed fires are only counted. */
  missedRecorded: 100,
  /** Fire times started by one claim of one schedule (bounds the work of a transaction). */
  firesPerClaim: 200,
  /** A fire time later than this when claimed was missed. */
  graceMs: 60_000,
} as const;

/** How a schedule says when: a cron pattern in a time zone, or one instant. */
export type Timing = { cron: string; timezone: string } | { startAt: Date };

export function isTimeZone(tz: string): boolean {
  if (tz.length === 0 || tz.length > scheduleLimits.timezoneMaxLength) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The pattern compiled, or the reason it is not one (croner's message, without its prefix). */
export function compileCron(pattern: string, timezone: string): Cron | string {
  if (pattern.length > scheduleLimits.cronMaxLength) return `a cron pattern has at most ${scheduleLimits.cronMaxLength} characters`;
  if (pattern.includes("@")) return "nicknames such as @daily are not supported: write the 5 or 6 fields";
  try {
    const cron = new Cron(pattern, { timezone, mode: "5-or-6-parts", paused: true });
    if (cron.nextRun(new Date()) === null) return "the pattern never fires";
    return cron;
  } catch (err) {
    return String((err as Error).message ?? err).replace(/^Cron(Pattern|Options|Date)?: /, "");
  }
}

function cronOf(timing: { cron: string; timezone: string }): Cron {
  const c = compileCron(timing.cron, timing.timezone);
  if (typeof c === "string") throw new Error(`invalid cron pattern ${JSON.stringify(timing.cron)}: ${c}`);
  return c;
}

/** The first fire time strictly after `after`; null when nothing is left. */
export function nextFireAfter(timing: Timing, after: Date): Date | null {
  if ("startAt" in timing) return timing.startAt > after ? timing.startAt : null;
  return cronOf(timing).nextRun(after);
}

/** The `n` fire times from `first` on (`first` included when given). */
export function fireTimesFrom(timing: Timing, first: Date | null, n: number): Date[] {
  if (!first) return [];
  if ("startAt" in timing) return [first];
  return [first, ...cronOf(timing).nextRuns(n - 1, first)].slice(0, n);
}

export interface DueFires {
  /** Fire times to start now, oldest first. */
  start: Date[];
  /** Missed fire times recorded one by one (the latest `missedRecorded`), oldest first. */
  missed: Date[];
  /** How many fire times were missed and not started; a lower bound past `missedRecorded + catchUpLimitMax`. */
  missedCount: number;
  /** The next fire time after `now`; null when nothing is left (a one-off that fired). */
  next: Date | null;
}

/**
 * What a claim at `now` does with a schedule whose next fire time `due` has come: the fire
 * times in [due, now] split into those that start and those that were missed, and the
 * next fire time after `now`.
 */
export function dueFires(timing: Timing, due: Date, now: Date, policy: CatchUpPolicy, limit: number, graceMs: number = scheduleLimits.graceMs): DueFires {
  const cutoff = new Date(now.getTime() - graceMs);
  if ("startAt" in timing) {
    const missed = due < cutoff;
    const start = !missed || policy !== "none" ? [due] : [];
    return { start, missed: start.length ? [] : [due], missedCount: start.length ? 0 : 1, next: null };
  }
  const cron = cronOf(timing);
  // Missed: fire times in [due, cutoff); the latest few, from croner's backwards walk.
  let missed: Date[] = [];
  let missedCount = 0;
  if (due < cutoff) {
    const recent = [due, ...cron.previousRuns(scheduleLimits.missedRecorded + scheduleLimits.catchUpLimitMax, cutoff).filter((t) => t > due)].sort((a, b) => a.getTime() - b.getTime());
    missed = recent;
    // Counted up to the bound: a long downtime of a 1-second pattern misses millions, and
    // walking them all would hold the claim; `missedCount` is then a lower bound.
    missedCount = recent.length;
  }
  const caughtUp = policy === "none" ? [] : missed.slice(-(policy === "latest" ? 1 : limit));
  const dropped = missed.slice(0, missed.length - caughtUp.length);
  // On time: fire times in [max(due, cutoff), now].
  const onTime: Date[] = [];
  let t: Date | null = due >= cutoff ? due : cron.nextRun(new Date(cutoff.getTime() - 1));
  while (t && t <= now && onTime.length < scheduleLimits.firesPerClaim) {
    onTime.push(t);
    t = cron.nextRun(t);
  }
  const start = [...caughtUp, ...onTime].slice(-scheduleLimits.firesPerClaim);
  const next = onTime.length === scheduleLimits.firesPerClaim ? t : cron.nextRun(now);
  return { start, missed: dropped.slice(-scheduleLimits.missedRecorded), missedCount: missedCount - caughtUp.length, next };
}
