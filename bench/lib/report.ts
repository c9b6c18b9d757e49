/**
 * Tables and the machine description for the benchmark output and bench/RESULTS.md.
 */
import { cpus, loadavg, release, totalmem } from "node:os";
import { spawnSync } from "node:child_process";
import { HAS_TASKSET } from "./procs.js";

export type Cell = string | number | undefined;

export function fmt(v: Cell, digits = 0): string {
  if (v === undefined || (typeof v === "number" && !Number.isFinite(v))) return "–";
  if (typeof v === "string") return v;
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ms(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "–";
  return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
}

export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return "–";
  return (a / b).toFixed(2);
}

export function table(headers: string[], rows: Cell[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? fmt(c) : fmt(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.map(line)].join("\n");
}

function fsType(path: string): string {
  const r = spawnSync("df", ["-T", path], { encoding: "utf8" });
  const last = r.stdout?.trim().split("\n").pop()?.split(/\s+/);
  return last?.[1] ?? "unknown";
}

export function machine(tmp: string): string {
  const c = cpus();
  const ns = spawnSync("nats-server", ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "unknown";
  return [
    `- CPU: ${c.length} × ${c[0]?.model ?? "unknown"}`,
    `- memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB; kernel ${release()}; Node ${process.version}`,
    `- temp/store filesystem: ${fsType(tmp)} (${tmp})`,
    `- ${ns}; load generator: autocannon 8.0.0`,
    // Req/s and latency move with whatever else runs; CPU per request hardly does.
    `- load average (1, 5, 15 min) when the run ended: ${loadavg().map((l) => l.toFixed(1)).join(", ")}`,
    HAS_TASKSET && c.length >= 2
      ? "- pinning: servers under test on CPU 0, load generator on CPU 1 (taskset)"
      : "- pinning: none (taskset missing or a single CPU): server and load generator share the CPUs",
  ].join("\n");
}
