import { EventEmitter } from "node:events";
import { assertEquals } from "../../../tests/_assert.ts";
import { Logger } from "../../log.ts";
import type { Metrics } from "../metrics.ts";
import type { VisitorHub } from "../visitor_hub.ts";
import type { WorkerHub } from "../worker_hub.ts";
import type { RedisConnection } from "./redis_connection.ts";
import { RedisFanout } from "./redis_fanout.ts";

/** A connection whose losses and returns the test plays: "reconnecting", then "ready". */
class PlayedConnection {
  readonly client = new EventEmitter();
  up = true;

  lose(): void {
    this.up = false;
    this.client.emit("reconnecting");
  }

  back(): void {
    this.up = true;
    this.client.emit("ready");
  }

  run<T>(_call: unknown): Promise<T> {
    return Promise.resolve(undefined as T);
  }
}

function fanoutOn(commands: PlayedConnection, subscriber: PlayedConnection) {
  return new RedisFanout({
    commands: commands as unknown as RedisConnection,
    subscriber: subscriber as unknown as RedisConnection,
    visitors: {} as VisitorHub,
    workers: {} as WorkerHub,
    metrics: {} as Metrics,
    log: new Logger("test", "error", () => {}),
    relayId: "relay-a",
  });
}

/** Lets the fanout's in-order note handling run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("RedisFanout rereads the queue once both connections are back, whichever returns last", async () => {
  const [commands, subscriber] = [new PlayedConnection(), new PlayedConnection()];
  const fanout = fanoutOn(commands, subscriber);
  let rereads = 0;
  await fanout.listen({
    turnChanged: () => Promise.resolve(),
    siteChanged: () => Promise.resolve(),
    resync: () => Promise.resolve(void rereads++),
  });

  // The subscriber is back first: the reread would fail on the command connection, so waits.
  commands.lose();
  subscriber.lose();
  subscriber.back();
  await settle();
  assertEquals(rereads, 0, "not while the command connection is away");
  commands.back();
  await settle();
  assertEquals(rereads, 1, "once both are back");

  // And the other way round; a "ready" with nothing lost rereads nothing.
  subscriber.lose();
  commands.back();
  await settle();
  assertEquals(rereads, 1);
  subscriber.back();
  await settle();
  assertEquals(rereads, 2);
  subscriber.back();
  await settle();
  assertEquals(rereads, 2, "nothing was lost since");
});

Deno.test("RedisFanout tries a failed reread again when a connection comes back", async () => {
  const [commands, subscriber] = [new PlayedConnection(), new PlayedConnection()];
  const fanout = fanoutOn(commands, subscriber);
  const outcomes = [false, true];
  let rereads = 0;
  await fanout.listen({
    turnChanged: () => Promise.resolve(),
    siteChanged: () => Promise.resolve(),
    resync: () => {
      rereads++;
      return outcomes.shift() ? Promise.resolve() : Promise.reject(new Error("Redis away again"));
    },
  });
  subscriber.lose();
  subscriber.back();
  await settle();
  assertEquals(rereads, 1);
  commands.back(); // e.g. the command connection dropped and returned meanwhile
  await settle();
  assertEquals(rereads, 2, "the failed reread is owed until one succeeds");
  subscriber.back();
  await settle();
  assertEquals(rereads, 2);
});
