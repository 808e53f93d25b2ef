import { describe, expect, it } from "vitest";
import { DomainError } from "../../domain/errors.js";
import { fieldPath, statusDetails } from "./status-details.js";

describe("fieldPath", () => {
  it.each([
    ["", ""],
    ["/name", "name"],
    ["/nodes/0/depends_on/1", "nodes[0].depends_on[1]"],
    ["/nodes/2/inputs/text", "nodes[2].inputs.text"],
    ["/nodes/0/config/a~1b", 'nodes[0].config["a/b"]'],
    ["/context/my key", 'context["my key"]'],
  ])("%j → %j", (pointer, path) => expect(fieldPath(pointer)).toBe(path));
});

describe("statusDetails", () => {
  it("always ErrorInfo and RequestInfo; BadRequest only with issues; RetryInfo only with a wait", () => {
    const plain = statusDetails(new DomainError("not_found", "x"), "r1").map((d) => d.desc.typeName);
    expect(plain).toEqual(["google.rpc.ErrorInfo", "google.rpc.RequestInfo"]);
    const all = statusDetails(new DomainError("resource_exhausted", "x", { code: "rate_limited", retryAfterSeconds: 1.5, issues: [{ path: "/a", code: "c", message: "m" }] }), "r2");
    expect(all.map((d) => d.desc.typeName)).toEqual(["google.rpc.ErrorInfo", "google.rpc.RequestInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo"]);
    expect(all[3]!.value).toMatchObject({ retryDelay: { seconds: 1n, nanos: 500_000_000 } });
  });
});
