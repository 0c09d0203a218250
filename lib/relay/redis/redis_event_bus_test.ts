import { EventEmitter } from "node:events";
import { assert, assertEquals } from "../../../tests/_assert.ts";
import { type RedisProcess, startRedis } from "../../../tests/_redis_process.ts";
import { RedisConnection } from "./redis_connection.ts";
import { type BusEvent, RedisEventBus, type RedisEventBusOptions } from "./redis_event_bus.ts";
import { parseRedisUrl } from "./redis_url.ts";
import { StoreUnavailableError } from "./store_unavailable_error.ts";

interface Chunk extends BusEvent {
  text: string;
}

/** One relay's side of the bus: its own command and subscriber connections. */
async function relayBus(redis: RedisProcess, options: RedisEventBusOptions = {}) {
  const endpoint = parseRedisUrl(redis.url);
  const commands = new RedisConnection(endpoint, { reconnectBaseMs: 20, reconnectCapMs: 200 });
  const subscriber = commands.duplicate();
  await commands.connect(10_000);
  await subscriber.connect(10_000);
  const bus = new RedisEventBus<Chunk>(commands, subscriber, options);
  return {
    bus,
    commands,
    subscriber,
    close: async () => {
      await subscriber.close();
      await commands.close();
    },
  };
}

/** A listener recording what it is given. */
function recorder() {
  const seqs: number[] = [];
  const gaps: number[] = [];
  return {
    seqs,
    gaps,
    listener: { deliver: (event: Chunk) => seqs.push(event.seq), gap: (n: number) => gaps.push(n) },
  };
}

async function eventually(check: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test("RedisEventBus delivers a chat's events to listeners on two relays in order, once", async () => {
  const redis = await startRedis();
  const [a, b, publisher] = [await relayBus(redis), await relayBus(redis), await relayBus(redis)];
  try {
    const onA = recorder();
    const onB = recorder();
    const other = recorder();
    const stops = [
      await a.bus.subscribe("chat-1", 0, onA.listener),
      await b.bus.subscribe("chat-1", 0, onB.listener),
      await b.bus.subscribe("chat-2", 0, other.listener),
    ];
    for (const seq of range(1, 100)) {
      assert(await publisher.bus.publish("chat-1", { seq, text: `t${seq}` }));
    }
    // A retried publish (same seq) and an older one are refused, not delivered again.
    assertEquals(await publisher.bus.publish("chat-1", { seq: 100, text: "again" }), false);
    assertEquals(await publisher.bus.publish("chat-1", { seq: 50, text: "old" }), false);
    assert(await publisher.bus.publish("chat-1", { seq: 101, text: "last" }));
    await eventually(() => onA.seqs.length >= 101 && onB.seqs.length >= 101, "both got all");
    assertEquals(onA.seqs, range(1, 101));
    assertEquals(onB.seqs, range(1, 101));
    assertEquals(other.seqs, [], "another chat's listener hears nothing");
    for (const stop of stops) await stop();
  } finally {
    for (const side of [a, b, publisher]) await side.close();
    await redis.dispose();
  }
});

Deno.test("RedisEventBus replays the history after a given seq, then goes on live", async () => {
  const redis = await startRedis();
  const [relay, publisher] = [await relayBus(redis), await relayBus(redis)];
  try {
    for (const seq of range(1, 10)) await publisher.bus.publish("c", { seq, text: "x" });
    // A visitor that saw up to 7 on another relay resumes here.
    const resumed = recorder();
    const stop = await relay.bus.subscribe("c", 7, resumed.listener);
    for (const seq of range(11, 15)) await publisher.bus.publish("c", { seq, text: "y" });
    await eventually(() => resumed.seqs.length >= 8, "the replay and the live events");
    assertEquals(resumed.seqs, range(8, 15));
    assertEquals(resumed.gaps, []);
    const { events, complete } = await relay.bus.history("c", 12);
    assertEquals([events.map((e) => e.seq), complete], [[13, 14, 15], true]);
    await stop();
  } finally {
    await relay.close();
    await publisher.close();
    await redis.dispose();
  }
});

Deno.test("RedisEventBus reports a gap when the capped history no longer holds what was missed", async () => {
  const redis = await startRedis();
  const relay = await relayBus(redis, { historyLength: 5 });
  try {
    for (const seq of range(1, 20)) await relay.bus.publish("c", { seq, text: "x" });
    assertEquals((await relay.bus.history("c", 3)).complete, false);
    assertEquals((await relay.bus.history("c", 15)).complete, true);
    const late = recorder();
    const stop = await relay.bus.subscribe("c", 3, late.listener);
    assertEquals(late.gaps, [3], "told to reload from the store");
    assertEquals(late.seqs, range(16, 20), "and given what the history still has");
    await stop();
  } finally {
    await relay.close();
    await redis.dispose();
  }
});

Deno.test("RedisEventBus catches up from the history after its subscriber connection was cut", async () => {
  const redis = await startRedis();
  const [relay, publisher] = [await relayBus(redis), await relayBus(redis)];
  try {
    const listening = recorder();
    const stop = await relay.bus.subscribe("c", 0, listening.listener);
    for (const seq of range(1, 5)) await publisher.bus.publish("c", { seq, text: "x" });
    await eventually(() => listening.seqs.length >= 5, "the first five");
    // Cut every subscribed connection, publish while it reconnects.
    await publisher.commands.command(["CLIENT", "KILL", "TYPE", "pubsub"]);
    for (const seq of range(6, 30)) await publisher.bus.publish("c", { seq, text: "y" });
    await eventually(() => listening.seqs.length >= 30, "all thirty").catch((e) => {
      throw new Error(`${e.message}: ${listening.seqs}`);
    });
    for (const seq of range(31, 35)) await publisher.bus.publish("c", { seq, text: "z" });
    await eventually(() => listening.seqs.length >= 35, "and live again");
    assertEquals(listening.seqs, range(1, 35));
    await stop();
  } finally {
    await relay.close();
    await publisher.close();
    await redis.dispose();
  }
});

Deno.test("RedisEventBus survives a Redis SIGKILL and restart: history kept, delivery resumes", async () => {
  const redis = await startRedis({ durability: "always" });
  const [relay, publisher] = [await relayBus(redis), await relayBus(redis)];
  try {
    const listening = recorder();
    const stop = await relay.bus.subscribe("c", 0, listening.listener);
    for (const seq of range(1, 5)) await publisher.bus.publish("c", { seq, text: "x" });
    await eventually(() => listening.seqs.length >= 5, "the first five");
    await redis.kill();
    await redis.start();
    await eventually(() => publisher.commands.up && relay.subscriber.up, "both reconnected");
    for (const seq of range(6, 10)) await publisher.bus.publish("c", { seq, text: "y" });
    await eventually(() => listening.seqs.length >= 10, "the rest");
    assertEquals(listening.seqs, range(1, 10));
    assertEquals((await publisher.bus.history("c", 0)).events.length, 10, "history on disk");
    await stop();
  } finally {
    await relay.close();
    await publisher.close();
    await redis.dispose();
  }
});

/**
 * A relay's command connection that can be held down while its subscriber is already back
 * (they reconnect on their own jittered timers), and told it is back with its "ready".
 */
class HeldCommands {
  readonly client = new EventEmitter();
  down = false;
  refused = 0;
  readonly #real: RedisConnection;

  constructor(real: RedisConnection) {
    this.#real = real;
  }

  command<T>(args: string[]): Promise<T> {
    if (this.down) {
      this.refused++;
      return Promise.reject(new StoreUnavailableError("held down by the test"));
    }
    return this.#real.command<T>(args);
  }

  eval<T>(lua: string, keys: string[], args: string[]): Promise<T> {
    if (this.down) return Promise.reject(new StoreUnavailableError("held down by the test"));
    return this.#real.eval<T>(lua, keys, args);
  }
}

Deno.test("RedisEventBus catches up as soon as its command connection is back, not on its retry timer", async () => {
  const redis = await startRedis();
  const [relay, publisher] = [await relayBus(redis), await relayBus(redis)];
  const commands = new HeldCommands(relay.commands);
  // A retry an hour away: only the command connection's "ready" can bring the events now.
  const bus = new RedisEventBus<Chunk>(
    commands as unknown as RedisConnection,
    relay.subscriber,
    { catchUpRetryMs: () => 3_600_000 },
  );
  try {
    const listening = recorder();
    const stop = await bus.subscribe("c", 0, listening.listener);
    for (const seq of range(1, 3)) await publisher.bus.publish("c", { seq, text: "x" });
    await eventually(() => listening.seqs.length >= 3, "the first three");

    // The subscriber is cut and comes back while the command connection is still away.
    commands.down = true;
    await publisher.commands.command(["CLIENT", "KILL", "TYPE", "pubsub"]);
    for (const seq of range(4, 6)) await publisher.bus.publish("c", { seq, text: "missed" });
    await eventually(() => commands.refused > 0, "a catch-up refused for want of commands");
    await eventually(() => relay.subscriber.up, "the subscriber back");
    for (const seq of range(7, 8)) await publisher.bus.publish("c", { seq, text: "held" });
    assertEquals(listening.seqs, range(1, 3), "nothing out of order while catching up");

    commands.down = false;
    commands.client.emit("ready");
    await eventually(() => listening.seqs.length >= 8, "the missed and held events").catch((e) => {
      throw new Error(`${e.message}: ${listening.seqs}`);
    });
    await publisher.bus.publish("c", { seq: 9, text: "live" });
    await eventually(() => listening.seqs.length >= 9, "live again");
    assertEquals(listening.seqs, range(1, 9));
    await stop();
  } finally {
    await relay.close();
    await publisher.close();
    await redis.dispose();
  }
});
