/// <reference lib="dom" />
/**
 * The browser test harness: a real `fabric dev` process (embedded Postgres in a temp data
 * dir) and Debian's Chromium driven by playwright-core. Chromium is started with the
 * switches that keep it from calling home (this network refuses such calls) and a fresh
 * profile. Console errors and uncaught page errors are collected per page, so a test can
 * assert that there were none.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer, connect, type Socket } from "node:net";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { fabricBin, repoRoot } from "../helpers/processes.js";

export const chromiumPath = process.env.FABRIC_CHROMIUM ?? "/usr/bin/chromium";
export const screenshotDir = join(repoRoot, "test-results/console");
export const hasChromium = existsSync(chromiumPath);

/** Builds the console into dist/console (what `fabric dev` serves), failing the suite on a build error or over budget. */
export function buildConsole(): string {
  const vite = join(repoRoot, "node_modules/.bin/vite");
  const r = spawnSync(vite, ["build", "--config", "console/vite.config.ts", "--logLevel", "warn"], { cwd: repoRoot, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`console build failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout.split("\n").find((l) => l.startsWith("console first-load JavaScript")) ?? "";
}

export interface DevProcess {
  child: ChildProcess;
  url: string;
  signInLink: string;
  apiKey: string;
  organizationId: string;
  stdout(): string;
  stop(): Promise<void>;
}

/** Starts `fabric dev` on free ports over `dataDir` and reads what it prints. */
export async function startDev(dataDir: string): Promise<DevProcess> {
  const child = spawn(process.execPath, [fabricBin, "dev", "--port", "0", "--grpc-port", "0", "--host", "127.0.0.1", "--data-dir", dataDir], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: "warn", FABRIC_ENV: "development", FABRIC_DEV_API_KEY: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const printed = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fabric dev printed no URLs in 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const link = /console +(http:\/\/\S+#sign-in=\S+)/.exec(out)?.[1];
      const key = /API key +(fab_\S+)/.exec(out)?.[1];
      const org = /organization +(\S+)/.exec(out)?.[1];
      if (link && key && org) {
        clearTimeout(timer);
        resolve({ link, key, org });
      }
    });
    void exited.then(() => reject(new Error(`fabric dev exited before it was ready:\n${out}\n${err}`)));
  });
  return {
    child,
    url: printed.link!.slice(0, printed.link!.indexOf("/#")),
    signInLink: printed.link!,
    apiKey: printed.key!,
    organizationId: printed.org!,
    stdout: () => out,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface Browser {
  /** A fresh, isolated browser profile (its own sessionStorage). */
  newContext(): Promise<BrowserContext>;
  /** A page whose console errors and page errors are collected into `errors`. */
  newPage(context: BrowserContext): Promise<{ page: Page; errors: string[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  // launch() gives the browser a fresh temporary profile of its own (and removes it on close).
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    newContext: () => browser.newContext({ viewport: { width: 1400, height: 900 } }),
    async newPage(context) {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
      return { page, errors };
    },
    async close() {
      await browser.close();
    },
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Serious and critical axe-core violations on the page as it is now (WCAG 2.x A and AA rules). */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  // Evaluated over the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    return axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }, resultTypes: ["violations"] });
  });
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface Proxy {
  /** The proxy's base URL: the browser talks to Fabric through it. */
  url: string;
  /** Cuts every open connection, and refuses new ones until `up()`: the network is gone. */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of `fabric dev`, so a test can drop the browser's connections
 * (its event streams included) the way a network change does, while Fabric runs on.
 */
export async function startProxy(target: string): Promise<Proxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = connect(Number(port), hostname);
    open.add(client).add(upstream);
    const cleanup = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", cleanup).on("close", cleanup);
    upstream.on("error", cleanup).on("close", cleanup);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    down() {
      refusing = true;
      for (const s of open) s.destroy();
    },
    up() {
      refusing = false;
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
