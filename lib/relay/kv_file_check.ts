/**
 * Checks a local KV file before `Deno.openKv` takes it (issue 11, finding 8). Deno KV opens a
 * store with damaged pages happily and panics on the first read that meets one, and takes a
 * zero-length file as a new, empty store; either way the relay would crash-loop or silently
 * start with no chats. Reading the file with SQLite first turns both into one refusal.
 *
 * The rule: a missing file is a new store; an existing one must be a regular file that
 * starts with SQLite's header and passes `PRAGMA quick_check`. A zero-length file is refused
 * (Deno KV writes the header the moment it creates a store, so an empty file is never one it
 * left behind), unless a non-empty `-wal` beside it holds the data, as after a crash.
 */
import { DatabaseSync } from "node:sqlite";

const SQLITE_HEADER = "SQLite format 3\0";
/** quick_check lists at most this many problems; the first is the one reported. */
const MAX_REPORTED = 3;

function sizeOf(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function header(path: string): string {
  const file = Deno.openSync(path, { read: true });
  try {
    const bytes = new Uint8Array(SQLITE_HEADER.length);
    const read = file.readSync(bytes) ?? 0;
    return new TextDecoder("latin1").decode(bytes.subarray(0, read));
  } finally {
    file.close();
  }
}

/**
 * Why the store at `path` cannot be used (a sentence fragment naming the cause), or null
 * when it is fine or does not exist yet.
 */
export function kvFileProblem(path: string): string | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    return `cannot read it: ${(error as Error).message.split("\n")[0]}`;
  }
  if (info.isDirectory) {
    return "it is a directory, not a KV file (unable to open database file)";
  }
  if (!info.isFile) return "it is not a regular file";
  if (info.size === 0) {
    if ((sizeOf(`${path}-wal`) ?? 0) === 0) {
      return "the file is empty (0 bytes), so it is not a store this relay wrote; " +
        "remove it to start a new, empty store";
    }
  } else if (header(path) !== SQLITE_HEADER) {
    return "it is not a Deno KV (SQLite) file";
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const rows = db.prepare(`PRAGMA quick_check(${MAX_REPORTED})`).all() as {
      quick_check?: string;
    }[];
    const verdict = rows.map((row) => row.quick_check ?? "").filter(Boolean);
    if (verdict.length === 1 && verdict[0] === "ok") return null;
    const first = verdict.join("; ").replace(/\*\*\* in database main \*\*\*\s*/, "")
      .split("\n")[0];
    return `the store is damaged (SQLite integrity check: ${first}); restore it from a backup`;
  } catch (error) {
    const message = (error as Error).message.split("\n")[0];
    return `the store is damaged (${message}); restore it from a backup`;
  } finally {
    db?.close();
  }
}
