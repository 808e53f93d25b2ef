/**
 * The provider call path both planes use — the API's direct calls and jobs (services) and
 * the executor's provider nodes. Import it from here; the modules of this folder are its
 * steps (provider-gateway.ts shows the pipeline).
 */
export { createProviderGateway, type CallArgs, type CallResult, type EstimateResult, type GatewayOptions, type ProviderGateway } from "./provider-gateway.js";
export { ProviderCallError, summarizeAttempts, type CallAttempt } from "./failover.js";
export type { Prepared } from "./rules-cache.js";
export type { Attribution } from "../db/usage.js";
