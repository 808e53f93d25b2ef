/** `fabric keys create | list | revoke` over the API (the SDK): API keys of the caller's organization. */
import type { ApiKey } from "../sdk/index.js";
import { CommandFailure, integerFlag, parseCommandLine, UsageError } from "./command-line.js";
import { apiOptions, connectApi, printJson, printTable, shortTime } from "./api-access.js";

export async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create": {
      const { values } = parseCommandLine("keys", rest, { ...apiOptions, name: { type: "string" }, scopes: { type: "string" }, "expires-in-days": { type: "string" } });
      if (!values.name?.trim()) throw new UsageError("missing --name (see fabric keys --help)");
      const days = integerFlag("expires-in-days", values["expires-in-days"], 1, 3650);
      const fabric = connectApi(values);
      try {
        const org = await organizationOf(fabric);
        const created = await fabric.apiKeys.create(org, {
          name: values.name.trim(),
          scopes: values.scopes ? values.scopes.split(",").map((s) => s.trim()).filter(Boolean) : [],
          ...(days ? { expire_time: new Date(Date.now() + days * 86_400_000).toISOString() } : {}),
        });
        if (values.json) printJson(created);
        else {
          console.log(`key ${created.api_key.id} (${created.api_key.name}) created; it is shown this once:`);
          console.log(created.key);
        }
        return 0;
      } finally {
        fabric.close();
      }
    }
    case "list": {
      const { values } = parseCommandLine("keys", rest, apiOptions);
      const fabric = connectApi(values);
      try {
        const keys = await fabric.apiKeys.list(await organizationOf(fabric));
        if (values.json) printJson(keys);
        else printTable(keys.map(row), ["id", "name", "prefix", "scopes", "created", "last_used", "expires", "revoked"], "no API keys");
        return 0;
      } finally {
        fabric.close();
      }
    }
    case "revoke": {
      const { values, positionals } = parseCommandLine("keys", rest, apiOptions, { positionals: 1 });
      if (!positionals[0]) throw new UsageError("missing argument: fabric keys revoke KEY_ID");
      const fabric = connectApi(values);
      try {
        const key = await fabric.apiKeys.revoke(await organizationOf(fabric), positionals[0]);
        if (values.json) printJson(key);
        else console.log(`key ${key.id} (${key.name}) revoked`);
        return 0;
      } finally {
        fabric.close();
      }
    }
    default:
      throw new UsageError(sub ? `unknown subcommand keys ${JSON.stringify(sub)} (see fabric keys --help)` : "missing subcommand: create, list or revoke (see fabric keys --help)");
  }
}

/** The organization the key acts in. */
async function organizationOf(fabric: ReturnType<typeof connectApi>): Promise<string> {
  const org = (await fabric.me.get()).organization_id;
  if (!org) throw new CommandFailure("this credential acts in no organization; use an organization's API key");
  return org;
}

const row = (k: ApiKey) => ({ id: k.id, name: k.name, prefix: k.prefix, scopes: k.scopes, created: shortTime(k.create_time), last_used: shortTime(k.last_used_time), expires: shortTime(k.expire_time), revoked: shortTime(k.revoke_time) });
