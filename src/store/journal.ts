/**
 * Write-ahead journal of the directory store: each change is appended as one checksummed line and
 * made durable by one fdatasync shared by every change that arrived meanwhile (group commit).
 */
import { open, readdir, readFile, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Logger } from "../log.js";
import { FILE_MODE, fsyncDir } from "../durable.js";
import { reportTiming } from "./timing.js";

/** One change of the directory store, as the journal records it. */
export type JournalOp =
  | { readonly op: "put"; readonly key: string; readonly jwt: string }
  | { readonly op: "tomb"; readonly key: string }
  | { readonly op: "rm"; readonly key: string }
  /** The key's previous record was refused (its change failed): replay as if it were not there. */
  | { readonly op: "undo"; readonly key: string };

/** Journal files are `<dir>/.journal.<generation>`: hidden, and outside the store layout. */
const NAME_RE = /^\.journal\.(\d+)$/;

export function isJournalFile(name: string): boolean {
  return NAME_RE.test(name);
}

function encode(op: JournalOp): string {
  const json = JSON.stringify(op);
  return `${json} ${crc32(json).toString(16).padStart(8, "0")}\n`;
}

/** The op of one line, or undefined when the line is torn or damaged. */
function decode(line: string): JournalOp | undefined {
  const sp = line.lastIndexOf(" ");
  if (sp < 0) return undefined;
  const json = line.slice(0, sp);
  if (crc32(json).toString(16).padStart(8, "0") !== line.slice(sp + 1)) return undefined;
  try {
    const op = JSON.parse(json) as JournalOp;
    return typeof op.key === "string" && (op.op !== "put" || typeof op.jwt === "string") ? op : undefined;
  } catch {
    return undefined;
  }
}

interface Pending {
  /** Moved to a newer generation when the write of its own failed. */
  gen: number;
  readonly line: string;
  resolve(): void;
  reject(err: unknown): void;
}

export class Journal {
  private readonly dir: string;
  private readonly log: Logger;
  /** Generation that new appends go to; rotate() moves on to the next one. */
  private gen = 1;
  /** Generations with a file on disk (written or left by an earlier run), oldest first. */
  private readonly files: number[] = [];
  private fh: FileHandle | undefined;
  private fhGen = 0;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Bytes appended since the last rotate(). */
  bytes = 0;
  /** fdatasyncs done so far (group commit makes this smaller than the number of appends). */
  syncs = 0;

  constructor(dir: string, log: Logger) {
    this.dir = dir;
    this.log = log;
  }

  get generation(): number {
    return this.gen;
  }

  /** True when journal files exist that a checkpoint has not removed yet. */
  get holdsRecords(): boolean {
    return this.files.length > 0 || this.pending.length > 0;
  }

  /**
   * Read what earlier runs left, oldest first. A torn or damaged line (a crash during an append
   * that was therefore never acknowledged) is skipped. The files stay until removeUpTo().
   */
  async recover(): Promise<JournalOp[]> {
    const gens = (await readdir(this.dir))
      .map((n) => NAME_RE.exec(n)?.[1])
      .filter((g): g is string => g !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const ops: JournalOp[] = [];
    for (const g of gens) {
      const text = await readFile(this.path(g), "utf8");
      const lines = text.split("\n");
      // The last piece is "" after a complete line, or a torn line never acknowledged.
      lines.pop();
      for (const line of lines) {
        const op = decode(line);
        if (op) ops.push(op);
        else this.log.error(`skipping a damaged record in ${this.path(g)}`);
      }
      this.files.push(g);
    }
    this.gen = (gens.at(-1) ?? 0) + 1;
    return ops;
  }

  /** Append `op`; resolves once it is durable. The generation it lands in is `generation` at call time. */
  append(op: JournalOp): Promise<void> {
    const line = encode(op);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ gen: this.gen, line, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Later appends go to a new file; returns the generation that was current. */
  rotate(): number {
    this.bytes = 0;
    return this.gen++;
  }

  /** Remove the files of generations up to `gen`: what they recorded is durable elsewhere now. */
  async removeUpTo(gen: number): Promise<void> {
    let removed = 0;
    while (this.files.length > 0 && this.files[0]! <= gen) {
      const g = this.files[0]!;
      if (this.fh && this.fhGen === g) await this.closeHandle();
      await unlink(this.path(g)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      this.files.shift();
      removed++;
    }
    // A removed file must not come back after a crash: it would replay stale changes.
    if (removed > 0) await fsyncDir(this.dir);
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.closeHandle();
  }

  private path(gen: number): string {
    return join(this.dir, `.journal.${gen}`);
  }

  private async closeHandle(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  /** The file of generation `gen`, created (and its directory entry made durable) on first use. */
  private async handle(gen: number): Promise<FileHandle> {
    if (this.fh && this.fhGen === gen) return this.fh;
    await this.closeHandle();
    const fh = await open(this.path(gen), "a", FILE_MODE);
    if (!this.files.includes(gen)) {
      this.files.push(gen);
      await fsyncDir(this.dir);
    }
    this.fh = fh;
    this.fhGen = gen;
    return fh;
  }

  /** Write everything pending, one generation and one fdatasync per batch. */
  private async flush(): Promise<void> {
    for (;;) {
      if (this.pending.length === 0) {
        // Cleared in the same step that saw nothing pending: an append right after starts a flush.
        this.flushing = undefined;
        return;
      }
      const gen = this.pending[0]!.gen;
      const n = this.pending.findIndex((p) => p.gen !== gen);
      const batch = n < 0 ? this.pending : this.pending.slice(0, n);
      this.pending = n < 0 ? [] : this.pending.slice(n);
      const t0 = process.hrtime.bigint();
      try {
        const fh = await this.handle(gen);
        const data = Buffer.from(batch.map((p) => p.line).join(""));
        for (let off = 0; off < data.length; ) off += (await fh.write(data, off)).bytesWritten;
        await fh.datasync();
        reportTiming(this.dir, "journal_commit", t0);
        this.syncs++;
        this.bytes += data.length;
        for (const p of batch) p.resolve();
      } catch (err) {
        // A partly written batch would glue onto the next line: continue in a fresh file.
        await this.closeHandle().catch(() => {});
        if (gen === this.gen) this.gen++;
        for (const p of this.pending) if (p.gen === gen) p.gen = this.gen;
        for (const p of batch) p.reject(err);
      }
    }
  }
}
