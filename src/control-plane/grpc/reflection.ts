/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) for Connect-ES, which ships none.
 * With it, `buf curl` and grpcurl discover our services from the running server, so they
 * never depend on a local copy of proto/ that may have gone stale.
 *
 * Answers come from the descriptors embedded in the generated code: no extra build step,
 * and they always match what the server actually speaks.
 */
import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../../gen/proto/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../../gen/proto/grpc/reflection/v1alpha/reflection_pb.js";

/** Registers both reflection versions: grpcurl and older clients still ask for v1alpha. */
export function addReflection(router: ConnectRouter, files: readonly DescFile[]): void {
  const index = buildIndex(files);
  router.service(v1.ServerReflection, { serverReflectionInfo: (reqs) => respond(index, reqs) });
  router.service(v1alpha.ServerReflection, { serverReflectionInfo: (reqs) => respond(index, reqs) });
}

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** The response oneof as plain init data, so one value fits both versions' generated types. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

interface Index {
  services: string[];
  /** Keyed by path with the `.proto` suffix (`DescFile.name` lacks it). */
  byFilename: Map<string, DescFile>;
  /** Every fully-qualified name a client may ask about, down to fields and enum values. */
  bySymbol: Map<string, DescFile>;
  messages: Set<string>;
}

function buildIndex(files: readonly DescFile[]): Index {
  const reflectionFiles = [v1.file_grpc_reflection_v1_reflection, v1alpha.file_grpc_reflection_v1alpha_reflection];
  const index: Index = { services: [], byFilename: new Map(), bySymbol: new Map(), messages: new Set() };
  for (const file of [...files, ...reflectionFiles]) {
    index.services.push(...file.services.map((s) => s.typeName));
  }
  // Dependencies are indexed too, so `describe google.protobuf.Timestamp` resolves.
  const visit = (file: DescFile): void => {
    if (index.byFilename.has(file.proto.name)) return;
    index.byFilename.set(file.proto.name, file);
    file.dependencies.forEach(visit);
    for (const type of nestedTypes(file)) {
      index.bySymbol.set(type.typeName, file);
      const members =
        type.kind === "message" ? [...type.fields, ...type.oneofs].map((m) => `${type.typeName}.${m.name}`)
        : type.kind === "service" ? type.methods.map((m) => `${type.typeName}.${m.name}`)
        // Enum values are scoped as siblings of their enum, not children (C++ scoping rules).
        : type.kind === "enum" ? type.values.map((v) => type.typeName.replace(/[^.]*$/, v.name))
        : [];
      for (const name of members) index.bySymbol.set(name, file);
      if (type.kind === "message") index.messages.add(type.typeName);
    }
  };
  [...files, ...reflectionFiles].forEach(visit);
  return index;
}

async function* respond<R extends Request>(index: Index, requests: AsyncIterable<R>) {
  // Files already sent on this stream; clients cache them, as grpc-go assumes.
  const sent = new Set<string>();
  for await (const request of requests) {
    yield { validHost: request.host, originalRequest: request, messageResponse: answer(index, request, sent) };
  }
}

function answer(index: Index, { messageRequest: req }: Request, sent: Set<string>): Answer {
  switch (req.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename":
      return withDependencies(index.byFilename.get(req.value), sent) ?? notFound(`file ${req.value}`);
    case "fileContainingSymbol":
      return withDependencies(index.bySymbol.get(req.value), sent) ?? notFound(`symbol ${req.value}`);
    case "fileContainingExtension":
      return notFound(`extension ${req.value.extensionNumber} of ${req.value.containingType}`);
    case "allExtensionNumbersOfType":
      // We declare no extensions, so any known message has an empty list.
      return index.messages.has(req.value)
        ? { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value, extensionNumber: [] } }
        : notFound(`message ${req.value}`);
    default:
      return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty message_request" } };
  }
}

/**
 * The file, then its transitive imports breadth-first, skipping imports already sent on the
 * stream. The requested file itself always goes out (as in grpc-go) so no answer is empty.
 */
function withDependencies(file: DescFile | undefined, sent: Set<string>): Answer | undefined {
  if (!file) return undefined;
  const out: Uint8Array[] = [];
  const queue = [file];
  for (let current = queue.shift(); current; current = queue.shift()) {
    if (out.length === 0 || !sent.has(current.proto.name)) {
      sent.add(current.proto.name);
      out.push(toBinary(FileDescriptorProtoSchema, current.proto));
    }
    queue.push(...current.dependencies);
  }
  return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
}

function notFound(what: string): Answer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
}
