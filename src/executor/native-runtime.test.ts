import { describe, expect, it } from "vitest";
import { replaceLiteral } from "./native-runtime.js";
import { StepError } from "./step.js";

describe("replaceLiteral", () => {
  it("takes the replacement literally: $' $& $` are not patterns", () => {
    expect(replaceLiteral("abc", "b", "[$'$&$`]", 1 << 20)).toBe("a[$'$&$`]c");
  });

  it("refuses an empty find", () => {
    expect(() => replaceLiteral("abc", "", "x", 1 << 20)).toThrow(/must not be empty/);
  });

  it("refuses an amplifying replacement before building it, with output_too_large", () => {
    const text = "a".repeat(30_000);
    const replacement = "b".repeat(10_000); // 300 MB of output if it were built
    const before = process.memoryUsage().heapUsed;
    let err: unknown;
    try {
      replaceLiteral(text, "a", replacement, 1 << 20);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StepError);
    expect((err as StepError).code).toBe("output_too_large");
    expect((err as StepError).errorClass).toBe("invalid_input"); // not retried
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50 << 20);
  });

  it("counts bytes in UTF-8 and allows exactly the limit", () => {
    expect(replaceLiteral("xx", "x", "é", 4)).toBe("éé");
    expect(() => replaceLiteral("xx", "x", "é", 3)).toThrow(/over the limit/);
  });
});
