/**
 * Serves the console's build (`npm run build:console` → `dist/console/`) from the REST
 * port: hashed files under `/assets/` with a year-long immutable cache (a new build has
 * new names), and `index.html` for every other GET outside the API, uncached, so a deep
 * link such as `/runs/<id>` works on reload and a new build is picked up at once.
 *
 * API paths (`/v1/…`) never fall back to the console: an unknown one stays a
 * problem+json 404. The directory is read per request, so rebuilding the console needs
 * no restart.
 */
import { existsSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { packagePath } from "../../package-files.js";

/** `dist/console` of this package (a checkout or an installed package). */
export const defaultConsoleDir = packagePath("dist/console");

const contentTypes: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".map": "application/json",
};

/** Only the names a build writes: no separators, no dot-dot, no hidden files. */
const assetName = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$/;

export const immutableCache = "public, max-age=31536000, immutable";

/**
 * The console page's Content-Security-Policy: its own scripts, styles and API only.
 * A script injected into a page could still act as the signed-in user, but it cannot
 * load code from elsewhere nor send what it reads to another origin.
 */
export const consoleCsp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export interface ConsoleFile {
  body: Uint8Array<ArrayBuffer> | string;
  status: 200 | 503;
  headers: Record<string, string>;
}

export function createConsoleAssets(dir: string = defaultConsoleDir) {
  return {
    /** A hashed asset, or undefined when there is none by that name. */
    asset(name: string): ConsoleFile | undefined {
      if (!assetName.test(name) || name.includes("..")) return undefined;
      const file = join(dir, "assets", name);
      const type = contentTypes[extname(name)];
      if (!type || !existsSync(file)) return undefined;
      return { body: Uint8Array.from(readFileSync(file)), status: 200, headers: { "Content-Type": type, "Cache-Control": immutableCache, "X-Content-Type-Options": "nosniff" } };
    },

    /** The console page for a path outside the API. */
    page(): ConsoleFile {
      const headers = { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", "Content-Security-Policy": consoleCsp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer" };
      const index = join(dir, "index.html");
      if (!existsSync(index)) {
        return {
          status: 503,
          headers,
          body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fabric console not built</title></head><body><main><h1>The console is not built</h1><p>Run <code>npm run build:console</code> in the Fabric checkout (<code>npm install</code> does it too), then reload. The API is up: see <a href="/docs">/docs</a>.</p></main></body></html>`,
        };
      }
      return { status: 200, headers, body: readFileSync(index, "utf8") };
    },
  };
}

/** Whether a path belongs to the API (never answered with the console page). */
export const isApiPath = (path: string) => path === "/v1" || path.startsWith("/v1/");
