/** Run with only `--allow-net=<redis host>`: connects (args: URL, wait ms), INCRs, prints it. */
import { RedisConnection } from "../lib/relay/redis/redis_connection.ts";
import { parseRedisUrl } from "../lib/relay/redis/redis_url.ts";

const connection = new RedisConnection(parseRedisUrl(Deno.args[0]!));
await connection.connect(Number(Deno.args[1] ?? 10_000));
// deno-lint-ignore no-console
console.log(`probe: INCR -> ${await connection.command(["INCR", "probe"])}`);
await connection.close();
