/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
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
import { bootstrapDevOrganization } from "../../src/services/tenancy/dev-organization.js";
import { engine } from "../helpers/database.js";
import { accessibilityViolations, buildConsole, hasChromium, launchBrowser, screenshot, startDev, startProxy, type Browser, type DevProcess, type Proxy } from "./browser.js";

const bulkRuns = 10_000;
let dataDir: string;
let dev: DevProcess;
let browser: Browser;
/** The browser reaches Fabric through this proxy, which can drop its connections. */
let proxy: Proxy;
const site = () => proxy.url;
let owner: BrowserContext;
const figures: string[] = [];
let smokeRunId = "";
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

/** Polls for a condition that a live page reaches by itself (events arriving); generous for a loaded machine. */
const poll = <T,>(fn: () => Promise<T> | T) => expect.poll(fn, { timeout: 30_000, interval: 100 });
const slow = 120_000;

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

/**
 * The owner's tab, signed in by the first test. Credentials live in the tab's
 * sessionStorage (by design: another tab signs in on its own), so the tests share it;
 * its console errors are collected afresh for each test.
 */
let ownerTab: { page: Page; errors: string[] };
function signedInPage(): { page: Page; errors: string[] } {
  ownerTab.errors.length = 0;
  return ownerTab;
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
    proxy = await startProxy(dev.url);
    // Echo is free by default: price it, so the spend page has something to draw, and set caps to show.
    const policy = await api(`/v1/organizations/${dev.organizationId}/policy`, { method: "PUT", json: { price_overrides: [{ provider: "echo", model: "*", input_usd_per_mtok: "25", output_usd_per_mtok: "100" }] } });
    expect(policy.status, JSON.stringify(policy.body)).toBe(200);
    const budget = await api(`/v1/organizations/${dev.organizationId}/budget`, { method: "PUT", json: { daily_limit_usd: "5", monthly_limit_usd: "100" } });
    expect(budget.status, JSON.stringify(budget.body)).toBe(200);
    browser = await launchBrowser();
    owner = await browser.newContext();
  }, 180_000);

  afterAll(async () => {
    await owner?.close().catch(() => {});
    await browser?.close();
    await proxy?.close();
    await dev?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    console.log(`[console] figures:\n  ${figures.join("\n  ")}`);
  });

  it("signs in with the one-time link, which then no longer works", async () => {
    ownerTab = await browser.newPage(owner);
    const { page, errors } = ownerTab;
    await page.goto(dev.signInLink.replace(dev.url, site()));
    await page.waitForURL((u) => u.pathname === "/runs");
    expect(new URL(page.url()).hash).toBe(""); // the token left the address bar
    await poll(() => page.getByTestId("who").innerText()).toContain("owner");
    await page.getByTestId("runs-table").waitFor();
    note(`first page after the sign-in link: ${await screenshot(page, "first-page")}`);
    // A reload keeps the tab signed in.
    await page.reload();
    await poll(() => page.getByTestId("who").innerText()).toContain("owner");
    expectNoConsoleErrors(errors);

    // Single use: a second browser presenting the same link lands on the sign-in page with the reason.
    const other = await browser.newContext();
    const second = await browser.newPage(other);
    await second.page.goto(dev.signInLink.replace(dev.url, site()));
    await second.page.getByText("The sign-in link did not work").waitFor();
    expect(await second.page.getByTestId("request-id").innerText()).not.toBe("");
    expect(await accessibilityViolations(second.page)).toEqual([]);
    await screenshot(second.page, "sign-in");
    await other.close();
  }, slow);

  it("starts the smoke workflow and watches its graph turn green node by node, then reads the ai.generate node", async () => {
    await registerWorkflow({
      name: "smoke",
      nodes: [
        { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } },
        { key: "gen", operation: "ai.generate", config: { provider: "echo" }, depends_on: ["shout"], inputs: { prompt: "$context.shouted" }, outputs: { text: "$context.answer" } },
      ],
    });
    const { page, errors } = signedInPage();
    await page.addInitScript(recordStatuses);
    await page.goto(`${site()}/workflows/smoke`);
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const input = page.getByLabel("Input (a JSON object; it becomes the run's context)");
    await input.fill("{not json");
    await page.getByText("Input not valid JSON").waitFor(); // checked before anything is sent
    await input.fill('{"topic": "hello world"}');
    await page.getByRole("button", { name: /Start run of v1/ }).click();
    await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
    smokeRunId = new URL(page.url()).pathname.split("/").pop()!;
    await poll(() => runStatus(page)).toBe("completed");
    await poll(() => nodeStatus(page, "gen")).toBe("succeeded");
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
    expect(await panel.getByTestId("routing").innerText()).toMatch(/provider\s+echo/i);
    expect(await panel.getByTestId("cost").innerText()).toMatch(/actual/i);
    expect(await panel.getByTestId("attempts").innerText()).toMatch(/succeeded/);
    expect(await accessibilityViolations(page)).toEqual([]);
    note(`run page screenshot: ${await screenshot(page, "run-page")}`);
    expectNoConsoleErrors(errors);
  }, slow);

  it("signals a waiting run with a JSON payload and sees it complete, also across a dropped connection", async () => {
    await registerWorkflow({
      name: "approval",
      nodes: [
        { key: "gate", operation: "workflow.wait_signal", config: { timeout_ms: 600_000 }, outputs: { decision: "$context.decision" } },
        { key: "announce", operation: "text.transform_basic", config: { op: "upper" }, depends_on: ["gate"], inputs: { text: "$context.decision" }, outputs: { text: "$context.announced" } },
      ],
    });
    const first = await startRun("approval");
    const second = await startRun("approval");
    const { page, errors } = signedInPage();
    await page.goto(`${site()}/runs/${first.id}`);
    await poll(() => runStatus(page)).toBe("waiting");
    await page.getByRole("button", { name: "Signal…" }).click();
    const payload = page.getByLabel(/^Payload/);
    await payload.fill("[1, 2]");
    await page.getByRole("button", { name: "Send signal" }).click();
    await page.getByText("Payload must be a JSON object").waitFor(); // refused before sending
    await payload.fill('{"decision": "approved"}');
    await page.getByRole("button", { name: "Send signal" }).click();
    await poll(() => runStatus(page)).toBe("completed");
    await poll(() => nodeStatus(page, "announce")).toBe("succeeded");
    await page.locator('[data-node-key="announce"]').click();
    await page.getByTestId("node-output").getByText('"APPROVED"').first().waitFor();

    // The second run: the connection drops while it waits; it is signalled meanwhile (over the
    // API); back online, the stream resumes from the last event it had and the graph catches up.
    await page.goto(`${site()}/runs/${second.id}`);
    await poll(() => runStatus(page)).toBe("waiting");
    await page.evaluate(() => {
      const states: string[] = ((window as unknown as { streamStates: string[] }).streamStates = []);
      new MutationObserver(() => states.push(document.querySelector("[data-stream-state]")?.getAttribute("data-stream-state") ?? "")).observe(document.querySelector("[data-stream-state]")!, { attributes: true });
    });
    proxy.down();
    try {
      await poll(() => page.locator("[data-stream-state]").getAttribute("data-stream-state")).toBe("reconnecting");
      const signalled = await api(`/v1/workflow-runs/${second.id}/signal`, { json: { payload: { decision: "later" } } });
      expect(signalled.status).toBe(200);
    } finally {
      proxy.up();
    }
    await poll(() => runStatus(page)).toBe("completed");
    await poll(() => nodeStatus(page, "announce")).toBe("succeeded");
    const states = await page.evaluate(() => (window as unknown as { streamStates: string[] }).streamStates);
    expect(states).toContain("reconnecting");
    // Nothing lost, nothing twice: the timeline holds each event id once, in order.
    const ids = await page.getByTestId("timeline").locator("li > span.muted").allInnerTexts();
    const numbers = ids.map((t) => Number(t.slice(1)));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect((await page.getByTestId("timeline").innerText()).match(/workflow\.node\.completed/g)?.length).toBe(2);
    note(`stream states across the drop: ${states.join(" → ")}`);
    // The browser logs the dropped fetch while offline; nothing else may appear.
    expectNoConsoleErrors(errors, [/net::ERR_/]);
  }, slow);

  it("shows a failed run's error and reruns it from the failure", async () => {
    await registerWorkflow({
      name: "fragile",
      nodes: [
        { key: "prepare", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.prepared" } },
        { key: "check", operation: "workflow.validate_context", depends_on: ["prepare"], config: { schema: { type: "object", required: ["approved"] } }, policy: { max_attempts: 1 } },
      ],
    });
    const failed = await startRun("fragile", { topic: "x" });
    const { page, errors } = signedInPage();
    await page.goto(`${site()}/runs/${failed.id}`);
    await poll(() => runStatus(page)).toBe("failed");
    await page.getByTestId("run-error").waitFor();
    await page.locator('[data-node-key="check"]').click();
    await page.getByTestId("node-error").waitFor();
    await page.getByRole("button", { name: "Rerun from failure" }).click();
    await page.waitForURL((u) => u.pathname.startsWith("/runs/") && !u.pathname.endsWith(failed.id));
    expect(await page.getByTestId("rerun-of").getAttribute("href")).toBe(`/runs/${failed.id}`);
    await poll(() => runStatus(page)).toBe("failed");
    // The rerun kept what succeeded: `prepare` was not executed again.
    await page.locator('[data-node-key="prepare"]').click();
    expect(await page.getByTestId("node-panel").getByTestId("attempts").count()).toBe(0);
    expectNoConsoleErrors(errors);
  }, slow);

  it("as a viewer shows no action buttons, and the API refuses the actions when forced", async () => {
    const email = `viewer-${randomUUID().slice(0, 8)}@console.test`;
    const password = "viewer-password-1";
    const signed = await api("/v1/auth/signup", { json: { email, password, display_name: "Vera Viewer" } });
    expect(signed.status, JSON.stringify(signed.body)).toBe(201);
    // Joining an organization takes an invitation the user accepts.
    const invited = await api(`/v1/organizations/${dev.organizationId}/invitations`, { json: { email, role: "viewer" } });
    expect(invited.status, JSON.stringify(invited.body)).toBeLessThan(300);
    const added = await api("/v1/invitations/accept", { json: { token: invited.body.data.token }, token: signed.body.data.tokens.access_token });
    expect(added.status, JSON.stringify(added.body)).toBeLessThan(300);
    expect(added.body.data).toMatchObject({ role: "viewer", organization_id: dev.organizationId });
    const waiting = await startRun("approval");

    const context = await browser.newContext();
    const { page, errors } = await browser.newPage(context);
    let bearer = "";
    page.on("request", (r) => {
      const h = r.headers()["authorization"];
      if (h?.startsWith("Bearer ey")) bearer = h.slice("Bearer ".length);
    });
    await page.goto(`${site()}/runs`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await poll(() => page.getByTestId("who").innerText()).toContain("viewer");
    await page.goto(`${site()}/runs/${waiting.id}`);
    await poll(() => runStatus(page)).toBe("waiting");
    await page.locator('[data-node-key="gate"]').click();
    await page.getByTestId("node-panel").waitFor();
    expect(await page.locator("[data-action]").count()).toBe(0);
    expect(await page.getByRole("group", { name: "Run actions" }).count()).toBe(0);
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.goto(`${site()}/workflows/approval`);
    await page.getByRole("heading", { name: "Graph" }).waitFor();
    expect(await page.getByRole("heading", { name: "Start a run" }).count()).toBe(0);

    // Forced: the viewer's own credentials cannot take the actions the console hid.
    const token = (await api("/v1/auth/login", { json: { email, password } })).body.data.tokens.access_token;
    for (const [action, body] of [["cancel", {}], ["pause", {}], ["signal", { payload: { decision: "forced" } }], ["rerun", {}]] as const) {
      const r = await api(`/v1/workflow-runs/${waiting.id}/${action}`, { json: body, token, org: dev.organizationId });
      expect(r.status, `${action}: ${JSON.stringify(r.body)}`).toBe(403);
      expect(r.body.code).toBe("permission_denied");
    }
    expect((await api(`/v1/workflow-runs/${waiting.id}`)).body.data.status).toBe("waiting");

    // Signing out ends the session at once: the token the page used is refused from then on.
    expect(bearer).not.toBe("");
    expect((await api("/v1/me", { token: bearer, org: dev.organizationId })).status).toBe(200);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to Fabric" }).waitFor();
    expect((await api("/v1/me", { token: bearer, org: dev.organizationId })).status).toBe(401);
    expectNoConsoleErrors(errors);
    await context.close();
  }, slow);

  it("answers another organization's run id typed into the URL with not found", async () => {
    const email = `other-${randomUUID().slice(0, 8)}@console.test`;
    const signed = await api("/v1/auth/signup", { json: { email, password: "other-password-1" } });
    const token = signed.body.data.tokens.access_token;
    const org = (await api("/v1/organizations", { json: { slug: `other-${randomUUID().slice(0, 8)}`, name: "Other" }, token })).body.data.id;
    expect((await api("/v1/workflows", { json: { name: "theirs", nodes: [{ key: "a", operation: "workflow.noop" }] }, token, org })).status).toBeLessThan(300);
    const theirs = (await api("/v1/workflow-runs", { json: { workflow_name: "theirs" }, token, org })).body.data.id;
    const { page, errors } = signedInPage();
    await page.goto(`${site()}/runs/${theirs}`);
    await page.getByTestId("not-found").waitFor();
    expect(await page.getByTestId("request-id").innerText()).toMatch(/\S/);
    expect(await page.locator("body").innerText()).not.toContain("theirs");
    expectNoConsoleErrors(errors, [/status of 404/]);
  }, slow);

  it("renders a 200-node workflow's graph in about a second", async () => {
    const nodes = Array.from({ length: 200 }, (_, i) => ({ key: `step-${i}`, operation: "workflow.noop", depends_on: i === 0 ? [] : [`step-${Math.floor((i - 1) / 2)}`] }));
    await registerWorkflow({ name: "wide", nodes });
    const { page, errors } = signedInPage();
    const t0 = Date.now();
    await page.goto(`${site()}/workflows/wide`);
    const figure = page.locator("figure.dag[data-render-ms]");
    await figure.waitFor();
    const wall = Date.now() - t0;
    const layoutAndPaint = Number(await figure.getAttribute("data-render-ms"));
    expect(await page.locator("[data-node-key]").count()).toBe(200);
    note(`200-node graph: layout + first paint ${layoutAndPaint} ms (navigation to graph ${wall} ms)`);
    expect(layoutAndPaint).toBeLessThan(3000); // the goal is ≤ 1 s; loose for a loaded machine
    const run = await startRun("wide");
    await page.goto(`${site()}/runs/${run.id}`);
    await poll(() => runStatus(page)).toBe("completed");
    await poll(() => page.locator('[data-status="succeeded"]').count()).toBe(200);
    note(`200-node run page: layout + first paint ${await page.locator("figure.dag").getAttribute("data-render-ms")} ms`);
    await screenshot(page, "run-200-nodes");
    expectNoConsoleErrors(errors);
  }, slow);

  it("keeps the runs list responsive with 10,000 runs", async () => {
    const { page, errors } = signedInPage();
    const rows = () => page.locator("[data-testid=runs-table] tbody tr").count();
    const timed = async (what: string, act: () => Promise<unknown>, until: () => Promise<boolean>) => {
      const t0 = Date.now();
      await act();
      await poll(until).toBe(true);
      const ms = Date.now() - t0;
      note(`${what}: ${ms} ms`);
      expect(ms).toBeLessThan(5000);
    };
    await timed("10,000 runs: first page of the list", () => page.goto(`${site()}/runs`), async () => (await rows()) === 50);
    await timed("10,000 runs: first page filtered by workflow", () => page.goto(`${site()}/runs?workflow=bulk`), async () => (await rows()) === 50);
    for (const n of [100, 150, 200]) await timed(`10,000 runs: load more to ${n}`, () => page.getByTestId("load-more").click(), async () => (await rows()) === n);
    await timed("10,000 runs: text search for one idempotency key", () => page.goto(`${site()}/runs?q=bulk-9999`), async () => (await rows()) === 1);
    await timed("10,000 runs: failed ones only", () => page.goto(`${site()}/runs?workflow=bulk&status=failed`), async () => (await rows()) === 50);
    expectNoConsoleErrors(errors);
  }, slow);

  it("has no serious or critical accessibility violations on any page, and shows the spend page", async () => {
    const { page, errors } = signedInPage();
    const pages = ["/runs", `/runs/${smokeRunId}`, "/workflows", "/workflows/smoke?diff=1", "/spend", "/access/members", "/access/invitations", "/access/api-keys", "/access/service-accounts", "/access/audit", "/events?replay=1", "/webhooks"];
    const found: Record<string, string[]> = {};
    for (const path of pages) {
      await page.goto(`${site()}${path}`);
      await page.locator("main h1").first().waitFor();
      await poll(() => page.getByText(/^Loading /).count()).toBe(0);
      const v = await accessibilityViolations(page);
      if (v.length) found[path] = v;
    }
    expect(found).toEqual({});
    note(`axe-core: no serious or critical violations on ${pages.length + 1} pages (and the sign-in page)`);

    const job = await api("/v1/jobs", { json: { modality: "text", input: { prompt: "summarise the quarter" } } });
    expect(job.status, JSON.stringify(job.body)).toBe(202);
    await page.goto(`${site()}/spend`);
    await page.getByTestId("usage-total").waitFor();
    await page.getByTestId("jobs").waitFor();
    await page.getByTestId("chart-cost-by-workflow").waitFor();
    note(`spend page screenshot: ${await screenshot(page, "spend-page")}`);

    // An API key created from the console: its secret is shown once, with a copy button.
    await page.goto(`${site()}/access/api-keys`);
    await page.getByLabel("Name").fill("from the console");
    await page.getByRole("button", { name: "Create key" }).click();
    expect(await page.getByTestId("secret").innerText()).toMatch(/^fab_/);
    await page.getByRole("button", { name: "Copy" }).waitFor();
    await page.reload();
    await page.getByTestId("api-keys").getByText("from the console").waitFor();
    expect(await page.getByTestId("secret").count()).toBe(0);
    expectNoConsoleErrors(errors);
  }, slow);
});
