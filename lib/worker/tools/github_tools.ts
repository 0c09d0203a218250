/**
 * `list_github_repos` and `get_github_repo`: the cached GitHub data in `content/github/`.
 * `repos.json` lists each repository with its metadata and the files cached for it; a file
 * is served only when it is listed there and its real path (symlinks resolved) lies inside
 * the repository's folder, so neither `..` nor a planted symlink can leave it.
 */
import { join, normalize, sep } from "node:path";
import { z } from "zod";
import { defineTool, type Tool, ToolError } from "../tool_registry.ts";

const Repo = z.object({
  name: z.string().regex(/^[A-Za-z0-9._-]+$/),
  description: z.string().default(""),
  url: z.string(),
  language: z.string().nullable().default(null),
  stars: z.number().default(0),
  topics: z.array(z.string()).default([]),
  updatedAt: z.string().default(""),
  files: z.array(z.string()).default(["README.md"]),
});
type Repo = z.infer<typeof Repo>;

const MAX_FILE_CHARS = 10_000;

async function loadRepos(dir: string): Promise<Repo[]> {
  try {
    return z.array(Repo).parse(JSON.parse(await Deno.readTextFile(join(dir, "repos.json"))));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/** Reads `path` of `repo` if it is cached and stays inside the repo's folder. */
async function readRepoFile(dir: string, repo: Repo, path: string): Promise<string> {
  const clean = normalize(path).replace(/^\/+/, "");
  if (clean.startsWith("..") || !repo.files.includes(clean)) {
    throw new ToolError(
      "not_cached",
      `"${path}" is not cached for ${repo.name}; cached files: ${repo.files.join(", ")}`,
    );
  }
  const root = await Deno.realPath(join(dir, repo.name));
  const real = await Deno.realPath(join(root, clean)).catch(() => null);
  if (!real || !real.startsWith(root + sep)) {
    throw new ToolError("not_cached", `"${path}" is not available for ${repo.name}`);
  }
  return await Deno.readTextFile(real);
}

/** The two GitHub tools over `contentDir/github`. */
export function githubTools(contentDir: string): Tool[] {
  const dir = join(contentDir, "github");
  return [
    defineTool({
      name: "list_github_repos",
      description:
        "List the site owner's public GitHub repositories with description, language, stars and topics.",
      schema: z.object({}),
      activity: () => "Looking at the GitHub repositories…",
      run: async () => ({
        repos: (await loadRepos(dir)).map(({ files: _files, ...repo }) => repo),
      }),
    }),
    defineTool({
      name: "get_github_repo",
      description:
        "Read a repository's README, or another cached file of it (see list_github_repos).",
      schema: z.object({
        repo: z.string().min(1).max(100),
        path: z.string().max(300).default("README.md").describe("A cached file, default README.md"),
      }),
      activity: ({ repo }) => `Reading the ${repo} repository…`,
      async run({ repo: name, path }) {
        const repo = (await loadRepos(dir)).find((r) =>
          r.name.toLowerCase() === name.toLowerCase()
        );
        if (!repo) throw new ToolError("not_found", `No cached repository "${name}"`);
        const text = await readRepoFile(dir, repo, path);
        return {
          repo: repo.name,
          url: repo.url,
          path,
          text: text.slice(0, MAX_FILE_CHARS),
          truncated: text.length > MAX_FILE_CHARS,
          files: repo.files,
        };
      },
      sources: ({ repo, url, path }) => [{
        // The README is the repository's front page; another file is linked by its path.
        url: path === "README.md" ? url : `${url.replace(/\/+$/, "")}/blob/HEAD/${path}`,
        title: path === "README.md" ? repo : `${repo}/${path}`,
        kind: "github",
      }],
    }),
  ];
}
