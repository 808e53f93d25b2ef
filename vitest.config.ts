import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "tests/**/*.test.ts", "scripts/**/*.test.ts", "console/src/**/*.test.ts"],
    pool: "forks",
    // Tests spawn bin/fabric.js, which runs dist/: rebuild it first when the sources changed.
    globalSetup: ["tests/global-setup.ts"],
    // Two cores here: two test files at a time keeps multi-process tests honest.
    maxWorkers: 2,
    // Ceilings, not expectations: a test waits on conditions and events, and these only end
    // one that would never finish. Generous, so that a loaded machine is slow, not red.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
