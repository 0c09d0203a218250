import { join } from "node:path";
import { assert, assertEquals } from "../../tests/_assert.ts";
import { kvFileProblem } from "./kv_file_check.ts";

Deno.test("kvFileProblem() passes a missing file and a store left mid-write by a crash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals(kvFileProblem(join(dir, "new.kv")), null);
    const live = join(dir, "live.kv");
    const kv = await Deno.openKv(live);
    try {
      await kv.set(["a"], "x".repeat(10_000));
      // Copied while the store is open: the state a SIGKILL leaves, data still in the -wal.
      const crashed = join(dir, "crashed.kv");
      await Deno.copyFile(live, crashed);
      await Deno.copyFile(`${live}-wal`, `${crashed}-wal`);
      assertEquals(kvFileProblem(crashed), null);
      // An empty main file is refused alone, but judged by SQLite when a -wal holds the data.
      const empty = join(dir, "empty.kv");
      await Deno.writeFile(empty, new Uint8Array());
      assert(kvFileProblem(empty)?.includes("empty (0 bytes)"));
      await Deno.copyFile(`${live}-wal`, `${empty}-wal`);
      assert(!kvFileProblem(empty)?.includes("empty (0 bytes)"));
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
