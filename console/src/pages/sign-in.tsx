import { useState } from "preact/hooks";
import { session } from "../api/session.js";
import type { ApiError } from "../api/problem.js";
import { navigate } from "../router.js";
import { ErrorNotice } from "../ui/components.js";
import { useAction } from "../ui/hooks.js";

let linkError: ApiError | undefined;
/** A one-time link that could not be exchanged (used, expired, malformed) is explained on this page. */
export function showSignInLinkError(err: ApiError) {
  linkError = err;
}

export function SignIn() {
  const [mode, setMode] = useState<"password" | "api_key">("password");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [apiKey, setApiKey] = useState("");
  const action = useAction(async () => {
    if (mode === "password") await session.signInWithPassword(email, password);
    else await session.signInWithApiKey(apiKey.trim());
    linkError = undefined;
    navigate("/runs", { replace: true });
  });
  return (
    <div class="sign-in">
      <h1>Sign in to Fabric</h1>
      {session.endedBecause && (
        <p class="notice" role="status">
          {session.endedBecause}
        </p>
      )}
      {linkError && (
        <div>
          <p>The sign-in link did not work: links are single-use and expire after a few minutes. Restart <code>fabric dev</code> for a new one, or sign in below.</p>
          <ErrorNotice error={linkError} />
        </div>
      )}
      <div role="group" aria-label="How to sign in" class="segmented">
        <button type="button" aria-pressed={mode === "password"} onClick={() => setMode("password")}>
          Email and password
        </button>
        <button type="button" aria-pressed={mode === "api_key"} onClick={() => setMode("api_key")}>
          API key
        </button>
      </div>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.go();
        }}
      >
        {mode === "password" ? (
          <>
            <label>
              Email
              <input type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Password
              <input type="password" name="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
            </label>
          </>
        ) : (
          <label>
            API key
            <input type="password" name="api_key" autoComplete="off" required placeholder="fab_…" value={apiKey} onInput={(e) => setApiKey((e.target as HTMLInputElement).value)} />
          </label>
        )}
        <button type="submit" class="primary" disabled={action.busy}>
          {action.busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <ErrorNotice error={action.error} />
      <p class="muted small">
        Running <code>fabric dev</code>? It prints a one-time sign-in link, and saves an API key in <code>.fabric/dev-api-key</code>.
      </p>
    </div>
  );
}
