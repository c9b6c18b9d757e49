/**
 * Logger that writes nats-server style lines (`2019/05/31 18:00:26.327583 [INF] msg`) or JSON.
 * The clock and the sink are injectable so tests can assert exact lines.
 */
import type { LoggingConfig } from "./config/types.js";

export type Level = "debug" | "trace" | "info" | "warn" | "error" | "fatal";

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  fatal(msg: string): void;
  debug(msg: string): void;
  trace(msg: string): void;
  readonly debugEnabled: boolean;
  readonly traceEnabled: boolean;
}

export interface LoggerOptions {
  /** Where finished lines go (each includes its trailing newline). */
  readonly write?: (line: string) => void;
  /** Wall clock in microseconds since the epoch. */
  readonly nowMicros?: () => bigint;
  readonly pid?: number;
  /** Whether the sink is a terminal; colours are only used on one. */
  readonly isTTY?: boolean;
}

const LABELS: Record<Level, string> = {
  info: "[INF]",
  warn: "[WRN]",
  error: "[ERR]",
  fatal: "[FTL]",
  debug: "[DBG]",
  trace: "[TRC]",
};

// ANSI colours as nats-server uses them.
const COLORS: Record<Level, string> = {
  info: "\x1b[32m",
  warn: "\x1b[0;93m",
  error: "\x1b[31m",
  fatal: "\x1b[31m",
  debug: "\x1b[36m",
  trace: "\x1b[33m",
};

const origin = BigInt(Math.round(performance.timeOrigin * 1000));
/** Microsecond wall clock (Date has only milliseconds). */
export function wallMicros(): bigint {
  return origin + BigInt(Math.round(performance.now() * 1000));
}

const p2 = (n: number): string => (n < 10 ? "0" : "") + n;

/** Local time as `YYYY/MM/DD HH:MM:SS.uuuuuu`, the nats-server log timestamp. */
export function formatTimestamp(micros: bigint): string {
  const d = new Date(Number(micros / 1000n));
  const us = String(micros % 1000000n).padStart(6, "0");
  return (
    `${d.getFullYear()}/${p2(d.getMonth() + 1)}/${p2(d.getDate())} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${us}`
  );
}

export function createLogger(cfg: LoggingConfig, opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const now = opts.nowMicros ?? wallMicros;
  const pid = opts.pid ?? process.pid;
  const colors = cfg.colors && (opts.isTTY ?? process.stderr.isTTY === true);
  const prefix = cfg.pid ? `[${pid}] ` : "";

  const emit = (level: Level, msg: string): void => {
    if (cfg.json) {
      const rec: Record<string, unknown> = { level, msg };
      if (cfg.time) rec["time"] = new Date(Number(now() / 1000n)).toISOString();
      if (cfg.pid) rec["pid"] = pid;
      write(JSON.stringify(rec) + "\n");
      return;
    }
    const label = colors ? `${COLORS[level]}${LABELS[level]}\x1b[0m` : LABELS[level];
    const time = cfg.time ? formatTimestamp(now()) + " " : "";
    write(`${prefix}${time}${label} ${msg}\n`);
  };

  return {
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m) => emit("error", m),
    fatal: (m) => emit("fatal", m),
    debug: (m) => {
      if (cfg.debug) emit("debug", m);
    },
    trace: (m) => {
      if (cfg.trace) emit("trace", m);
    },
    debugEnabled: cfg.debug,
    traceEnabled: cfg.trace,
  };
}

/** A logger that drops everything (embedding, tests that do not look at logs). */
export const silentLogger: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
  fatal: () => {},
  debug: () => {},
  trace: () => {},
  debugEnabled: false,
  traceEnabled: false,
};
