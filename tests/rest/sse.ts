/**
 * A tiny server-sent-events reader for wire tests: `fetch` + the body stream, parsed per
 * the WHATWG EventSource rules that matter here (id/event/data fields, comment lines,
 * blank-line dispatch). No EventSource polyfill, so a test sees exactly what went over
 * the wire — including when the server ends the stream.
 */

export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

export interface SseStream {
  response: Response;
  /** Messages in arrival order; the generator returns when the server closes the stream. */
  messages: AsyncGenerator<SseMessage, void, undefined>;
  /** Comment lines seen so far (e.g. `: ping`). */
  comments: string[];
  /** Aborts the request (the stream's reader then ends). */
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
  const comments: string[] = [];

  async function* messages(): AsyncGenerator<SseMessage, void, undefined> {
    if (!response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let current: { id?: string; event?: string; data: string[] } = { data: [] };
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (abort.signal.aborted) return;
          throw err;
        }
        if (chunk.done) return;
        buffer += chunk.value;
        let nl: number;
        while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
          if (line === "") {
            if (current.data.length || current.id !== undefined || current.event !== undefined) {
              yield { id: current.id, event: current.event, data: current.data.join("\n") };
            }
            current = { data: [] };
            continue;
          }
          if (line.startsWith(":")) {
            comments.push(line.slice(1).trim());
            continue;
          }
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "data") current.data.push(value);
          else if (field === "id") current.id = value;
          else if (field === "event") current.event = value;
        }
      }
    } finally {
      reader.releaseLock();
      abort.abort();
    }
  }

  return { response, messages: messages(), comments, close: () => abort.abort() };
}

/** Reads every message until the server ends the stream; fails if it has not ended after `timeoutMs`. */
export async function readAll(stream: SseStream, timeoutMs = 10_000): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.close();
  }, timeoutMs);
  try {
    for await (const m of stream.messages) out.push(m);
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) throw new Error(`the event stream did not end within ${timeoutMs} ms (got ${out.map((m) => m.event).join(", ")})`);
  return out;
}

/** Reads messages until `until` matches one (inclusive); the stream stays open. */
export async function readUntil(stream: SseStream, until: (m: SseMessage) => boolean, timeoutMs = 10_000): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stream.close();
  }, timeoutMs);
  try {
    for (;;) {
      const r = await stream.messages.next();
      if (r.done) throw new Error(`the event stream ended before the expected message (got ${out.map((m) => m.event).join(", ")})`);
      out.push(r.value);
      if (until(r.value)) return out;
    }
  } catch (err) {
    if (timedOut) throw new Error(`no matching message within ${timeoutMs} ms (got ${out.map((m) => m.event).join(", ")})`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
