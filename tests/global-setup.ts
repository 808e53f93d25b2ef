/**
 * Runs once before the test files: tests spawn `bin/fabric.js`, which runs the build in
 * `dist/`, so a build older than the sources is rebuilt first (scripts/build.ts decides
 * from the last build's inputs; an up-to-date build costs a few file stats).
 */
import { buildServer, isBuildStale } from "../scripts/build.js";

export default async function setup(): Promise<void> {
  if (isBuildStale()) await buildServer();
}
