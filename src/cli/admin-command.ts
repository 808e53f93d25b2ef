/** `fabric admin bootstrap`: the first owner, organization and API key, straight in the database. */
import { openDatabase } from "../db/database.js";
import { bootstrapFirstOwner } from "../services/tenancy/first-owner.js";
import { parseCommandLine, UsageError } from "./command-line.js";
import { databaseOptions, serverSettings } from "./server-process.js";

export async function adminCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "bootstrap") throw new UsageError(sub ? `unknown subcommand admin ${JSON.stringify(sub)} (see fabric admin --help)` : "missing subcommand: bootstrap (see fabric admin --help)");
  const { config, values } = serverSettings("admin", rest, { email: { type: "string" }, organization: { type: "string" }, slug: { type: "string" }, force: { type: "boolean" }, json: { type: "boolean" } });
  if (typeof values.email !== "string") throw new UsageError("missing --email (see fabric admin --help)");
  if (typeof values.organization !== "string") throw new UsageError("missing --organization (see fabric admin --help)");
  const database = await openDatabase(databaseOptions(config));
  try {
    const result = await bootstrapFirstOwner(database.db, {
      email: values.email,
      organizationName: values.organization,
      slug: typeof values.slug === "string" ? values.slug : undefined,
      force: values.force === true,
    });
    if (values.json) {
      console.log(JSON.stringify(result.outcome === "created" ? { outcome: result.outcome, organization_id: result.organizationId, slug: result.slug, principal_id: result.principalId, api_key_id: result.apiKeyId, api_key: result.apiKey } : { outcome: result.outcome, organization_id: result.organizationId, slug: result.slug, principal_id: result.principalId }));
    } else if (result.outcome === "created") {
      console.log(`owner ${values.email.trim().toLowerCase()} of organization ${result.slug} (${result.organizationId})`);
      console.error("API key (shown this once; store it now):");
      console.log(result.apiKey);
    } else {
      console.log(`already bootstrapped: ${values.email.trim().toLowerCase()} owns ${result.slug} (${result.organizationId}); nothing changed, no new key (--force issues one)`);
    }
    return 0;
  } finally {
    await database.close();
  }
}
