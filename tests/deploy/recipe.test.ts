/**
 * The deploy recipe (deploy/) cannot be built into an image on this machine, so what can
 * be checked is: the compose file and the Kubernetes manifests parse, have the shape
 * their tools need, and every Fabric container in them runs a command the built CLI has,
 * with flags that command documents, and sets only environment variables src/config.ts
 * reads; the Dockerfile installs production dependencies only, runs as non-root, sets
 * HOST=0.0.0.0 and checks /healthz. tests/packaging/pack.test.ts runs the image's
 * command sequence itself.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { settingNames } from "../../src/config.js";
import { fabricBin, repoRoot } from "../helpers/processes.js";

const read = (f: string) => readFileSync(join(repoRoot, "deploy", f), "utf8");

interface FabricContainer {
  where: string;
  args: string[];
  env: string[];
}

const helpCache = new Map<string, { code: number | null; text: string }>();
/** `fabric <command> --help` of the built CLI. */
function help(command: string) {
  if (!helpCache.has(command)) {
    const r = spawnSync(process.execPath, [fabricBin, command, "--help"], { encoding: "utf8" });
    helpCache.set(command, { code: r.status, text: r.stdout });
  }
  return helpCache.get(command)!;
}

/** Problems with one container: an unknown command or flag, an unknown variable. */
function problems(c: FabricContainer): string[] {
  const out: string[] = [];
  const [command, ...rest] = c.args;
  const h = help(command ?? "");
  if (!command || h.code !== 0) out.push(`${c.where}: \`fabric ${command}\` is not a command of the built CLI`);
  for (const flag of rest.filter((a) => a.startsWith("--"))) if (!h.text.includes(flag.split("=")[0]!)) out.push(`${c.where}: \`fabric ${command}\` documents no ${flag}`);
  for (const name of c.env) if (!settingNames.includes(name)) out.push(`${c.where}: ${name} is not a setting src/config.ts reads`);
  return out;
}

function composeContainers(): FabricContainer[] {
  const compose = parse(read("compose.yaml"), { merge: true }) as { services: Record<string, any> };
  return Object.entries(compose.services)
    .filter(([, s]) => s.image === "fabric:local")
    .map(([name, s]) => ({ where: `compose ${name}`, args: s.command as string[], env: Object.keys(s.environment ?? {}) }));
}

function kubernetesContainers(): FabricContainer[] {
  const docs = parseAllDocuments(read("kubernetes/fabric.yaml")).map((d) => d.toJS());
  const secretKeys = docs.filter((d) => d.kind === "Secret").flatMap((d) => Object.keys(d.stringData ?? {}));
  return docs
    .filter((d) => d.kind === "Deployment" || d.kind === "Job")
    .flatMap((d) =>
      (d.spec.template.spec.containers as any[]).map((c) => ({
        where: `kubernetes ${d.kind} ${d.metadata.name}`,
        args: c.args as string[],
        env: [...(c.env ?? []).map((e: { name: string }) => e.name), ...((c.envFrom ?? []).some((e: any) => e.secretRef) ? secretKeys : [])],
      })),
    );
}

describe("the checker", () => {
  it("fails an unknown command, flag or variable (positive control)", () => {
    expect(problems({ where: "x", args: ["serve", "--no-migrate"], env: ["DATABASE_URL", "JWT_SECRET"] })).toEqual([]);
    expect(problems({ where: "x", args: ["server"], env: [] })).toEqual(["x: `fabric server` is not a command of the built CLI"]);
    expect(problems({ where: "x", args: ["serve", "--migrate-first"], env: ["DATABSE_URL"] })).toEqual(["x: `fabric serve` documents no --migrate-first", "x: DATABSE_URL is not a setting src/config.ts reads"]);
  });
});

describe("deploy/compose.yaml", () => {
  const compose = parse(read("compose.yaml"), { merge: true }) as { services: Record<string, any> };

  it("has Postgres, a migration step, two control planes behind a load balancer and three executors", () => {
    const s = compose.services;
    expect(s.postgres.image).toMatch(/^postgres:1[5-9]/);
    expect(s.migrate.command).toEqual(["migrate"]);
    const planes = Object.entries(s).filter(([, v]: [string, any]) => v.command?.[0] === "serve");
    expect(planes).toHaveLength(2);
    for (const [, p] of planes as [string, any][]) {
      expect(p.command).toContain("--no-migrate");
      expect(p.depends_on.migrate.condition).toBe("service_completed_successfully");
      expect(p.healthcheck.test.join(" ")).toContain("/readyz");
    }
    expect(s.executor.command).toEqual(["executor"]);
    expect(s.executor.deploy.replicas).toBe(3);
    expect(s.executor.depends_on.migrate.condition).toBe("service_completed_successfully");
    const nginx = read("nginx.conf");
    for (const [name] of planes) expect(nginx).toContain(`server ${name}:3001`);
    expect(s.lb.volumes[0]).toMatch(/nginx\.conf/);
  });

  it("runs only commands and flags of the built CLI, with settings src/config.ts knows", () => {
    const containers = composeContainers();
    expect(containers.length).toBe(4); // migrate, two control planes, executor
    expect(containers.flatMap(problems)).toEqual([]);
  });
});

describe("deploy/kubernetes/fabric.yaml", () => {
  const docs = parseAllDocuments(read("kubernetes/fabric.yaml")).map((d) => d.toJS());

  it("has a migration Job and Deployments for both planes; the control plane is probed on /readyz and /healthz", () => {
    for (const d of docs) expect(d.apiVersion && d.kind && d.metadata?.name, JSON.stringify(d).slice(0, 80)).toBeTruthy();
    const job = docs.find((d) => d.kind === "Job");
    expect(job.spec.template.spec.containers[0].args).toEqual(["migrate"]);
    const cp = docs.find((d) => d.kind === "Deployment" && d.metadata.name === "fabric-control-plane");
    const ex = docs.find((d) => d.kind === "Deployment" && d.metadata.name === "fabric-executor");
    const c = cp.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    expect(c.livenessProbe.httpGet.path).toBe("/healthz");
    expect(cp.spec.selector.matchLabels).toEqual(cp.spec.template.metadata.labels);
    expect(ex.spec.selector.matchLabels).toEqual(ex.spec.template.metadata.labels);
    for (const d of [job, cp, ex]) expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  });

  it("runs only commands and flags of the built CLI, with settings src/config.ts knows", () => {
    const containers = kubernetesContainers();
    expect(containers.length).toBe(3);
    expect(containers.flatMap(problems)).toEqual([]);
  });
});

describe("deploy/Dockerfile", () => {
  const dockerfile = read("Dockerfile").replace(/\\\n/g, " ");
  const final = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));

  it("is multi-stage; the image installs the packed tarball with production dependencies only and runs as non-root", () => {
    expect(dockerfile.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm pack /);
    expect(final).toMatch(/npm install --omit=dev .*\/tmp\/pkg\/\*\.tgz/);
    expect(final).toMatch(/^USER node$/m);
    expect(final).toMatch(/HEALTHCHECK .*\/healthz/);
  });

  it("sets HOST=0.0.0.0 and only settings src/config.ts knows; its default command exists", () => {
    const env = [...final.matchAll(/^ENV (.+)$/gm)].flatMap((m) => [...m[1]!.matchAll(/(\w+)=/g)].map((x) => x[1]!)).filter((n) => n !== "PATH");
    expect(final).toMatch(/HOST=0\.0\.0\.0/);
    const cmd = JSON.parse(final.match(/^CMD (\[.*\])$/m)![1]!) as string[];
    expect(JSON.parse(final.match(/^ENTRYPOINT (\[.*\])$/m)![1]!)).toEqual(["fabric"]);
    expect(problems({ where: "Dockerfile", args: cmd, env })).toEqual([]);
  });
});
