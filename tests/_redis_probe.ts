/** Run with only `--allow-net=<redis host>`: connects, INCRs, and prints the result. */
import { RedisConnection } from "../lib/relay/redis/redis_connection.ts";
import { parseRedisUrl } from "../lib/relay/redis/redis_url.ts";

const connection = new RedisConnection(parseRedisUrl(Deno.args[0]!));
await connection.connect(10_000);
// deno-lint-ignore no-console
console.log(`probe: INCR -> ${await connection.command(["INCR", "probe"])}`);
await connection.close();
