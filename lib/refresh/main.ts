/**
 * `deno task refresh-content [--env-file=PATH]`: regenerates `content/site/` (a crawl of
 * the site, or a local web root) and `content/github/` (an owner's public repositories
 * and READMEs). Progress goes to stderr; each part is swapped in only when complete.
 */
import { ConfigError, envFileArg } from "../env.ts";
import { loadRefreshConfig, type RefreshConfig } from "./config.ts";
import { crawlSite, readWebRoot } from "./crawl_site.ts";
import { fetchGithub } from "./github.ts";
import { replaceAtomically, writeGithub, writeSite } from "./write_content.ts";

// deno-lint-ignore no-console
const progress = (line: string) => console.error(`refresh: ${line}`);

async function refresh(config: RefreshConfig): Promise<void> {
  if (config.siteUrl) {
    const pages = config.webRoot
      ? await readWebRoot(config.webRoot, config.siteUrl, { ...config, progress })
      : await crawlSite({ startUrl: config.siteUrl, ...config, progress });
    if (pages.length === 0) {
      throw new Error("The site gave no readable page; the old cache is kept");
    }
    await replaceAtomically(
      config.contentDir,
      "site",
      (dir) => writeSite(dir, pages, new Date().toISOString()),
    );
    progress(`site: ${pages.length} pages written`);
  }
  if (config.githubOwner) {
    const repos = await fetchGithub({
      apiUrl: config.githubApiUrl,
      owner: config.githubOwner,
      token: config.githubToken,
      maxRepos: config.githubMaxRepos,
      progress,
    });
    await replaceAtomically(config.contentDir, "github", (dir) => writeGithub(dir, repos));
    progress(`github: ${repos.length} repositories written`);
  }
  if (!config.siteUrl && !config.githubOwner) {
    progress("nothing to do: set REFRESH_SITE_URL and/or GITHUB_OWNER");
  }
}

if (import.meta.main) {
  try {
    await refresh(loadRefreshConfig(envFileArg(Deno.args)));
  } catch (error) {
    progress(`failed: ${(error as Error).message}`);
    Deno.exit(error instanceof ConfigError ? 78 : 1);
  }
}
