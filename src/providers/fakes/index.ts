export { startFakeAnthropic, type FakeAnthropicOptions } from "./anthropic.js";
export type { FakeBehaviour, FakeServer, RecordedRequest } from "./fake-server.js";
export { startFakeOllama, type FakeOllamaOptions } from "./ollama.js";
export { startFakeOpenAI, type FakeOpenAIOptions } from "./openai.js";
