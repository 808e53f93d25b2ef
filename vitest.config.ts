import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "tests/**/*.test.ts", "scripts/**/*.test.ts", "console/src/**/*.test.ts"],
    pool: "forks",
    // Tests spawn bin/fabric.js, which runs dist/: rebuild it first when the sources changed.
    globalSetup: ["tests/global-setup.ts"],
    // Two cores here: two test files at a time keeps multi-process tests honest.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
