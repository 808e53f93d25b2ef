import { describe, expect, it } from "vitest";
import { SseParser } from "./sse-parser.js";

describe("SseParser", () => {
  it("parses messages split at any byte, with ids, kinds, comments and multi-line data", () => {
    const text = ": ping\n\nid: 7\nevent: workflow.node.started\ndata: {\"a\":1}\n\nid: 8\r\nevent: x\r\ndata: one\r\ndata: two\r\n\r\ndata: no id\n\n";
    for (let size = 1; size <= text.length; size++) {
      const parser = new SseParser();
      const got = [];
      for (let i = 0; i < text.length; i += size) got.push(...parser.push(text.slice(i, i + size)));
      expect(got, `chunks of ${size}`).toEqual([
        { event: "workflow.node.started", data: '{"a":1}', id: "7" },
        { event: "x", data: "one\ntwo", id: "8" },
        // id persists: a message without one resumes from the last seen.
        { event: "message", data: "no id", id: "8" },
      ]);
      expect(parser.lastEventId).toBe("8");
    }
  });

  it("holds back an unfinished message until its blank line arrives", () => {
    const parser = new SseParser();
    expect(parser.push("id: 1\nevent: a\ndata: x\n")).toEqual([]);
    expect(parser.push("\n")).toEqual([{ event: "a", data: "x", id: "1" }]);
  });

  it("treats a lone CR as a line end, but not before it knows no LF follows", () => {
    const parser = new SseParser();
    expect(parser.push("data: a\r")).toEqual([]);
    expect(parser.push("\r\n")).toEqual([{ event: "message", data: "a", id: "" }]);
  });
});
