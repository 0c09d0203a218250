/**
 * The hostile phase (issue 11): relay RSS while clients attack the visitor socket with the
 * shipped limits, beside the idle baseline, and the latency an honest visitor's streamed
 * chunks see meanwhile. Attacks, each for a few seconds from 127.0.0.1:
 *
 * The attackers come from one address (`X-Real-IP`, as nginx sets it: the relay runs with
 * `TRUST_PROXY=true`, all other limits as shipped); the honest visitor from another.
 *
 * - 20 authenticated sockets that flood junk frames (1 byte and 60 KiB) and never read,
 *   reconnecting whenever the relay drops them (the attack of the issue's finding 1);
 * - 8 sockets without credentials that each start a 60 MiB frame (finding 2);
 * - 8 code holders' sockets that each send a whole 60 MiB frame: the cost that remains,
 *   since Deno assembles a message before the relay can refuse it (denoland/deno#15809).
 *
 * Run as its own process: `deno run --allow-all bench/hostile.ts '<job json>'` prints
 * `RESULT <json>`; `deno task bench --only=hostile` starts it and writes the table.
 */
import { bearer } from "../tests/_clients.ts";
import { clientFrame, rawHandshake } from "../tests/_raw_websocket.ts";
import { chunkSource, closeAll, openVisitor, relaySession, type Target } from "./clients.ts";
import { rssKib } from "./proc.ts";
import { LatencyHistogram, type LatencySummary } from "./stats.ts";

/** What the main bench process asks of this script. */
export interface HostileJob {
  type: "hostile";
  target: Target;
  /** How long each attack lasts. */
  phaseSeconds: number;
}

/** One attack: the relay's RSS before, at its peak and after, and the honest visitor's view. */
export interface HostilePhase {
  name: string;
  /** The bound on RSS growth, MiB (null: no bound, a figure to know). */
  targetMib: number | null;
  baselineMib: number;
  peakMib: number;
  afterMib: number;
  /** Honest chunk latency (send to receive, one clock) while the attack ran. */
  honest: LatencySummary;
  /** Honest chunks sent but never received. */
  honestLost: number;
  /** What the attackers got: sockets opened, dropped by the relay, refused handshakes. */
  attackers: { opened: number; dropped: number; refused: number; bytesSent: number };
}

/** Everything the phase measured. */
export interface HostileResult {
  idleMib: number;
  phases: HostilePhase[];
}

const MIB = 1024 * 1024;
/** An attacker's address (TEST-NET-3, one per attack); the honest visitor is 127.0.0.1. */
const fromAttacker = (n: number) => ({ "x-real-ip": `203.0.113.${n}` });
const HONEST_CHUNKS_PER_SECOND = 20;
const SAMPLE_EVERY_MS = 50;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const rssMib = (pid: number) => rssKib(pid) / 1024;

/** Whether a write went through (false once the relay has closed or reset the connection). */
const write = (conn: Deno.TcpConn, data: Uint8Array) =>
  conn.write(data).then(() => true, () => false);

/** The first line of the relay's answer to a handshake, read with a bound. */
async function statusLine(conn: Deno.TcpConn): Promise<string> {
  const buffer = new Uint8Array(1024);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const n = await Promise.race([
    conn.read(buffer).catch(() => null),
    new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 5_000)),
  ]);
  clearTimeout(timer);
  return n ? new TextDecoder().decode(buffer.subarray(0, n)).split("\r\n")[0]! : "";
}

function closeConn(conn: Deno.TcpConn): void {
  try {
    conn.close();
  } catch { /* closed */ }
}

/** 20 authenticated sockets flooding junk, never reading; a dropped one is reopened. */
async function junkFlood(port: number, token: string, until: number) {
  const stats = { opened: 0, dropped: 0, refused: 0, bytesSent: 0 };
  const small = new Uint8Array(Array.from({ length: 2000 }, () => [...clientFrame("x")]).flat());
  const large = clientFrame("y".repeat(60 * 1024));
  const attacker = async (i: number) => {
    while (performance.now() < until) {
      const conn = await rawHandshake(port, `/api/chat?chatId=junk-${i}`, {
        ...bearer(token),
        ...fromAttacker(1),
      });
      // The handshake's answer is the only thing read: refused, try again at once.
      if (!(await statusLine(conn)).includes(" 101 ")) {
        stats.refused++;
        closeConn(conn);
        continue;
      }
      stats.opened++;
      while (performance.now() < until) {
        const data = i % 2 ? large : small;
        if (!(await write(conn, data))) {
          stats.dropped++;
          break;
        }
        stats.bytesSent += data.length;
      }
      closeConn(conn);
    }
  };
  await Promise.all(Array.from({ length: 20 }, (_, i) => attacker(i)));
  return stats;
}

/** 8 sockets sending a 60 MiB frame each, with credentials (`token`) or without. */
async function bigFrames(port: number, token: string | null, until: number, ip: number) {
  const stats = { opened: 0, dropped: 0, refused: 0, bytesSent: 0 };
  const total = 60 * MIB;
  const piece = new Uint8Array(MIB);
  const attacker = async (i: number) => {
    const conn = await rawHandshake(
      port,
      `/api/chat?chatId=big-${i}`,
      token ? { ...bearer(token), ...fromAttacker(ip) } : fromAttacker(ip),
    );
    try {
      const status = await statusLine(conn);
      if (status.includes(" 101 ")) stats.opened++;
      else stats.refused++;
      // Sent either way: a refused client may still try to push the frame after its 401.
      let ok = await write(conn, clientFrame(piece, 0x2, total));
      for (let sent = piece.length; ok && sent < total && performance.now() < until;) {
        // The rest of the payload, unmasked: a binary frame's bytes are never checked.
        ok = await write(conn, piece);
        if (ok) sent += piece.length;
        stats.bytesSent += ok ? piece.length : 0;
      }
      if (!ok) stats.dropped++;
      // Hold the connection until the phase ends, as an attacker keeping the buffer would.
      while (performance.now() < until) await sleep(100);
    } finally {
      closeConn(conn);
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, i) => attacker(i)));
  return stats;
}

/** An honest visitor on its own chat, streamed a chunk every 50 ms; records each latency. */
async function honestStream(target: Target, token: string, chatId: string) {
  const histogram = new LatencyHistogram();
  const pending = new Map<number, number>();
  const visitor = await openVisitor(target, chatId, token, (data, at) => {
    const match = /"content":"h(\d+)@/.exec(data);
    if (!match) return;
    const id = Number(match[1]);
    const sentAt = pending.get(id);
    if (sentAt === undefined) return;
    pending.delete(id);
    histogram.record(at - sentAt);
  });
  const source = await chunkSource(target, chatId, token);
  let next = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const id = next++;
      pending.set(id, performance.now());
      await source.send(`h${id}@`, "socket");
      await sleep(1000 / HONEST_CHUNKS_PER_SECOND);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await sleep(500); // the last chunks land
      await source.close();
      await closeAll([visitor]);
      return { latency: histogram.summary(), lost: pending.size };
    },
  };
}

/** Runs one attack while sampling the relay's RSS and streaming to an honest visitor. */
async function phase(
  target: Target,
  token: string,
  name: string,
  targetMib: number | null,
  seconds: number,
  attack: (until: number) => Promise<HostilePhase["attackers"]>,
): Promise<HostilePhase> {
  const baselineMib = rssMib(target.pid);
  const honest = await honestStream(target, token, `honest-${name.replaceAll(/\W+/g, "-")}`);
  let peakMib = baselineMib;
  const sampler = setInterval(() => {
    peakMib = Math.max(peakMib, rssMib(target.pid));
  }, SAMPLE_EVERY_MS);
  const until = performance.now() + seconds * 1000;
  const attackers = await attack(until);
  clearInterval(sampler);
  peakMib = Math.max(peakMib, rssMib(target.pid));
  const { latency, lost } = await honest.stop();
  await sleep(1000);
  return {
    name,
    targetMib,
    baselineMib,
    peakMib,
    afterMib: rssMib(target.pid),
    honest: latency,
    honestLost: lost,
    attackers,
  };
}

/** Every attack in turn against one relay (`target.pid` is its process). */
export async function runHostile(job: HostileJob): Promise<HostileResult> {
  const target = job.target;
  const port = Number(new URL(target.url).port);
  const token = await relaySession(target);
  await sleep(1000);
  const idleMib = rssMib(target.pid);
  const seconds = job.phaseSeconds;
  const phases = [
    await phase(
      target,
      token,
      "20 sockets flooding junk, never reading",
      100,
      seconds,
      (until) => junkFlood(port, token, until),
    ),
    await phase(
      target,
      token,
      "8 sockets without credentials, 60 MiB frame each",
      200,
      seconds,
      (until) => bigFrames(port, null, until, 2),
    ),
    await phase(
      target,
      token,
      "8 code holders' sockets, 60 MiB frame each",
      null,
      seconds,
      (until) => bigFrames(port, token, until, 3),
    ),
  ];
  return { idleMib, phases };
}

/** The markdown table of one run. */
export function hostileTable(result: HostileResult): string {
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 1) : "–");
  const rows = [
    `Relay RSS idle (a visitor session, no sockets): ${f(result.idleMib)} MiB.`,
    "",
    "| Attack | RSS before (MiB) | Peak (MiB) | Growth (MiB) | Target | After (MiB) | Honest chunk p50 / p99 / max (ms) | Honest lost | Attacker sockets opened / dropped / refused | Attacker MiB sent |",
    "| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | --- | ---: |",
  ];
  for (const p of result.phases) {
    const growth = p.peakMib - p.baselineMib;
    const verdict = p.targetMib === null
      ? "(none)"
      : `< ${p.targetMib} ${growth < p.targetMib ? "✓" : "✗"}`;
    const l = p.honest;
    rows.push(
      `| ${p.name} | ${f(p.baselineMib)} | ${f(p.peakMib)} | ${f(growth)} | ${verdict} | ${
        f(p.afterMib)
      } | ${f(l.p50)} / ${f(l.p99)} / ${
        f(l.max)
      } (${l.count} chunks) | ${p.honestLost} | ${p.attackers.opened} / ${p.attackers.dropped} / ${p.attackers.refused} | ${
        f(p.attackers.bytesSent / MIB)
      } |`,
    );
  }
  return rows.join("\n");
}

if (import.meta.main) {
  const job = JSON.parse(Deno.args[0]!) as HostileJob;
  const result = await runHostile(job);
  // deno-lint-ignore no-console
  console.log(`RESULT ${JSON.stringify(result)}`);
}
