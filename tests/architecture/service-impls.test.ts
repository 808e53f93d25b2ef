/**
 * The seam between the generated contracts and the use cases is typed from the service
 * descriptors (src/control-plane/service-impls.ts): checked by `tsc` (npm run typecheck),
 * which type-checks this file too. A service missing a method, taking another request or
 * answering another response is not its service's implementation.
 */
import { describe, expectTypeOf, it } from "vitest";
import type { Event, GetRunRequest, RunService, WatchRunRequest } from "../../gen/proto/fabric/v1/run_pb.js";
import type { GetWorkflowRequest, GetWorkflowResponse, ListWorkflowsResponse, WorkflowService } from "../../gen/proto/fabric/v1/workflow_pb.js";
import type { ServiceImpls, UseCases } from "../../src/control-plane/service-impls.js";
import type { CallContext } from "../../src/services/call-context.js";
import type { createRunService } from "../../src/services/runs/run-service.js";
import type { createWorkflowService } from "../../src/services/runs/workflow-service.js";

type Workflows = UseCases<typeof WorkflowService>;

describe("ServiceImpls, typed from the descriptors", () => {
  it("accepts the services as written", () => {
    expectTypeOf<ReturnType<typeof createWorkflowService>>().toExtend<Workflows>();
    expectTypeOf<ReturnType<typeof createRunService>>().toExtend<ServiceImpls["fabric.v1.RunService"]>();
  });

  it("refuses a missing method, another request type and another response type", () => {
    expectTypeOf<Omit<Workflows, "validateWorkflow">>().not.toExtend<Workflows>();
    expectTypeOf<Omit<Workflows, "getWorkflow"> & { getWorkflow: (ctx: CallContext, req: GetRunRequest) => Promise<GetWorkflowResponse> }>().not.toExtend<Workflows>();
    expectTypeOf<Omit<Workflows, "getWorkflow"> & { getWorkflow: (ctx: CallContext, req: GetWorkflowRequest) => Promise<ListWorkflowsResponse> }>().not.toExtend<Workflows>();
  });

  it("has a stream whose response wraps an Event yield Events", () => {
    expectTypeOf<UseCases<typeof RunService>["watchRun"]>().toEqualTypeOf<(ctx: CallContext, request: WatchRunRequest) => Promise<AsyncIterable<Event>>>();
  });
});
