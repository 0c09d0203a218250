/** What the benchmark reads from `/proc`: a process's RSS and CPU time, and the machine. */

/** Clock ticks per second of `/proc/PID/stat` (USER_HZ; 100 on every Linux we target). */
const TICKS_PER_SECOND = 100;

/** Resident set size of `pid` in KiB (`VmRSS` of `/proc/PID/status`). */
export function rssKib(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`Cannot read VmRSS of process ${pid}`);
  return Number(match[1]);
}

/** CPU time (user + system) `pid` has used, in milliseconds (10 ms resolution). */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may contain spaces; fields after its ")" are fixed.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}

/** The machine the figures come from. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  ramGib: number;
  kernel: string;
  deno: string;
  v8: string;
}

/** CPU model, cores and RAM from `/proc`, and the Deno version. */
export function machineInfo(): MachineInfo {
  let cpu = "unknown";
  let ramGib = NaN;
  let kernel = "unknown";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? cpu;
    const kb = /^MemTotal:\s+(\d+) kB/m.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1];
    ramGib = Number(kb) / 1024 / 1024;
    kernel = Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim();
  } catch { /* not Linux: leave unknown */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    ramGib,
    kernel,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}
