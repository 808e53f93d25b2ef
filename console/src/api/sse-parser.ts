/**
 * An incremental parser for `text/event-stream` (the WHATWG "event stream interpretation"
 * rules, minus `retry:`): feed it decoded text in chunks of any size, get whole messages.
 * Lines end in LF, CR or CRLF; `:` lines are comments (the server's heartbeats); a blank
 * line dispatches the message. `id:` persists across messages, as the spec says, so the
 * last id seen is always the one to resume from.
 */
export interface SseMessage {
  /** The `event:` field; `message` when absent. */
  event: string;
  data: string;
  /** The last `id:` seen on the stream so far (empty when none). */
  id: string;
}

export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  private hasData = false;
  lastEventId = "";

  /** Parses `chunk` and returns the messages it completed. */
  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const lf = this.buffer.indexOf("\n");
      const cr = this.buffer.indexOf("\r");
      if (lf < 0 && cr < 0) break;
      let end: number;
      let next: number;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        // A CR at the very end may be the first half of a CRLF still in flight.
        if (cr === this.buffer.length - 1) break;
        end = cr;
        next = this.buffer[cr + 1] === "\n" ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(next);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === "") {
      const message = this.hasData ? { event: this.event || "message", data: this.data.join("\n"), id: this.lastEventId } : undefined;
      this.event = "";
      this.data = [];
      this.hasData = false;
      return message;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") {
      this.data.push(value);
      this.hasData = true;
    } else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
    return undefined;
  }
}
