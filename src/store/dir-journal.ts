/**
 * Journaled writes of the directory store: each change is durable in the write-ahead journal
 * (group commit) before it is acknowledged; checkpoints fsync the files and drop the journal.
 */
import { fsyncDir, syncPath } from "../durable.js";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import { Journal, type JournalOp } from "./journal.js";
import { reportTiming } from "./timing.js";

/**
 * Changes are durable in the journal when acknowledged; a checkpoint makes the files themselves
 * durable and drops the journal, at the latest this long after a change, or once it holds
 * CHECKPOINT_BYTES. Writers wait for the checkpoint when the journal outgrows MAX_JOURNAL_BYTES.
 */
export const CHECKPOINT_MS = 1000;
const CHECKPOINT_BYTES = 4 << 20;
const MAX_JOURNAL_BYTES = 32 << 20;
/** fsyncs a checkpoint keeps in flight at once (the libuv pool runs them in parallel). */
const CHECKPOINT_PARALLEL = 32;

export interface JournaledWriterOptions {
  /** The store directory (its journal files live there too). */
  readonly dir: string;
  readonly log: Logger;
  /** A checkpoint runs this long after the first change it will cover (default CHECKPOINT_MS). */
  readonly checkpointMs?: number;
}

export class JournaledWriter {
  readonly journal: Journal;
  private readonly o: JournaledWriterOptions;
  /** Files and directories changed since the last checkpoint began (not fsynced yet). */
  private dirtyFiles = new Set<string>();
  private dirtyDirs = new Set<string>();
  /** Changes under way per journal generation: a checkpoint waits for those of the generations it drops. */
  private readonly inflight = new Map<number, number>();
  private inflightDone: (() => void) | undefined;
  private readonly checkpointHooks: Array<() => Promise<void>> = [];
  private checkpointTimer: NodeJS.Timeout | undefined;
  private checkpointing: Promise<void> | undefined;
  private checkpointAgain = false;
  private closed = false;

  constructor(o: JournaledWriterOptions) {
    this.o = o;
    this.journal = new Journal(o.dir, o.log);
  }

  /** A file or directory this change touched: fsynced by the next checkpoint. */
  dirtyFile(file: string): void {
    this.dirtyFiles.add(file);
  }

  dirtyDir(dir: string): void {
    this.dirtyDirs.add(dir);
  }

  beforeCheckpoint(hook: () => Promise<void>): void {
    this.checkpointHooks.push(hook);
  }

  /**
   * Record `op` durably (group commit), then `apply` it to the files; the caller updates memory
   * after. `abandon` cleans up when the record fails; a failed `apply` is recorded as undone, so
   * no replay brings back a change that was refused.
   */
  async change(op: JournalOp, apply: () => Promise<void>, abandon?: () => Promise<unknown>): Promise<void> {
    const journal = this.journal;
    // Backpressure: a journal the checkpoints cannot keep up with must not grow without bound.
    if (journal.bytes > MAX_JOURNAL_BYTES) await this.checkpoint();
    const gen = journal.generation;
    this.inflight.set(gen, (this.inflight.get(gen) ?? 0) + 1);
    try {
      try {
        await journal.append(op);
      } catch (err) {
        await abandon?.();
        throw err;
      }
      try {
        await apply();
      } catch (err) {
        await abandon?.();
        await journal.append({ op: "undo", key: op.key }).catch(() => {});
        throw err;
      }
    } finally {
      const left = this.inflight.get(gen)! - 1;
      if (left > 0) this.inflight.set(gen, left);
      else {
        this.inflight.delete(gen);
        this.inflightDone?.();
      }
    }
    this.scheduleCheckpoint(journal.bytes >= CHECKPOINT_BYTES);
  }

  private scheduleCheckpoint(now: boolean): void {
    if (this.closed) return;
    if (now) {
      clearTimeout(this.checkpointTimer);
      this.checkpointTimer = undefined;
      void this.checkpoint().catch(() => {});
      return;
    }
    this.checkpointTimer ??= setTimeout(() => {
      this.checkpointTimer = undefined;
      void this.checkpoint().catch(() => {});
    }, this.o.checkpointMs ?? CHECKPOINT_MS).unref();
  }

  /**
   * Make every change journaled so far durable in the files themselves, run the hooks, then drop
   * the journal files. Calls during a running checkpoint share the next one.
   */
  checkpoint(): Promise<void> {
    if (this.checkpointing) {
      this.checkpointAgain = true;
      return this.checkpointing;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.checkpointAgain = false;
          await this.checkpointOnce();
        } while (this.checkpointAgain);
      } finally {
        // Cleared in the same step that ended the loop: a later call starts a new checkpoint.
        this.checkpointing = undefined;
      }
    };
    this.checkpointing = run();
    return this.checkpointing;
  }

  private async checkpointOnce(): Promise<void> {
    const journal = this.journal;
    if (!journal.holdsRecords) return;
    const t0 = process.hrtime.bigint();
    const upTo = journal.rotate();
    // Changes recorded in the generations dropped below must have reached their files first.
    while ([...this.inflight.keys()].some((g) => g <= upTo)) {
      await new Promise<void>((r) => (this.inflightDone = r));
    }
    this.inflightDone = undefined;
    const files = this.dirtyFiles;
    const dirs = this.dirtyDirs;
    this.dirtyFiles = new Set();
    this.dirtyDirs = new Set();
    try {
      // An fsync per file and directory, many in flight (the filesystem shares their journal
      // commits). syncfs would be one call, but flushes everything else on the filesystem too.
      await inParallel([...files], syncFile);
      // Shard directories before the root: a new shard's entry is only useful with its contents.
      await inParallel([...dirs].filter((d) => d !== this.o.dir), fsyncDir);
      if (dirs.has(this.o.dir)) await fsyncDir(this.o.dir);
      for (const hook of this.checkpointHooks) await hook();
      await journal.removeUpTo(upTo);
      reportTiming(this.o.dir, "checkpoint", t0);
    } catch (err) {
      for (const f of files) this.dirtyFiles.add(f);
      for (const d of dirs) this.dirtyDirs.add(d);
      this.o.log.error(`store checkpoint failed, the journal is kept: ${errorText(err)}`);
      this.scheduleCheckpoint(false);
      throw err;
    }
  }

  /** A clean stop leaves no journal: every change is in its file, durably. */
  async close(): Promise<void> {
    clearTimeout(this.checkpointTimer);
    await this.checkpoint().catch(() => {});
    await this.journal.close();
    this.closed = true;
  }
}

/** fdatasync one file; a file removed meanwhile has nothing left to sync. */
export function syncFile(file: string): Promise<void> {
  return syncPath(file, true).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== "ENOENT") throw e;
  });
}

/** Run `fn` over `items`, CHECKPOINT_PARALLEL at a time; rejects with the first failure. */
export async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CHECKPOINT_PARALLEL, items.length) }, worker));
}
