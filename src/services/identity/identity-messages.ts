/** Principal rows → the generated `Principal` message, for identity and tenancy answers alike. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { PrincipalSchema, type Principal } from "../../../gen/proto/fabric/v1/identity_pb.js";
import { principals } from "../../db/schema.js";

/** What a Principal message is made of: never `password_hash`. */
export type PrincipalRow = Pick<typeof principals.$inferSelect, "id" | "kind" | "email" | "displayName" | "createdAt">;

/** The columns of a `PrincipalRow`, for selects that must not read the password hash. */
export const principalColumns = { id: principals.id, kind: principals.kind, email: principals.email, displayName: principals.displayName, createdAt: principals.createdAt };

export function principalMessage(row: PrincipalRow): Principal {
  return create(PrincipalSchema, { id: row.id, kind: row.kind, email: row.email ?? undefined, displayName: row.displayName, createTime: timestampFromDate(row.createdAt) });
}
