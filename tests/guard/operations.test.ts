/**
 * No operation ships unguarded: every OpenAPI operation and every proto method is in
 * the operation table (or is one of the few anonymous ones), and the table names only
 * operations that exist.
 */
import { describe, expect, it } from "vitest";
import { methodsByRpc, restOperations, services } from "../../src/control-plane/contract.js";
import { isAction } from "../../src/domain/permissions.js";
import { anonymousOperations, operationRules } from "../../src/control-plane/operation-rules.js";

describe("the operation table", () => {
  it("declares every proto method of every served service", () => {
    const missing = services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`)).filter((rpc) => !(rpc in operationRules));
    expect(missing).toEqual([]);
  });

  it("declares every OpenAPI operation (by its RPC, or as anonymous)", () => {
    const undeclared = restOperations.filter((op) => (op.rpc ? !(op.rpc in operationRules) : !(anonymousOperations as readonly string[]).includes(op.operationId)));
    expect(undeclared.map((op) => `${op.method} ${op.path}`)).toEqual([]);
  });

  it("names only existing RPCs and catalogued actions", () => {
    for (const [rpc, rule] of Object.entries(operationRules)) {
      expect(methodsByRpc.has(rpc), rpc).toBe(true);
      if ("action" in rule && rule.action !== null) expect(isAction(rule.action), `${rpc}: ${rule.action}`).toBe(true);
    }
  });

  it("keeps anonymous access to the few operations meant for it", () => {
    const anonymous = Object.entries(operationRules).filter(([, r]) => "anonymous" in r && r.anonymous).map(([rpc]) => rpc);
    expect(anonymous.sort()).toEqual(["fabric.v1.IdentityService/ExchangeSignInToken", "fabric.v1.IdentityService/Login", "fabric.v1.IdentityService/RefreshToken", "fabric.v1.IdentityService/SignUp"]);
    const restAnonymous = restOperations.filter((op) => !op.rpc).map((op) => op.operationId);
    expect(restAnonymous.sort()).toEqual(["getDocs", "getOpenApi", "getOpenApi30", "healthz", "readyz"]);
  });
});
