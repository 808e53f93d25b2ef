import { describe, expect, it } from "vitest";
import { compileCron, dueFires, fireTimesFrom, isTimeZone, nextFireAfter } from "./schedule-timing.js";

const iso = (ds: Date[]) => ds.map((d) => d.toISOString());
const at = (s: string) => new Date(s);

describe("cron patterns", () => {
  it("accept 5 and 6 fields and refuse the rest with a reason", () => {
    expect(typeof compileCron("*/5 * * * *", "UTC")).not.toBe("string");
    expect(typeof compileCron("*/2 * * * * *", "UTC")).not.toBe("string");
    expect(compileCron("* * * *", "UTC")).toMatch(/5 or 6 parts|five, six/);
    expect(compileCron("* * * * * * *", "UTC")).toMatch(/5 or 6 parts/);
    expect(compileCron("61 * * * *", "UTC")).toMatch(/minute: 61/);
    expect(compileCron("@daily", "UTC")).toMatch(/nicknames/);
    expect(typeof compileCron("0 0 30 2 *", "UTC")).toBe("string"); // 30 February
    expect(compileCron("x".repeat(200), "UTC")).toMatch(/at most/);
  });

  it("know IANA time zones", () => {
    expect(isTimeZone("Europe/Berlin")).toBe(true);
    expect(isTimeZone("UTC")).toBe(true);
    expect(isTimeZone("Mars/Base")).toBe(false);
    expect(isTimeZone("")).toBe(false);
  });

  it("read the pattern in the schedule's time zone", () => {
    const t = { cron: "0 9 * * *", timezone: "Asia/Tokyo" };
    // 09:00 in Tokyo is 00:00 UTC; the next fire is strictly after the given instant.
    expect(nextFireAfter(t, at("2026-05-31T23:59:59Z"))!.toISOString()).toBe("2026-06-01T00:00:00.000Z");
    expect(nextFireAfter(t, at("2026-06-01T00:00:00Z"))!.toISOString()).toBe("2026-06-02T00:00:00.000Z");
  });
});

describe("daylight saving time (America/New_York)", () => {
  it("a fixed time inside the spring-forward gap fires once, at the end of the gap", () => {
    const t = { cron: "30 2 * * *", timezone: "America/New_York" };
    expect(iso(fireTimesFrom(t, nextFireAfter(t, at("2026-03-07T12:00:00Z")), 3))).toEqual(["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z", "2026-03-10T06:30:00.000Z"]);
  });

  it("a fixed time in the repeated fall-back hour fires once", () => {
    const t = { cron: "30 1 * * *", timezone: "America/New_York" };
    expect(iso(fireTimesFrom(t, nextFireAfter(t, at("2026-10-31T12:00:00Z")), 2))).toEqual(["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]);
  });

  it("an interval pattern fires on every instant of the repeated hour", () => {
    const t = { cron: "*/30 * * * *", timezone: "America/New_York" };
    // 00:30 EDT, 01:00 EDT, 01:30 EDT, 01:00 EST, 01:30 EST, 02:00 EST — 30 minutes apart in absolute time.
    expect(iso(fireTimesFrom(t, nextFireAfter(t, at("2026-11-01T04:15:00Z")), 6))).toEqual([
      "2026-11-01T04:30:00.000Z",
      "2026-11-01T05:00:00.000Z",
      "2026-11-01T05:30:00.000Z",
      "2026-11-01T06:00:00.000Z",
      "2026-11-01T06:30:00.000Z",
      "2026-11-01T07:00:00.000Z",
    ]);
  });

  it("Europe/Berlin midnight moves by an hour of UTC across the change", () => {
    const t = { cron: "0 0 * * *", timezone: "Europe/Berlin" };
    expect(iso(fireTimesFrom(t, nextFireAfter(t, at("2026-03-28T12:00:00Z")), 2))).toEqual(["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"]);
  });
});

describe("due fires and catch-up", () => {
  const every = { cron: "* * * * *", timezone: "UTC" }; // every minute
  const now = at("2026-01-01T12:00:30Z");

  it("a little late is not downtime: every due fire within the grace window starts", () => {
    const d = dueFires({ cron: "* * * * * *", timezone: "UTC" }, at("2026-01-01T12:00:27Z"), now, "none", 10);
    expect(iso(d.start)).toEqual(["2026-01-01T12:00:27.000Z", "2026-01-01T12:00:28.000Z", "2026-01-01T12:00:29.000Z", "2026-01-01T12:00:30.000Z"]);
    expect(d.missedCount).toBe(0);
    expect(d.next!.toISOString()).toBe("2026-01-01T12:00:31.000Z");
  });

  it("none: fires older than the grace window are missed, none start", () => {
    const d = dueFires(every, at("2026-01-01T10:00:00Z"), now, "none", 10);
    // 10:00 … 11:59 are older than 11:59:30; 12:00 is on time.
    expect(iso(d.start)).toEqual(["2026-01-01T12:00:00.000Z"]);
    expect(d.missedCount).toBe(120);
    expect(d.missed.length).toBe(100);
    expect(d.missed.at(-1)!.toISOString()).toBe("2026-01-01T11:59:00.000Z");
    expect(d.next!.toISOString()).toBe("2026-01-01T12:01:00.000Z");
  });

  it("latest: the latest missed fire starts", () => {
    const d = dueFires(every, at("2026-01-01T10:00:00Z"), now, "latest", 10);
    expect(iso(d.start)).toEqual(["2026-01-01T11:59:00.000Z", "2026-01-01T12:00:00.000Z"]);
    expect(d.missedCount).toBe(119);
  });

  it("all: the latest `limit` missed fires start, oldest first", () => {
    const d = dueFires(every, at("2026-01-01T11:50:00Z"), now, "all", 3);
    expect(iso(d.start)).toEqual(["2026-01-01T11:57:00.000Z", "2026-01-01T11:58:00.000Z", "2026-01-01T11:59:00.000Z", "2026-01-01T12:00:00.000Z"]);
    expect(d.missedCount).toBe(7);
    expect(iso(d.missed)[0]).toBe("2026-01-01T11:50:00.000Z");
  });

  it("a long downtime of a 1-second pattern stays bounded", () => {
    const d = dueFires({ cron: "* * * * * *", timezone: "UTC" }, at("2025-12-31T12:00:00Z"), now, "all", 100);
    expect(d.start.length).toBeLessThanOrEqual(200);
    expect(d.missed.length).toBeLessThanOrEqual(100);
    expect(d.missedCount).toBeGreaterThanOrEqual(100); // a lower bound: counting them all would hold the claim
    expect(d.next!.toISOString()).toBe("2026-01-01T12:00:31.000Z");
  });

  it("a one-off fires once; missed, it follows the policy", () => {
    const startAt = at("2026-01-01T12:00:10Z");
    expect(dueFires({ startAt }, startAt, now, "none", 10)).toMatchObject({ start: [startAt], next: null, missedCount: 0 });
    const old = at("2026-01-01T08:00:00Z");
    expect(dueFires({ startAt: old }, old, now, "none", 10)).toMatchObject({ start: [], missed: [old], missedCount: 1, next: null });
    expect(dueFires({ startAt: old }, old, now, "latest", 10)).toMatchObject({ start: [old], next: null });
    expect(nextFireAfter({ startAt }, now)).toBeNull();
  });
});
