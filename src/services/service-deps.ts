/** What the control-plane services are built from. */
import type { Db } from "../db/database.js";
import type { Logger } from "../logger.js";

export interface ServiceDeps {
  db: Db;
  /** HS256 key for access tokens (JWT_SECRET, or a per-process random one in development). */
  jwtSecret: Uint8Array;
  log: Logger;
}
