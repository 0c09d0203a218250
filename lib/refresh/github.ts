/**
 * Fetches a GitHub owner's public repositories and their READMEs for the cache. A token is
 * optional (it raises GitHub's rate limit); when the limit runs out the refresh stops with
 * a clear error instead of writing a half-empty cache.
 */

/** A repository as cached (`content/github/repos.json`). */
export interface CachedRepo {
  name: string;
  description: string;
  url: string;
  language: string | null;
  stars: number;
  topics: string[];
  updatedAt: string;
  files: string[];
}

export interface GithubOptions {
  apiUrl: string;
  owner: string;
  token: string;
  maxRepos: number;
  progress: (line: string) => void;
  fetch?: typeof fetch;
}

const MAX_README_BYTES = 256 * 1024;

async function githubGet(options: GithubOptions, path: string, accept: string): Promise<Response> {
  const headers: Record<string, string> = { accept, "user-agent": "terrarium-refresh" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await (options.fetch ?? fetch)(options.apiUrl + path, {
    headers,
    signal: AbortSignal.timeout(20_000),
  });
  if (
    (response.status === 403 || response.status === 429) &&
    response.headers.get("x-ratelimit-remaining") === "0"
  ) {
    await response.body?.cancel();
    const reset = Number(response.headers.get("x-ratelimit-reset"));
    const when = Number.isFinite(reset) && reset > 0
      ? new Date(reset * 1000).toISOString()
      : "later";
    throw new Error(
      `GitHub's rate limit is used up until ${when}; set GITHUB_TOKEN or try again then`,
    );
  }
  return response;
}

/** The owner's repositories (newest first) with their READMEs. */
export async function fetchGithub(
  options: GithubOptions,
): Promise<{ repo: CachedRepo; readme: string | null }[]> {
  const list = await githubGet(
    options,
    `/users/${options.owner}/repos?per_page=100&sort=updated&type=owner`,
    "application/vnd.github+json",
  );
  if (!list.ok) {
    throw new Error(`GitHub answered ${list.status} for ${options.owner}'s repositories`);
  }
  const repos = (await list.json()) as Record<string, unknown>[];
  const out: { repo: CachedRepo; readme: string | null }[] = [];
  for (const raw of repos.filter((r) => !r.fork && !r.private).slice(0, options.maxRepos)) {
    const name = String(raw.name);
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith(".")) continue;
    const response = await githubGet(
      options,
      `/repos/${options.owner}/${name}/readme`,
      "application/vnd.github.raw+json",
    );
    let readme: string | null = null;
    if (response.ok) {
      const bytes = new Uint8Array(await response.arrayBuffer()).slice(0, MAX_README_BYTES);
      readme = new TextDecoder().decode(bytes);
    } else {
      await response.body?.cancel();
    }
    out.push({
      repo: {
        name,
        description: String(raw.description ?? ""),
        url: String(raw.html_url ?? ""),
        language: raw.language ? String(raw.language) : null,
        stars: Number(raw.stargazers_count ?? 0),
        topics: Array.isArray(raw.topics) ? raw.topics.map(String) : [],
        updatedAt: String(raw.pushed_at ?? raw.updated_at ?? ""),
        files: readme === null ? [] : ["README.md"],
      },
      readme,
    });
    options.progress(`repo ${out.length}: ${name}${readme === null ? " (no README)" : ""}`);
  }
  return out;
}
