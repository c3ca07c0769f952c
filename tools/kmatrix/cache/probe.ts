/**
 * Nx aborts a whole run, before any task, when its self-hosted remote cache does not answer
 * (measured on 24.0.6: a GET answered 401 or 5xx, or a server that is not there, ends the run with
 * exit 1). A cache is an accelerator, not a dependency: before
 * tasks run we probe the server, and if it is unreachable or failing, the run goes on with the
 * local cache only (NX_SKIP_REMOTE_CACHE) and says so.
 */
export async function probeRemoteCache(
  env: NodeJS.ProcessEnv,
  timeoutMs = 3000,
): Promise<{ skip: boolean; warning?: string }> {
  const url = env.NX_SELF_HOSTED_REMOTE_CACHE_SERVER;
  if (!url || env.NX_SKIP_REMOTE_CACHE === 'true') return { skip: false };
  let why: string | undefined;
  try {
    // Any answer below 500 means a server is there (auth problems are Nx's to report).
    const response = await fetch(`${url.replace(/\/+$/, '')}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer().catch(() => {});
    if (response.status >= 500) why = `it answered HTTP ${response.status}`;
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    why = cause?.code ?? cause?.message ?? (error as Error).message;
  }
  if (!why) return { skip: false };
  return {
    skip: true,
    warning: `kmatrix: warning: remote cache ${url} is not usable (${why}); running with the local cache only (NX_SKIP_REMOTE_CACHE=true). Nothing built now is shared — start the server (\`npx kmatrix serve-cache --help\`) or unset NX_SELF_HOSTED_REMOTE_CACHE_SERVER.`,
  };
}
