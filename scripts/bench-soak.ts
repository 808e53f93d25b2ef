/**
 * `npm run bench:soak [-- --minutes 5 --rate 10]`: a steady submission of runs against
 * `fabric serve` and two `fabric executor` processes on a fresh Postgres database, with
 * retention on (FABRIC_RETENTION_SECONDS, the control plane's pruner), for some minutes.
 * Every minute it prints each process's RSS, the p50/p99 latency (created → finished, by the
 * database clock) of the runs finished in that minute, and the size of the tables that grow
 * with runs (pg_total_relation_size); at the end it says whether each stayed flat (the last
 * minute against the second, once retention has started pruning). Not in CI: minutes long,
 * and its figures need a quiet machine.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { bootstrapDevOrganization } from "../src/services/tenancy/dev-organization.js";
import { createTestDatabase } from "../tests/helpers/database.js";
import { spawnExecutor } from "../tests/helpers/processes.js";
import { spawnServe } from "../tests/helpers/serve-process.js";

const { values } = parseArgs({ options: { minutes: { type: "string", default: "5" }, rate: { type: "string", default: "10" }, retention: { type: "string", default: "60" } } });
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const retentionSeconds = Number(values.retention);
const tables = ["workflow_runs", "workflow_run_nodes", "events", "usage_records"];

const rssMb = (pid: number) => {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return NaN;
  }
};
const pct = (xs: number[], p: number) => (xs.length ? xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);

async function main() {
  const database = await createTestDatabase({ engine: "postgres", poolMax: 2 });
  const boot = await bootstrapDevOrganization(database.db);
  const env = {
    DATABASE_URL: database.url!,
    DATABASE_POOL_MAX: "8",
    WORKER_CONCURRENCY: "16",
    WORKER_POLL_INTERVAL: "200ms",
    FABRIC_RETENTION_SECONDS: String(retentionSeconds),
    FABRIC_RETENTION_INTERVAL_MS: "5000",
  };
  const serve = await spawnServe(env, { timeoutMs: 60_000 });
  const executors = [spawnExecutor(env, "soak-0"), spawnExecutor(env, "soak-1")];
  const sql = postgres(database.url!, { max: 1, onnotice: () => {} });
  const api = async (path: string, body?: unknown) => {
    const res = await fetch(serve.restUrl + path, {
      method: body ? "POST" : "GET",
      headers: { authorization: `Bearer ${boot.apiKey}`, "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as any };
  };
  const wf = await api("/v1/workflows", {
    name: "soak",
    nodes: [
      { key: "shout", operation: "text.transform_basic", config: { op: "upper" }, inputs: { text: "$context.topic" }, outputs: { text: "$context.shouted" } },
      { key: "gen", operation: "ai.generate", config: { provider: "echo" }, depends_on: ["shout"], inputs: { prompt: "$context.shouted" }, outputs: { text: "$context.answer" } },
    ],
  });
  if (wf.status >= 300) throw new Error(`workflow: ${wf.status} ${JSON.stringify(wf.body)}`);
  const workflowId = wf.body.data.id as string;

  console.log(`soak: ${minutes} min at ${rate} runs/s, retention ${retentionSeconds} s (pruned every 5 s), serve + 2 executors, Postgres`);
  let submitted = 0;
  let refused = 0;
  const started = Date.now();
  const submitter = setInterval(() => {
    submitted++;
    void api("/v1/workflow-runs", { workflow_id: workflowId, input: { topic: `t${submitted}` } }).then((r) => {
      if (r.status !== 202 && r.status !== 200) refused++;
    }, () => refused++);
  }, 1000 / rate);

  const rows: { minute: number; rss: number[]; p50: number; p99: number; finished: number; sizes: number[] }[] = [];
  console.log(`| minute | RSS serve / exec 0 / exec 1 (MB) | runs finished | p50 ms | p99 ms | ${tables.join(" / ")} (MB) | runs kept |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (let m = 1; m <= minutes; m++) {
    await new Promise((r) => setTimeout(r, started + m * 60_000 - Date.now()));
    const lat = await sql`SELECT extract(epoch FROM finished_at - created_at) * 1000 AS ms FROM workflow_runs WHERE finished_at > now() - interval '60 seconds' AND status = 'completed'`;
    const ms = lat.map((r) => Number(r.ms));
    const sizes = await Promise.all(tables.map(async (t) => Number((await sql`SELECT pg_total_relation_size(${t}::regclass) AS b`)[0]!.b) / 1048576));
    const [kept] = await sql`SELECT count(*)::int AS n FROM workflow_runs`;
    const row = { minute: m, rss: [serve.child.pid!, ...executors.map((e) => e.child.pid!)].map(rssMb), p50: Math.round(pct(ms, 50)), p99: Math.round(pct(ms, 99)), finished: ms.length, sizes };
    rows.push(row);
    console.log(`| ${m} | ${row.rss.join(" / ")} | ${row.finished} | ${row.p50} | ${row.p99} | ${sizes.map((s) => s.toFixed(2)).join(" / ")} | ${kept!.n} |`);
  }
  clearInterval(submitter);
  console.log(`submitted ${submitted}, refused ${refused}`);

  // Flat: the last minute against the second (the first warms up; retention prunes from the second on).
  if (rows.length >= 3) {
    const base = rows[1]!;
    const last = rows.at(-1)!;
    // Flat: at most `rel` above the second minute's figure, plus `abs` (noise on small figures).
    const verdict = (name: string, a: number, b: number, rel: number, abs: number) => console.log(`${name}: ${a} → ${b} ${b <= a * (1 + rel) + abs ? "flat" : "GREW"}`);
    ["serve", "executor 0", "executor 1"].forEach((n, i) => verdict(`RSS ${n} (MB)`, base.rss[i]!, last.rss[i]!, 0.25, 5));
    verdict("p50 (ms)", base.p50, last.p50, 0.5, 20);
    verdict("p99 (ms)", base.p99, last.p99, 0.5, 50);
    tables.forEach((t, i) => verdict(`${t} (MB)`, Number(base.sizes[i]!.toFixed(2)), Number(last.sizes[i]!.toFixed(2)), 0.25, 0.25));
  }

  await sql.end();
  for (const e of executors) e.child.kill("SIGTERM");
  await serve.stop(5000);
  await Promise.all(executors.map((e) => e.exited));
  await database.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
