/**
 * Bounded version history for stores without a native one (directory, memory): every change on
 * the feed is appended to `<statedir>/history/<KEY>.jsonl`, keeping the last `limit` versions.
 */
import { appendFile, mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { AccountChange } from "../accounts.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { writeFileDurable } from "./dir.js";
import type { HistoryEntry, HistorySource } from "./types.js";

export interface HistoryLogOptions {
  /** Directory for the per-account logs; absent keeps history in memory only. */
  readonly dir?: string;
  /** Versions kept per account. */
  readonly limit: number;
  readonly now?: () => number;
  readonly log?: Logger;
}

interface Line {
  readonly revision: number;
  readonly stored: string;
  readonly jwt?: string;
  readonly deleted?: boolean;
}

export class HistoryLog implements HistorySource {
  private readonly opts: HistoryLogOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Per key: lines (loaded lazily from disk) and the write chain that keeps them in order. */
  private readonly cache = new Map<string, Line[]>();
  private readonly chains = new Map<string, Promise<void>>();
  /** Keys whose file ends in a line torn by a crash: the next write rewrites the file. */
  private readonly torn = new Set<string>();
  private dirReady: Promise<void> | undefined;

  constructor(opts: HistoryLogOptions) {
    this.opts = opts;
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? Date.now;
  }

  /** Remove temp files of compactions a crash interrupted (the logs themselves stay valid). */
  async open(): Promise<void> {
    if (this.opts.dir === undefined) return;
    let names: string[];
    try {
      names = await readdir(this.opts.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn(`cannot read ${this.opts.dir}: ${(e as Error).message}`);
      return;
    }
    for (const name of names) {
      if (/^\..+\.jsonl\.[0-9a-f]+\.tmp$/.test(name)) await unlink(join(this.opts.dir, name)).catch(() => {});
    }
  }

  /** Change-feed listener: one version per actual change (expiry is not a new version). */
  record(change: AccountChange): void {
    if (change.source === "expiry" || (!change.entry && !change.deleted)) return;
    const key = change.key;
    const jwt = change.entry?.jwt;
    const stored = new Date(this.now()).toISOString();
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(async () => {
        const lines = await this.load(key);
        const line: Line = {
          revision: (lines.at(-1)?.revision ?? 0) + 1,
          stored,
          ...(jwt !== undefined ? { jwt } : { deleted: true }),
        };
        lines.push(line);
        await this.persist(key, lines, line);
      })
      .catch((err: unknown) => this.log.error(`history for ${key.slice(0, 12)} not recorded: ${(err as Error).message}`));
    this.chains.set(key, next);
  }

  /** The last `limit` versions, oldest first (the file may hold more between compactions). */
  async history(key: string): Promise<HistoryEntry[]> {
    await this.chains.get(key);
    return (await this.load(key)).slice(-this.opts.limit).map((l) => ({
      revision: l.revision,
      stored: new Date(l.stored),
      ...(l.jwt !== undefined ? { jwt: l.jwt } : { deleted: true }),
    }));
  }

  private file(key: string): string | undefined {
    return this.opts.dir === undefined ? undefined : join(this.opts.dir, `${key}.jsonl`);
  }

  private async load(key: string): Promise<Line[]> {
    let lines = this.cache.get(key);
    if (lines) return lines;
    lines = [];
    const file = this.file(key);
    if (file) {
      try {
        const content = await readFile(file, "utf8");
        // Appending after a torn last line would glue the next version onto it and lose both.
        if (content !== "" && !content.endsWith("\n")) this.torn.add(key);
        for (const text of content.split("\n")) {
          if (text === "") continue;
          try {
            lines.push(JSON.parse(text) as Line);
          } catch {
            // A line torn by a crash is the last one; what came before is intact.
          }
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    this.cache.set(key, lines);
    return lines;
  }

  private async persist(key: string, lines: Line[], added: Line): Promise<void> {
    const limit = this.opts.limit;
    const file = this.file(key);
    // Compact once the log holds twice the limit, so appends stay cheap in between.
    const compact = lines.length > 2 * limit;
    if (compact) lines.splice(0, lines.length - limit);
    if (!file) {
      if (lines.length > limit) lines.splice(0, lines.length - limit);
      return;
    }
    this.dirReady ??= mkdir(this.opts.dir!, { recursive: true, mode: 0o750 }).then(() => {});
    await this.dirReady;
    if (compact || this.torn.delete(key)) await writeFileDurable(file, lines.map((l) => JSON.stringify(l) + "\n").join(""));
    else await appendFile(file, JSON.stringify(added) + "\n", { mode: 0o640 });
  }
}
