/**
 * Bounded version history for stores without a native one (directory, memory): every change on
 * the feed is appended to a segmented log in `<statedir>/history/`, the last `limit` per account kept.
 */
import { mkdir, open, readdir, readFile, truncate, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { errorText } from "../errors.js";
import type { AccountChange } from "./types.js";
import { isPublicKey } from "../jwt/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { DIR_MODE, FILE_MODE, fsyncDir } from "../durable.js";
import type { HistoryEntry, HistorySource } from "./types.js";

export interface HistoryLogOptions {
  /** Directory for the log segments; absent keeps history in memory only. */
  readonly dir?: string;
  /** Versions kept per account. */
  readonly limit: number;
  readonly now?: () => number;
  readonly log?: Logger;
  /** A segment is closed once it holds this many bytes (default SEGMENT_BYTES). */
  readonly segmentBytes?: number;
}

/** Segments are `<n>.log`; a closed one is compacted once less than half of it is still kept. */
export const SEGMENT_BYTES = 8 << 20;
const SEGMENT_RE = /^(\d+)\.log$/;
/** Per-account files of earlier versions (`<KEY>.jsonl`), imported into the log at open(). */
const LEGACY_RE = /^(A[A-Z2-7]{55})\.jsonl$/;
const LEGACY_TEMP_RE = /^\..+\.jsonl\.[0-9a-f]+\.tmp$/;

interface Body {
  readonly stored: string;
  readonly jwt?: string;
  readonly deleted?: boolean;
}

/** Where one version's line is: segment, byte offset, byte length (newline included). */
interface Loc {
  seg: number;
  off: number;
  len: number;
  readonly revision: number;
}

interface Versions {
  /** Last revision given to the key (also when its line fell out of the window). */
  revision: number;
  /** The kept versions, oldest first, at most `limit`. */
  readonly locs: Loc[];
}

/** `<KEY> <revision> <json>\n`: the key and revision are read at open() without parsing the JSON. */
function lineOf(key: string, revision: number, body: Body): string {
  return `${key} ${revision} ${JSON.stringify(body)}\n`;
}

export class HistoryLog implements HistorySource {
  private readonly opts: HistoryLogOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly segmentBytes: number;
  /** Without a directory: the versions themselves (bounded by the limit). */
  private readonly memory = new Map<string, Array<{ revision: number } & Body>>();
  private readonly index = new Map<string, Versions>();
  /** Bytes in each segment file, and bytes of it still referenced by the index. */
  private readonly segments = new Map<number, { size: number; live: number }>();
  private current = 0;
  private fh: FileHandle | undefined;
  /** Lines assigned a place in the current segment but not written yet. */
  private buffered: string[] = [];
  private tasks: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private opening: Promise<void> | undefined;
  private loaded = false;

  constructor(opts: HistoryLogOptions) {
    this.opts = opts;
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.segmentBytes = opts.segmentBytes ?? SEGMENT_BYTES;
  }

  /** Build the index from the segments (a torn last line is cut off), import per-account files of earlier versions. */
  open(): Promise<void> {
    this.opening ??= this.load();
    return this.opening;
  }

  private async load(): Promise<void> {
    const dir = this.opts.dir;
    if (dir === undefined) {
      this.loaded = true;
      return;
    }
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    const names = await readdir(dir);
    const segs = names
      .map((n) => SEGMENT_RE.exec(n)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const seg of segs) await this.scan(seg, seg === segs.at(-1));
    this.current = segs.at(-1) ?? 1;
    if (!this.segments.has(this.current)) this.segments.set(this.current, { size: 0, live: 0 });
    const legacy = names.filter((n) => LEGACY_RE.test(n)).sort();
    await this.enqueue(async () => {
      for (const name of legacy) await this.importLegacy(join(dir, name), name.slice(0, 56));
      if (legacy.length > 0) {
        await this.flush();
        await this.fh?.datasync();
        for (const name of legacy) await unlink(join(dir, name)).catch(() => {});
        this.log.info(`history: imported ${legacy.length} per-account log file(s) into ${dir}`);
      }
      for (const name of names) if (LEGACY_TEMP_RE.test(name)) await unlink(join(dir, name)).catch(() => {});
      await this.compact();
    });
    this.loaded = true;
  }

  /** Index one segment; `last`: a torn last line (crash during an append) is cut off so appends start clean. */
  private async scan(seg: number, last: boolean): Promise<void> {
    const file = this.segmentFile(seg);
    const buf = await readFile(file);
    let end = buf.length;
    if (end > 0 && buf[end - 1] !== 0x0a) {
      end = buf.lastIndexOf(0x0a) + 1;
      if (last) await truncate(file, end);
    }
    this.segments.set(seg, { size: end, live: 0 });
    for (let off = 0; off < end; ) {
      const nl = buf.indexOf(0x0a, off);
      const sp1 = buf.indexOf(0x20, off);
      const sp2 = sp1 < 0 ? -1 : buf.indexOf(0x20, sp1 + 1);
      const revision = sp2 < 0 || sp2 > nl ? NaN : Number(buf.toString("latin1", sp1 + 1, sp2));
      const key = buf.toString("latin1", off, sp1);
      if (Number.isInteger(revision) && revision > 0 && isPublicKey(key, "account")) {
        this.place(key, { seg, off, len: nl + 1 - off, revision });
      } else {
        this.log.error(`history: skipping a damaged line in ${file}`);
      }
      off = nl + 1;
    }
  }

  /** Put a loaded line in its key's window (lines of a compacted key can come in any order). */
  private place(key: string, loc: Loc): void {
    let v = this.index.get(key);
    if (!v) {
      v = { revision: 0, locs: [] };
      this.index.set(key, v);
    }
    v.revision = Math.max(v.revision, loc.revision);
    const i = v.locs.findIndex((l) => l.revision >= loc.revision);
    if (i >= 0 && v.locs[i]!.revision === loc.revision) {
      // The same version in two segments (a compaction interrupted before its old segment went).
      this.release(v.locs[i]!);
      v.locs[i] = loc;
    } else {
      v.locs.splice(i < 0 ? v.locs.length : i, 0, loc);
    }
    this.segments.get(loc.seg)!.live += loc.len;
    while (v.locs.length > this.opts.limit) this.release(v.locs.shift()!);
  }

  private release(loc: Loc): void {
    const s = this.segments.get(loc.seg);
    if (s) s.live -= loc.len;
  }

  private async importLegacy(file: string, key: string): Promise<void> {
    const text = await readFile(file, "utf8").catch(() => "");
    const lines: Array<{ revision: number } & Body> = [];
    for (const l of text.split("\n")) {
      try {
        const x = JSON.parse(l) as { revision: number } & Body;
        if (Number.isInteger(x.revision) && typeof x.stored === "string") lines.push(x);
      } catch {
        // Torn or empty line.
      }
    }
    for (const { revision, ...body } of lines.sort((a, b) => a.revision - b.revision)) {
      if (revision > (this.index.get(key)?.revision ?? 0)) this.append(key, revision, body);
    }
  }

  /** Change-feed listener: one version per actual change (expiry is not a new version). */
  record(change: AccountChange): void {
    if (change.source === "expiry" || (!change.entry && !change.deleted)) return;
    const body: Body = {
      stored: new Date(this.now()).toISOString(),
      ...(change.jwt !== undefined ? { jwt: change.jwt } : { deleted: true }),
    };
    if (this.opts.dir === undefined) {
      const lines = this.memory.get(change.key) ?? [];
      lines.push({ revision: (lines.at(-1)?.revision ?? 0) + 1, ...body });
      this.memory.set(change.key, lines.slice(-this.opts.limit));
      return;
    }
    if (!this.loaded) {
      void this.open().then(() => this.append(change.key, (this.index.get(change.key)?.revision ?? 0) + 1, body));
      return;
    }
    this.append(change.key, (this.index.get(change.key)?.revision ?? 0) + 1, body);
  }

  /**
   * After a crash, make sure the state the store replayed for `key` (`jwt`, or deleted) is its
   * last version: the history line may have been lost with the crash.
   */
  async recordRecovered(key: string, jwt: string | undefined, deleted: boolean): Promise<void> {
    if (this.opts.dir === undefined || (jwt === undefined && !deleted)) return;
    const last = (await this.history(key)).at(-1);
    if (jwt !== undefined ? last?.jwt === jwt : last?.deleted === true) return;
    const body: Body = { stored: new Date(this.now()).toISOString(), ...(jwt !== undefined ? { jwt } : { deleted: true }) };
    this.append(key, (this.index.get(key)?.revision ?? 0) + 1, body);
  }

  /** Give the line its place in the current segment now (the index is exact at once); written soon after. */
  private append(key: string, revision: number, body: Body): void {
    const line = lineOf(key, revision, body);
    const seg = this.segments.get(this.current)!;
    const loc: Loc = { seg: this.current, off: seg.size, len: Buffer.byteLength(line), revision };
    seg.size += loc.len;
    this.buffered.push(line);
    this.place(key, loc);
    if (!this.flushQueued) {
      this.flushQueued = true;
      void this.enqueue(() => this.flush());
    }
  }

  /** File work runs one task at a time: writes, rotation, compaction and reads never overlap. */
  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const p = this.tasks.then(task);
    this.tasks = p.then(
      () => {},
      (err: unknown) => this.log.error(`history: ${errorText(err)}`),
    );
    return p;
  }

  /** Write what is buffered (one write per batch); start a new segment when the current one is full. */
  private async flush(): Promise<void> {
    this.flushQueued = false;
    while (this.buffered.length > 0) {
      const data = Buffer.from(this.buffered.join(""));
      this.buffered = [];
      const seg = this.current;
      try {
        const fh = await this.handle();
        for (let off = 0; off < data.length; ) off += (await fh.write(data, off)).bytesWritten;
      } catch (err) {
        this.log.error(`history not recorded: ${errorText(err)}`);
        this.forgetUnwritten(seg, data.length);
        return;
      }
    }
    // Checked in the same step that saw nothing buffered: later appends land in the new segment.
    if (this.segments.get(this.current)!.size >= this.segmentBytes) await this.rotate();
  }

  /**
   * A failed write leaves the segment shorter than the index thinks: drop the versions placed in
   * the lost bytes and continue in a new segment, so every offset stays exact.
   */
  private forgetUnwritten(seg: number, lost: number): void {
    const s = this.segments.get(seg)!;
    const from = s.size - lost - this.buffered.reduce((n, l) => n + Buffer.byteLength(l), 0);
    this.buffered = [];
    for (const v of this.index.values()) {
      for (let i = v.locs.length - 1; i >= 0; i--) {
        if (v.locs[i]!.seg === seg && v.locs[i]!.off >= from) this.release(v.locs.splice(i, 1)[0]!);
      }
    }
    s.size = from;
    const fh = this.fh;
    this.fh = undefined;
    void fh?.close().catch(() => {});
    this.current++;
    this.segments.set(this.current, { size: 0, live: 0 });
  }

  private async handle(): Promise<FileHandle> {
    if (this.fh) return this.fh;
    const fresh = this.segments.get(this.current)!.size === 0;
    this.fh = await open(this.segmentFile(this.current), "a", FILE_MODE);
    if (fresh) await fsyncDir(this.opts.dir!);
    return this.fh;
  }

  /** Close the full segment durably and start the next; compaction of mostly dead segments follows. */
  private async rotate(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.current++;
    this.segments.set(this.current, { size: 0, live: 0 });
    if (fh) {
      await fh.datasync();
      await fh.close();
    }
    void this.enqueue(() => this.compact());
  }

  /** Copy the kept versions out of closed segments that are mostly dead, then remove those segments. */
  private async compact(): Promise<void> {
    const victims = [...this.segments].filter(([seg, s]) => seg !== this.current && s.live * 2 < s.size).map(([seg]) => seg);
    if (victims.length === 0) return;
    for (const seg of victims) {
      const buf = await readFile(this.segmentFile(seg));
      for (const v of this.index.values()) {
        for (const loc of v.locs) {
          if (loc.seg !== seg) continue;
          const cur = this.segments.get(this.current)!;
          this.buffered.push(buf.toString("utf8", loc.off, loc.off + loc.len));
          this.release(loc);
          loc.seg = this.current;
          loc.off = cur.size;
          cur.size += loc.len;
          cur.live += loc.len;
        }
      }
    }
    // The copies must be durable before the originals go.
    await this.flush();
    await this.fh?.datasync();
    for (const seg of victims) {
      await unlink(this.segmentFile(seg)).catch(() => {});
      this.segments.delete(seg);
    }
    await fsyncDir(this.opts.dir!);
  }

  /** Make everything recorded so far durable (the store's checkpoint hook). */
  sync(): Promise<void> {
    if (this.opts.dir === undefined) return Promise.resolve();
    return this.enqueue(async () => {
      await this.flush();
      await this.fh?.datasync();
    });
  }

  /** The last `limit` versions, oldest first. */
  async history(key: string): Promise<HistoryEntry[]> {
    await this.open();
    if (this.opts.dir === undefined) return (this.memory.get(key) ?? []).map((l) => this.entry(l.revision, l));
    return this.enqueue(async () => {
      await this.flush();
      const out: HistoryEntry[] = [];
      for (const loc of this.index.get(key)?.locs ?? []) {
        const fh = await open(this.segmentFile(loc.seg), "r");
        try {
          const buf = Buffer.alloc(loc.len);
          await fh.read(buf, 0, loc.len, loc.off);
          const text = buf.toString("utf8");
          out.push(this.entry(loc.revision, JSON.parse(text.slice(text.indexOf(" ", key.length + 1) + 1)) as Body));
        } finally {
          await fh.close();
        }
      }
      return out;
    });
  }

  private entry(revision: number, b: Body): HistoryEntry {
    return { revision, stored: new Date(b.stored), ...(b.jwt !== undefined ? { jwt: b.jwt } : { deleted: true }) };
  }

  async close(): Promise<void> {
    await this.sync();
    await this.enqueue(async () => {
      await this.fh?.close();
      this.fh = undefined;
    });
  }

  private segmentFile(seg: number): string {
    return join(this.opts.dir!, `${seg}.log`);
  }
}
