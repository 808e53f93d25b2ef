/**
 * Dashboards and alerts as code refer only to metrics that exist: every `fabric_…` name in
 * deploy/grafana/fabric-overview.json and deploy/prometheus/alerts.yml is looked up in the
 * live /metrics output of a control plane with an executor (histogram series by their
 * family). The checker is shown to catch a name that does not exist.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { repoRoot } from "../helpers/processes.js";
import { metricFamilies, scrape } from "./prometheus.js";

const dashboard = JSON.parse(readFileSync(join(repoRoot, "deploy/grafana/fabric-overview.json"), "utf8")) as { panels: { targets?: { expr: string }[] }[] };
const alerts = parse(readFileSync(join(repoRoot, "deploy/prometheus/alerts.yml"), "utf8")) as { groups: { rules: { alert: string; expr: string; annotations?: Record<string, string> }[] }[] };

/** `fabric_*` names in PromQL (and in alert annotations' queries). */
const namesIn = (texts: string[]) => [...new Set(texts.flatMap((t) => [...t.matchAll(/\bfabric_[a-z0-9_]+/g)].map((m) => m[0])))].sort();

/** Names not in the exposition: a histogram's `_bucket`/`_sum`/`_count` series count as its family. */
function missing(names: string[], families: Set<string>): string[] {
  return names.filter((n) => !families.has(n) && !families.has(n.replace(/_(bucket|sum|count)$/, "")));
}

let fabric: TestFabric;
let families: Set<string>;

beforeAll(async () => {
  fabric = await startTestFabric({ metricsPort: 0 });
  families = metricFamilies(await scrape(fabric.controlPlane.metricsUrl!));
});
afterAll(() => fabric?.close());

describe("dashboards and alerts as code", () => {
  const dashboardExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const rules = alerts.groups.flatMap((g) => g.rules);

  it("the dashboard names only metrics that exist", () => {
    const names = namesIn(dashboardExprs);
    expect(names.length).toBeGreaterThan(25);
    expect(missing(names, families)).toEqual([]);
  });

  it("the alert rules name only metrics that exist, and cover the issue's cases", () => {
    const names = namesIn(rules.flatMap((r) => [r.expr, ...Object.values(r.annotations ?? {})]));
    expect(missing(names, families)).toEqual([]);
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(["FabricQueueStuck", "FabricLeaseExpiryStorm", "FabricApiErrorRate", "FabricBudgetNearCap", "FabricWebhookBacklog"]));
  });

  it("the check catches a metric that does not exist (positive control)", () => {
    expect(missing(namesIn(["rate(fabric_nope_total[5m])", "fabric_steps_claimed_total", "fabric_step_duration_seconds_bucket"]), families)).toEqual(["fabric_nope_total"]);
  });
});
