/**
 * `deno task refresh-content [--env-file=PATH]`: regenerates `content/site/` (a crawl of
 * the site, or a local web root) and `content/github/` (an owner's public repositories
 * and READMEs). Progress goes to stderr; each part is swapped in only when complete.
 * Missing persona, system prompt and profile files get templates (never overwriting), so
 * the content dir is complete and the worker starts; `deno task doctor` then says which
 * template still needs the operator's words.
 */
import { ConfigError, envFileArg } from "../env.ts";
import { loadRefreshConfig, type RefreshConfig } from "./config.ts";
import { crawlSite, readWebRoot } from "./crawl_site.ts";
import { fetchGithub } from "./github.ts";
import { writeMissingTemplates } from "./templates.ts";
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
    progress("nothing to crawl: set REFRESH_SITE_URL and/or GITHUB_OWNER");
  }
  const written = await writeMissingTemplates(config.contentDir);
  for (const file of written) {
    progress(`${file}: template written; make it yours (README: "Make Terra yours")`);
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
