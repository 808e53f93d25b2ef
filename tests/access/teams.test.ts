/**
 * Team ownership of workflows and runs over both transports: a spec's `team_id` must be a
 * team of the caller's organization, team roles apply to the team's workflows and their
 * runs (which copy the workflow's team), lists show only what the caller may read, and
 * nobody takes over another team's (or the organization's) workflow name.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestFabric, type TestFabric } from "../helpers/fabric.js";
import { client, transports, type Actor, type Client } from "../helpers/calls.js";
import { insertTeam, member } from "../helpers/fixtures.js";

let fabric: TestFabric;
let org: string;
let owner: Actor;
let teamA: string;
let teamB: string;
let foreignTeam: string;
let maintainer: Actor;
let teamMember: Actor;
let orgMember: Actor;
let viewer: Actor;

beforeAll(async () => {
  fabric = await startTestFabric();
  org = fabric.organizationId;
  owner = { key: fabric.apiKey };
  teamA = await insertTeam(fabric, org);
  teamB = await insertTeam(fabric, org);
  foreignTeam = await insertTeam(fabric, (await fabric.otherOrg()).organizationId);
  maintainer = (await member(fabric, org, null, { teamId: teamA, role: "maintainer" })).actor;
  teamMember = (await member(fabric, org, null, { teamId: teamA, role: "member" })).actor;
  orgMember = (await member(fabric, org, "member")).actor;
  viewer = (await member(fabric, org, "viewer")).actor;
});
afterAll(() => fabric?.close());

const gate = (name: string, teamId?: string) => ({
  name,
  ...(teamId ? { team_id: teamId } : {}),
  nodes: [{ key: "gate", operation: "workflow.wait_signal", config: { timeout_ms: 60_000 } }],
});

describe.each(transports)("over %s", (via) => {
  const c = (): Client => client(fabric, via);
  const tag = () => `${via}-${randomUUID().slice(0, 6)}`;
  const upsert = (actor: Actor, spec: unknown) => c().call("WorkflowService/UpsertWorkflow", { spec }, actor);
  const start = (actor: Actor, workflowId: string) => c().call("RunService/StartRun", { workflow_id: workflowId, input: {} }, actor);

  it("a team's workflow carries its team, and so do its runs", async () => {
    const wf = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(`team-${tag()}`, teamA.toUpperCase()) }, owner);
    expect(wf.team_id).toBe(teamA);
    expect(wf.spec.team_id).toBe(teamA);
    expect((await c().ok("WorkflowService/GetWorkflow", { id: wf.id }, owner)).team_id).toBe(teamA);
    const run = await c().ok("RunService/StartRun", { workflow_id: wf.id, input: {} }, owner);
    expect(run.team_id).toBe(teamA);
    expect((await c().ok("RunService/GetRun", { id: run.id }, owner)).team_id).toBe(teamA);
    await c().ok("RunService/CancelRun", { id: run.id }, owner);
    const rerun = await c().ok("RunService/RerunRun", { id: run.id }, owner);
    expect(rerun.team_id).toBe(teamA);
    await c().ok("RunService/CancelRun", { id: rerun.id }, owner);

    const orgWide = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(`org-${tag()}`) }, owner);
    expect(orgWide.team_id).toBeUndefined();
    // Moving a workflow to a team is a new version.
    const moved = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(orgWide.name, teamB) }, owner);
    expect(moved).toMatchObject({ version: 2, team_id: teamB });
  });

  it("the team must be one of the caller's organization: a missing and a foreign team answer alike", async () => {
    const missing = await c().fails("WorkflowService/UpsertWorkflow", { spec: gate(`x-${tag()}`, randomUUID()) }, owner, 404, "not_found");
    const foreign = await c().fails("WorkflowService/UpsertWorkflow", { spec: gate(`x-${tag()}`, foreignTeam) }, owner, 404, "not_found");
    expect(foreign.detail.replace(foreignTeam, "")).toBe(missing.detail.replace(/"[^"]+"/, `""`));
    await c().fails("WorkflowService/UpsertWorkflow", { spec: gate(`x-${tag()}`, "not-a-team") }, owner, 404, "not_found");
  });

  it("a team maintainer writes and controls their team's workflows and runs, nothing else", async () => {
    const mine = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(`mine-${tag()}`, teamA) }, maintainer);
    expect(mine.team_id).toBe(teamA);
    expect(await upsert(maintainer, gate(`orgwide-${tag()}`))).toMatchObject({ ok: false, status: 403, code: "permission_denied" });
    expect(await upsert(maintainer, gate(`theirs-${tag()}`, teamB))).toMatchObject({ ok: false, status: 403 });

    // No taking over a name owned by the organization or another team, even into one's own team.
    const orgWide = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(`owned-${tag()}`) }, owner);
    expect(await upsert(maintainer, gate(orgWide.name, teamA))).toMatchObject({ ok: false, status: 403 });
    const bWf = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(`b-${tag()}`, teamB) }, owner);
    expect(await upsert(maintainer, gate(bWf.name, teamA))).toMatchObject({ ok: false, status: 403 });
    expect((await c().ok("WorkflowService/GetWorkflow", { id: orgWide.id }, owner)).version).toBe(1);

    // Reads: their team's only.
    expect((await c().ok("WorkflowService/GetWorkflow", { id: mine.id }, maintainer)).id).toBe(mine.id);
    await c().fails("WorkflowService/GetWorkflow", { id: orgWide.id }, maintainer, 403, "permission_denied");
    await c().fails("WorkflowService/GetWorkflow", { id: bWf.id }, maintainer, 403, "permission_denied");
    const listed = await c().ok("WorkflowService/ListWorkflows", { page_size: 200 }, maintainer);
    expect(listed.map((w: any) => w.id)).toContain(mine.id);
    expect(listed.every((w: any) => w.team_id === teamA)).toBe(true);
    expect((await c().ok("WorkflowService/ListWorkflows", { name: orgWide.name }, maintainer))).toEqual([]);

    // Runs of their team: start, control, read; others' not.
    const run = await c().ok("RunService/StartRun", { workflow_id: mine.id, input: {} }, maintainer);
    expect(run.team_id).toBe(teamA);
    expect(await start(maintainer, orgWide.id)).toMatchObject({ ok: false, status: 403 });
    const orgRun = await c().ok("RunService/StartRun", { workflow_id: orgWide.id, input: {} }, owner);
    const bRun = await c().ok("RunService/StartRun", { workflow_id: bWf.id, input: {} }, owner);
    await c().fails("RunService/GetRun", { id: orgRun.id }, maintainer, 403, "permission_denied");
    await c().fails("RunService/CancelRun", { id: bRun.id }, maintainer, 403, "permission_denied");
    await c().fails("RunService/PauseRun", { id: orgRun.id }, maintainer, 403, "permission_denied");
    await c().fails("RunService/SignalRun", { id: orgRun.id, payload: {} }, maintainer, 403, "permission_denied");
    const runs = await c().ok("RunService/ListRuns", { page_size: 200 }, maintainer);
    expect(runs.map((r: any) => r.id)).toContain(run.id);
    expect(runs.every((r: any) => r.team_id === teamA)).toBe(true);
    expect((await c().ok("RunService/ListRuns", { workflow_id: orgWide.id }, maintainer))).toEqual([]);

    await eventually(async () => ((await c().ok("RunService/GetRun", { id: run.id }, maintainer)).status === "waiting" ? true : undefined));
    await c().ok("RunService/PauseRun", { id: run.id }, maintainer);
    await c().ok("RunService/ResumeRun", { id: run.id }, maintainer);
    expect((await c().ok("RunService/SignalRun", { id: run.id, payload: { ok: true } }, maintainer)).id).toBe(run.id);
    for (const id of [orgRun.id, bRun.id]) await c().ok("RunService/CancelRun", { id }, owner);
  });

  it("a team member runs the team's workflows but neither writes them nor pauses their runs", async () => {
    const wf = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(`tm-${tag()}`, teamA) }, owner);
    expect(await upsert(teamMember, gate(wf.name, teamA))).toMatchObject({ ok: false, status: 403 });
    const run = await c().ok("RunService/StartRun", { workflow_id: wf.id, input: {} }, teamMember);
    await c().fails("RunService/PauseRun", { id: run.id }, teamMember, 403, "permission_denied");
    await c().ok("RunService/CancelRun", { id: run.id }, teamMember);
    await c().ok("RunService/RerunRun", { id: run.id }, teamMember).then((r) => c().ok("RunService/CancelRun", { id: r.id }, teamMember));
  });

  it("organization roles reach every team: members write and run them, viewers read them", async () => {
    const wf = await c().ok("WorkflowService/UpsertWorkflow", { spec: gate(`om-${tag()}`, teamB) }, orgMember);
    expect(wf.team_id).toBe(teamB);
    const run = await c().ok("RunService/StartRun", { workflow_id: wf.id, input: {} }, orgMember);
    expect((await c().ok("RunService/GetRun", { id: run.id }, viewer)).team_id).toBe(teamB);
    expect((await c().ok("WorkflowService/ListWorkflows", { name: wf.name }, viewer)).map((w: any) => w.id)).toEqual([wf.id]);
    expect((await c().ok("RunService/ListRuns", { workflow_id: wf.id }, viewer)).map((r: any) => r.id)).toEqual([run.id]);
    await c().fails("RunService/CancelRun", { id: run.id }, viewer, 403, "permission_denied");
    await c().ok("RunService/CancelRun", { id: run.id }, orgMember);
  });
});

it("the event stream of another team's run is refused (REST SSE)", async () => {
  const c = client(fabric, "rest");
  const wf = await c.ok("WorkflowService/UpsertWorkflow", { spec: gate(`sse-${randomUUID().slice(0, 6)}`, teamB) }, owner);
  const run = await c.ok("RunService/StartRun", { workflow_id: wf.id, input: {} }, owner);
  const res = await fabric.rest(`/v1/workflow-runs/${run.id}/events`, { key: (maintainer as { key: string }).key, headers: { accept: "text/event-stream" } });
  expect(res.status).toBe(403);
  await res.body?.cancel();
  await c.ok("RunService/CancelRun", { id: run.id }, owner);
});
