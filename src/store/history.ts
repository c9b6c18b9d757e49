/**
 * Bounded version history for stores without a native one (directory, memory): every change on
 * the feed is appended to `<statedir>/history/<KEY>.jsonl`, keeping the last `limit` versions.
 */
import { appendFile, mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { AccountChange } from "../accounts.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { KeyedQueue } from "../keyed-queue.js";
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
  /**
   * Without a directory: the lines themselves (bounded by the limit). With one: only the last
   * revision and line count per key, so memory stays small however many versions are on disk.
   */
  private readonly memory = new Map<string, Line[]>();
  private readonly counts = new Map<string, { revision: number; lines: number }>();
  /** Keys with a log file at open(); any other key has none yet (no read needed to know it). */
  private readonly existing = new Set<string>();
  /** Keeps each key's writes (and reads after them) in order. */
  private readonly queue = new KeyedQueue();
  /** Keys whose file ends in a line torn by a crash: the next write rewrites the file. */
  private readonly torn = new Set<string>();
  private dirReady: Promise<void> | undefined;
  /** open() listed the directory, so `existing` is complete. */
  private opened = false;

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
      else if (name.endsWith(".jsonl")) this.existing.add(name.slice(0, -".jsonl".length));
    }
    this.opened = true;
  }

  /** Change-feed listener: one version per actual change (expiry is not a new version). */
  record(change: AccountChange): void {
    if (change.source === "expiry" || (!change.entry && !change.deleted)) return;
    const key = change.key;
    const body = change.entry ? { jwt: change.entry.jwt } : { deleted: true };
    const stored = new Date(this.now()).toISOString();
    this.queue
      .run(key, async () => {
        const file = this.file(key);
        if (!file) {
          const lines = this.memory.get(key) ?? [];
          lines.push({ revision: (lines.at(-1)?.revision ?? 0) + 1, stored, ...body });
          this.memory.set(key, lines.slice(-this.opts.limit));
          return;
        }
        const count = this.counts.get(key) ?? (await this.countOf(key));
        const line: Line = { revision: count.revision + 1, stored, ...body };
        this.counts.set(key, { revision: line.revision, lines: await this.append(key, file, count.lines, line) });
      })
      .catch((err: unknown) => this.log.error(`history for ${key.slice(0, 12)} not recorded: ${(err as Error).message}`));
  }

  /** The last `limit` versions, oldest first (the file may hold more between compactions). */
  async history(key: string): Promise<HistoryEntry[]> {
    const lines = await this.queue.run(key, async () =>
      this.opts.dir === undefined ? (this.memory.get(key) ?? []) : this.read(key),
    );
    return lines.slice(-this.opts.limit).map((l) => ({
      revision: l.revision,
      stored: new Date(l.stored),
      ...(l.jwt !== undefined ? { jwt: l.jwt } : { deleted: true }),
    }));
  }

  private file(key: string): string | undefined {
    return this.opts.dir === undefined ? undefined : join(this.opts.dir, `${key}.jsonl`);
  }

  /** Every line of `key`'s log file (a torn last line is skipped and remembered). */
  private async read(key: string): Promise<Line[]> {
    const lines: Line[] = [];
    const file = this.file(key)!;
    if (this.opened && !this.existing.has(key)) return lines;
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
    return lines;
  }

  private async countOf(key: string): Promise<{ revision: number; lines: number }> {
    const lines = await this.read(key);
    return { revision: lines.at(-1)?.revision ?? 0, lines: lines.length };
  }

  /**
   * Append one line; compact to the last `limit` lines once the file holds twice that (or holds a
   * torn line). Resolves with the number of lines now in the file.
   */
  private async append(key: string, file: string, linesBefore: number, line: Line): Promise<number> {
    this.dirReady ??= mkdir(this.opts.dir!, { recursive: true, mode: 0o750 }).then(() => {});
    await this.dirReady;
    this.existing.add(key);
    if (linesBefore + 1 > 2 * this.opts.limit || this.torn.delete(key)) {
      const kept = [...(await this.read(key)), line].slice(-this.opts.limit);
      this.torn.delete(key);
      await writeFileDurable(file, kept.map((l) => JSON.stringify(l) + "\n").join(""));
      return kept.length;
    }
    await appendFile(file, JSON.stringify(line) + "\n", { mode: 0o640 });
    return linesBefore + 1;
  }
}
