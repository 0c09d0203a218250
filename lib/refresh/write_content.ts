/**
 * Writes a refreshed part of the cache (`site/` or `github/`) atomically: everything goes
 * into a fresh folder beside it first, then one rename swaps it in. A refresh that fails
 * before the swap leaves the old cache as it was.
 */
import { join } from "node:path";
import type { CrawledPage } from "./crawl_site.ts";
import type { CachedRepo } from "./github.ts";

/** Replaces `contentDir/part` with what `fill` writes into a fresh folder. */
export async function replaceAtomically(
  contentDir: string,
  part: "site" | "github",
  fill: (dir: string) => Promise<void>,
): Promise<void> {
  const stamp = `${Date.now()}-${crypto.randomUUID().slice(0, 6)}`;
  const fresh = join(contentDir, `.${part}.new-${stamp}`);
  const old = join(contentDir, `.${part}.old-${stamp}`);
  const target = join(contentDir, part);
  await Deno.mkdir(fresh, { recursive: true });
  try {
    await fill(fresh);
  } catch (error) {
    await Deno.remove(fresh, { recursive: true }).catch(() => {});
    throw error;
  }
  const hadOld = await Deno.stat(target).then(() => true, () => false);
  if (hadOld) await Deno.rename(target, old);
  await Deno.rename(fresh, target);
  if (hadOld) await Deno.remove(old, { recursive: true });
}

/** A file name for a page URL: its path as a slug, e.g. "/blog/post" → "blog-post.md". */
export function pageFileName(url: string, taken: Set<string>): string {
  const path = new URL(url).pathname.replace(/\/+$/, "") || "/index";
  const base =
    path.replace(/^\/+/, "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")
      .slice(0, 80) ||
    "index";
  let name = `${base}.md`;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}.md`;
  taken.add(name);
  return name;
}

/** Fills a site folder: one Markdown file per page and `pages.json`. */
export async function writeSite(
  dir: string,
  pages: CrawledPage[],
  fetchedAt: string,
): Promise<void> {
  const taken = new Set<string>();
  const listing = [];
  for (const page of pages) {
    const file = pageFileName(page.url, taken);
    await Deno.writeTextFile(join(dir, file), `# ${page.title}\n\n${page.text}\n`);
    listing.push({ file, url: page.url, title: page.title, fetchedAt });
  }
  await Deno.writeTextFile(join(dir, "pages.json"), JSON.stringify(listing, null, 2) + "\n");
}

/** Fills a GitHub folder: `repos.json` and each repository's README. */
export async function writeGithub(
  dir: string,
  repos: { repo: CachedRepo; readme: string | null }[],
): Promise<void> {
  for (const { repo, readme } of repos) {
    if (readme === null) continue;
    await Deno.mkdir(join(dir, repo.name), { recursive: true });
    await Deno.writeTextFile(join(dir, repo.name, "README.md"), readme);
  }
  await Deno.writeTextFile(
    join(dir, "repos.json"),
    JSON.stringify(repos.map((r) => r.repo), null, 2) + "\n",
  );
}
