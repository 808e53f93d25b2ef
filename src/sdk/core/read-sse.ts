/**
 * A server-sent-events parser over a fetch body (WHATWG "event stream interpretation":
 * `id`, `event`, `data` and `retry` fields, `:` comment lines, CR / LF / CRLF line ends,
 * dispatch on a blank line, no dispatch of a final unterminated message).
 */

export interface SseMessage {
  /** The `id:` field of this message, if it had one. */
  id: string | undefined;
  /** The `event:` field; `message` when absent. */
  event: string;
  data: string;
  /** A `retry:` field seen with this message, in milliseconds. */
  retry: number | undefined;
}

/**
 * Yields each message of the stream; returns when the server ends it; throws what
 * reading throws. `onData` is called for every chunk received, heartbeat comments
 * included (for idle detection).
 */
export async function* readSse(body: ReadableStream<Uint8Array>, onData?: () => void): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let id: string | undefined;
  let event = "";
  let data: string[] = [];
  let retry: number | undefined;
  let sawField = false;
  let done = false;
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) {
        done = true;
        return;
      }
      onData?.();
      buffer += decoder.decode(chunk.value, { stream: true });
      for (;;) {
        const nl = buffer.search(/[\r\n]/);
        if (nl < 0) break;
        // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
        if (buffer[nl] === "\r" && nl === buffer.length - 1) break;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer[nl] === "\r" && buffer[nl + 1] === "\n" ? 2 : 1));
        if (line === "") {
          if (sawField) yield { id, event: event || "message", data: data.join("\n"), retry };
          id = undefined;
          event = "";
          data = [];
          retry = undefined;
          sawField = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        sawField = true;
        if (field === "data") data.push(value);
        else if (field === "id") id = value.includes("\0") ? id : value;
        else if (field === "event") event = value;
        else if (field === "retry" && /^\d+$/.test(value)) retry = Number(value);
      }
    }
  } finally {
    // Stopped early (consumer broke out, or an error): release the connection.
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
