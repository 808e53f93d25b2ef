/**
 * Required request fields, checked at the edge the same way on both transports, so an
 * empty id is `invalid_argument` naming the field — never a lookup of "" that answers
 * not_found. Which fields are required is the proto comments' `Required.` convention,
 * derived into `gen/contract/required-fields.json` by scripts/gen-required-fields.ts at
 * codegen (protoc-gen-es does not embed comments in the descriptors).
 *
 * Present means what proto3 can tell: a non-empty string or bytes, a set message, a
 * non-empty list or map, a non-zero number (or a set `optional` field).
 */
import { readFileSync } from "node:fs";
import { isFieldSet, type DescMessage, type Message } from "@bufbuild/protobuf";
import { invalidArgument } from "../domain/errors.js";
import { packagePath } from "../package-files.js";

// From the package root: a module-relative path holds for src/ only, not for the bundle in dist/.
const tablePath = packagePath("gen/contract/required-fields.json");
const table: Record<string, readonly string[]> = (JSON.parse(readFileSync(tablePath, "utf8")) as { messages: Record<string, string[]> }).messages;

/** The proto names of `message`'s required fields (empty when it has none). */
export function requiredFieldsOf(message: DescMessage): readonly string[] {
  return table[message.typeName] ?? [];
}

/** Throws `invalid_argument` (one issue per missing field, code `required`) when a required field is missing. */
export function checkRequiredFields(schema: DescMessage, request: unknown): void {
  const names = requiredFieldsOf(schema);
  if (!names.length) return;
  const missing = names.filter((name) => {
    const field = schema.fields.find((f) => f.name === name);
    return field !== undefined && !isFieldSet(request as Message, field);
  });
  if (!missing.length) return;
  throw invalidArgument(
    `${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} required`,
    missing.map((name) => ({ path: `/${name}`, code: "required", message: `${name} is required` })),
  );
}
