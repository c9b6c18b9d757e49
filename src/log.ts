/**
 * Logger that writes nats-server style lines (`2019/05/31 18:00:26.327583 [INF] msg`) or JSON.
 * The clock and the sink are injectable so tests can assert exact lines.
 */
import type { LoggingConfig } from "./config/types.js";

export type Level = "debug" | "trace" | "info" | "warn" | "error" | "fatal";

/**
 * What a line is about, as data: with `logging.json` each is a field of its own; the text
 * format already carries them in the message.
 */
export interface LogFields {
  /** Account public key (in full, where the message shows 12 characters). */
  readonly account?: string;
  readonly jti?: string;
  /** Where a change or request came from: http, nats, file, sync, primary, lookup, expiry, cluster. */
  readonly source?: string;
  /** The refusal's error code (src/errors.ts). */
  readonly code?: string;
  /** On a rate-limited line: how many lines like it were not written (see limitRepeats). */
  readonly suppressed?: number;
}

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  trace(msg: string, fields?: LogFields): void;
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
  /** Bytes written but not yet taken by the reader (default: stderr's queue; 0 with `write`). */
  readonly backlog?: () => number;
}

/**
 * Lines are dropped (and counted) while this much output waits for its reader: a stalled log
 * reader must not turn a flood of lines into unbounded memory (a pipe nobody drains).
 */
export const MAX_LOG_BACKLOG = 4 * 1024 * 1024;

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

/** The JSON field names, in the order they are written (fixed, so lines compare easily). */
const FIELD_NAMES = ["account", "jti", "source", "code", "suppressed"] as const;

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
  const backlog = opts.backlog ?? (opts.write ? () => 0 : () => process.stderr.writableLength);
  let dropped = 0;
  const now = opts.nowMicros ?? wallMicros;
  const pid = opts.pid ?? process.pid;
  const colors = cfg.colors && (opts.isTTY ?? process.stderr.isTTY === true);
  const prefix = cfg.pid ? `[${pid}] ` : "";

  const emit = (level: Level, msg: string, fields?: LogFields): void => {
    if (backlog() > MAX_LOG_BACKLOG) {
      dropped++;
      return;
    }
    if (dropped > 0) {
      const n = dropped;
      dropped = 0;
      format("warn", `${n} log line(s) dropped: the log output was not read fast enough`);
    }
    format(level, msg, fields);
  };

  const format = (level: Level, msg: string, fields?: LogFields): void => {
    if (cfg.json) {
      const rec: Record<string, unknown> = { level, msg };
      if (fields) {
        for (const k of FIELD_NAMES) if (fields[k] !== undefined) rec[k] = fields[k];
      }
      if (cfg.time) rec["time"] = new Date(Number(now() / 1000n)).toISOString();
      if (cfg.pid) rec["pid"] = pid;
      write(JSON.stringify(rec) + "\n");
      return;
    }
    const label = colors ? `${COLORS[level]}${LABELS[level]}\x1b[0m` : LABELS[level];
    const time = cfg.time ? formatTimestamp(now()) + " " : "";
    write(`${prefix}${time}${label} ${msg}\n`);
  };

  return leveled(emit, cfg.debug, cfg.trace);
}

/** A Logger whose every level goes to `emit`; debug and trace lines only when enabled. */
function leveled(emit: (level: Level, msg: string, fields?: LogFields) => void, debugEnabled: boolean, traceEnabled: boolean): Logger {
  return {
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    fatal: (m, f) => emit("fatal", m, f),
    debug: (m, f) => {
      if (debugEnabled) emit("debug", m, f);
    },
    trace: (m, f) => {
      if (traceEnabled) emit("trace", m, f);
    },
    debugEnabled,
    traceEnabled,
  };
}

export interface RepeatLimit {
  /** Error codes (`fields.code`) whose lines are limited: the misses. */
  readonly codes: readonly string[];
  /** Length of a window in ms. */
  readonly intervalMs: number;
  /** Lines of one kind written in full per window; the rest are counted. */
  readonly burst: number;
  /** Wall clock in milliseconds. */
  readonly now: () => number;
  /** Runs `fn` after `ms` (default: an unref'd timer); writes a window's count once it closes. */
  readonly schedule?: (fn: () => void, ms: number) => void;
}

/** A logger whose limited lines may still owe a count; `flush` writes it (on shutdown). */
export interface LimitedLogger extends Logger {
  flush(): void;
}

interface Window {
  readonly start: number;
  written: number;
  suppressed: number;
  last?: { readonly level: Level; readonly msg: string; readonly fields: LogFields };
}

/**
 * A flood of misses must not flood the log: lines with one of `codes` are grouped by kind (level,
 * source and code, whatever the account). A window opens with a kind's first line and lasts
 * `intervalMs`; its first `burst` lines are written, later ones counted. When it closes, the last
 * counted line is written with ` (N similar lines suppressed)` (N = the others; `suppressed` in
 * JSON), so every line is either written or counted. Other lines pass straight through.
 */
export function limitRepeats(log: Logger, o: RepeatLimit): LimitedLogger {
  const codes = new Set(o.codes);
  const schedule = o.schedule ?? ((fn, ms) => setTimeout(fn, ms).unref());
  const windows = new Map<string, Window>();

  const close = (kind: string, w: Window): void => {
    windows.delete(kind);
    const last = w.last;
    if (!last) return;
    const others = w.suppressed - 1;
    if (others === 0) log[last.level](last.msg, last.fields);
    else log[last.level](`${last.msg} (${others} similar line${others === 1 ? "" : "s"} suppressed)`, { ...last.fields, suppressed: others });
  };

  const limited = (level: Level, msg: string, fields: LogFields | undefined): void => {
    if (fields?.code === undefined || !codes.has(fields.code)) {
      log[level](msg, fields);
      return;
    }
    const kind = `${level} ${fields.source ?? ""} ${fields.code}`;
    const t = o.now();
    let w = windows.get(kind);
    // A window also closes when the clock went back: counts must not wait for it to catch up.
    if (w && (t - w.start >= o.intervalMs || t < w.start)) {
      close(kind, w);
      w = undefined;
    }
    if (!w) {
      w = { start: t, written: 0, suppressed: 0 };
      windows.set(kind, w);
    }
    if (w.written < o.burst) {
      w.written++;
      log[level](msg, fields);
      return;
    }
    if (w.suppressed++ === 0) {
      const open = w;
      schedule(() => {
        if (windows.get(kind) === open) close(kind, open);
      }, Math.max(0, open.start + o.intervalMs - t));
    }
    w.last = { level, msg, fields };
  };

  return {
    ...leveled(limited, log.debugEnabled, log.traceEnabled),
    flush: () => {
      for (const [kind, w] of [...windows]) close(kind, w);
    },
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

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `Fri May 31 18:00:26 CDT 2019`, the Unix `date` format the Go server logged. */
export function unixDate(d: Date): string {
  // Loading Intl's time zone data costs tens of ms of startup: not for the common UTC host.
  const tz = d.toString().endsWith("(Coordinated Universal Time)")
    ? "UTC"
    : (new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(d).find((p) => p.type === "timeZoneName")?.value ??
      "UTC");
  const pad = (n: number): string => String(n).padStart(2, "0");
  return (
    `${WEEKDAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${tz} ${d.getFullYear()}`
  );
}
