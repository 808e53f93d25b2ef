/**
 * Health: `grpc.health.v1.Health` on the gRPC port (Check and Watch, callable with
 * `buf curl`), and readiness that follows the database. On Postgres the control plane and
 * an executor reach the database through a TCP proxy this test owns: cutting it makes
 * REST `/readyz`, the executor's `/readyz` and the gRPC health check fail, and they
 * recover by themselves once it is restored. Nothing shared is stopped.
 */
import { execFile } from "node:child_process";
import { createServer, connect, type Server, type Socket } from "node:net";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/proto/grpc/health/v1/health_pb.js";
import { startControlPlane, type ControlPlane } from "../../src/control-plane/server.js";
import { openDatabase, type Database } from "../../src/db/database.js";
import { startWorker, type Worker } from "../../src/executor/worker.js";
import { createTestDatabase, engine, type TestDatabase } from "../helpers/database.js";
import { eventually, startTestFabric, testLog, testWorkerConfig, type TestFabric } from "../helpers/fabric.js";

const bufCurl = (...args: string[]) => promisify(execFile)("node_modules/.bin/buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: 20_000 });

describe("grpc.health.v1.Health", () => {
  let fabric: TestFabric;
  beforeAll(async () => {
    fabric = await startTestFabric({ worker: false });
  });
  afterAll(() => fabric?.close());

  it("answers Check over buf curl by reflection: the server, a service, an unknown service", async () => {
    const { stdout } = await bufCurl("-d", "{}", `${fabric.grpcUrl}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(stdout)).toEqual({ status: "SERVING" });
    const svc = await bufCurl("-d", '{"service":"fabric.v1.RunService"}', `${fabric.grpcUrl}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(svc.stdout)).toEqual({ status: "SERVING" });
    await expect(bufCurl("-d", '{"service":"nope.Service"}', `${fabric.grpcUrl}/grpc.health.v1.Health/Check`)).rejects.toMatchObject({ stderr: expect.stringContaining("not_found") });
  });

  it("streams the status on Watch", async () => {
    const client = createClient(Health, createGrpcTransport({ baseUrl: fabric.grpcUrl }));
    const abort = new AbortController();
    const first: Status[] = [];
    for await (const res of client.watch({ service: "" }, { signal: abort.signal })) {
      first.push(res.status);
      break; // closes the stream
    }
    abort.abort();
    expect(first).toEqual([Status.SERVING]);
  });
});

/** A TCP proxy to Postgres that the test can cut (drop every connection, refuse new ones) and restore. */
async function startProxy(target: URL) {
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((client) => {
    if (cut) return client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const url = new URL(target.toString());
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return {
    url: url.toString(),
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe.skipIf(engine !== "postgres")("readiness follows the database (Postgres through a proxy)", () => {
  let db: TestDatabase;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let viaProxy: Database;
  let cp: ControlPlane;
  let worker: Worker;

  beforeAll(async () => {
    db = await createTestDatabase({ engine: "postgres" });
    proxy = await startProxy(new URL(db.url!));
    viaProxy = await openDatabase({ url: proxy.url, poolMax: 4, migrate: false });
    cp = await startControlPlane({ config: { HOST: "127.0.0.1", PORT: 0, GRPC_PORT: 0, FABRIC_ENV: "development", FABRIC_MAX_BODY_BYTES: 1 << 20, JWT_SECRET: undefined, FABRIC_SECRETS_KEY: undefined, FABRIC_WEBHOOKS_ALLOW_PRIVATE: undefined }, database: viaProxy, log: testLog });
    worker = await startWorker({ database: viaProxy, config: testWorkerConfig({ METRICS_PORT: 0, HOST: "127.0.0.1" }), providers: [], log: testLog });
  });
  afterAll(async () => {
    proxy?.restore();
    await worker?.stop();
    await cp?.close();
    await viaProxy?.close().catch(() => {});
    await proxy?.close();
    await db?.close();
  });

  it("REST /readyz, the executor's /readyz and gRPC health fail while the database is unreachable, then recover", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: cp.grpcUrl }));
    const state = async () => ({
      rest: (await fetch(`${cp.restUrl}/readyz`)).status,
      executor: (await fetch(`${worker.metricsUrl}/readyz`)).status,
      grpc: Status[(await health.check({})).status],
    });
    expect(await state()).toEqual({ rest: 200, executor: 200, grpc: "SERVING" });

    proxy.cut();
    const down = await eventually(async () => {
      const s = await state();
      return s.rest === 503 && s.executor === 503 && s.grpc === "NOT_SERVING" ? s : undefined;
    }, 30_000, "readiness to fail");
    expect(down).toEqual({ rest: 503, executor: 503, grpc: "NOT_SERVING" });
    // Liveness is not readiness: the processes still answer /healthz.
    expect((await fetch(`${worker.metricsUrl}/healthz`)).status).toBe(200);

    proxy.restore();
    const up = await eventually(async () => {
      const s = await state();
      return s.rest === 200 && s.executor === 200 && s.grpc === "SERVING" ? s : undefined;
    }, 30_000, "readiness to recover");
    expect(up).toEqual({ rest: 200, executor: 200, grpc: "SERVING" });
  }, 90_000);
});
