/**
 * Directory store: `<dir>/<KEY>.jwt`, or `<dir>/<last 2 chars>/<KEY>.jwt` when sharded, the layout
 * nats-server's resolvers and the Go account server share. Writes are atomic and durable.
 */
import { close, closeSync, existsSync, open, openSync, read, readFileSync, readSync, writeFile as writeFileCb } from "node:fs";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { errorText } from "../errors.js";
import { isPublicKey } from "../jwt/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { DirWatcher } from "./dir-watch.js";
import { DIR_MODE, FILE_MODE, fsyncDir, tempNameFor, writeFileDurable } from "../durable.js";
import { inParallel, JournaledWriter, syncFile } from "./dir-journal.js";
import { type JournalOp } from "./journal.js";
import { indexDirectory, JWT_SUFFIX, keyOfFile, recordOf, type IndexBatch, type IndexRecord } from "./dir-index.js";
import type { IndexWorkerMessage } from "./dir-index-worker.js";
import { startWorker } from "../workers.js";
import type { Worker } from "node:worker_threads";
import { IndexedStore } from "./indexed.js";
import {
  AccountEntry,
  intern,
  type EntryClaims,
  type ExternalChange,
  type JwtStore,
  type StoreJournal,
} from "./types.js";

export interface DirStoreOptions {
  readonly dir: string;
  readonly shard: boolean;
  /** The directory is maintained by someone else: never write, watch for changes instead. */
  readonly readonly: boolean;
  readonly log?: Logger;
  /**
   * Once the index holds more JWTs than this, open() resolves and the rest is indexed in the
   * background (default BACKGROUND_LOAD_ABOVE); 0 always indexes in the background. A read-only
   * store is always indexed whole first (its watcher compares edits with it).
   */
  readonly backgroundLoadAbove?: number;
  /** A checkpoint runs this long after the first change it will cover (default CHECKPOINT_MS). */
  readonly checkpointMs?: number;
  /** Monotonic milliseconds, for timing reads (tests inject one). */
  readonly clock?: () => number;
}

/** Up to this many JWTs open() indexes before it resolves; a bigger store is served while it loads. */
export const BACKGROUND_LOAD_ABOVE = 5000;
const PLAIN_KEY_RE = /^[A-Z2-7]+$/;
/** A constant options object: readFileSync spends a third of its time copying a string option. */
const READ_UTF8 = { encoding: "utf8", flag: "r" } as const;
/** A new temp file, never an existing one. */
const WRITE_NEW = { flag: "wx", mode: FILE_MODE } as const;

/** Files smaller than this may be read on the event loop (see DirStore.readBody). */
const SYNC_READ_MAX = 64 * 1024;
const scratch = Buffer.allocUnsafe(SYNC_READ_MAX + 1);

/** The first `size` + 1 bytes of a small file, read synchronously; undefined when it is gone. */
function readSmall(path: string, size: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return scratch.toString("utf8", 0, readSync(fd, scratch, 0, size + 1, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether to read small files on the event loop: yes while they take under SLOW_READ_MS; after
 * SLOW_IN_A_ROW slower ones in a row (the disk is being hit; a single one is the thread being
 * preempted), not for BACK_OFF_MS, then reads try again.
 */
export class ReadPolicy {
  static readonly SLOW_READ_MS = 1;
  static readonly SLOW_IN_A_ROW = 2;
  static readonly BACK_OFF_MS = 5000;
  private asyncUntil = -Infinity;
  private slow = 0;
  private readonly now: () => number;
  constructor(now: () => number = () => performance.now()) {
    this.now = now;
  }

  sync(): boolean {
    return this.now() >= this.asyncUntil;
  }

  timed<T>(read: () => T): T {
    const start = this.now();
    try {
      return read();
    } finally {
      const end = this.now();
      if (end - start <= ReadPolicy.SLOW_READ_MS) this.slow = 0;
      else if (++this.slow >= ReadPolicy.SLOW_IN_A_ROW) {
        this.slow = 0;
        this.asyncUntil = end + ReadPolicy.BACK_OFF_MS;
      }
    }
  }
}

/** The index entry of an indexer record (the worker's and an on-demand read's alike). */
function entryOf([key, digest, size, iat, exp, iss, signed]: IndexRecord): AccountEntry {
  const entry = new AccountEntry(key, digest, size, iat < 0 ? undefined : iat, exp, intern(iss));
  // A good signature is known for these bytes; a bad one is found again (and logged) on first read.
  if (signed) entry.signature = "good";
  return entry;
}

export class DirStore extends IndexedStore implements JwtStore {
  readonly kind = "dir";
  readonly writable: boolean;
  private readonly log: Logger;
  private readonly knownDirs = new Set<string>();
  /** Read-only stores only: reports edits made by whoever maintains the directory. */
  private readonly watcher: DirWatcher | undefined;
  private closed = false;
  /** Set while the index is being built: resolves once every file has been read. */
  private indexing: Promise<void> | undefined;
  /** Keys changed, or read on demand, while indexing: the indexer's record of them is stale. */
  private readonly touched = new Set<string>();
  /** Set when open() resolved before the index was complete. */
  private background = false;
  /** Shard directories seen while indexing (a read-only store's watcher watches them). */
  private readonly shardDirs = new Set<string>();
  /** Writable stores only: every change is durable here before it is acknowledged. */
  private readonly writer: JournaledWriter | undefined;
  /** Keys whose last change was replayed from the journal by open(). */
  private recoveredKeys: string[] = [];
  private readonly reads: ReadPolicy;

  private readonly opts: DirStoreOptions;
  /** The store directory as join() writes it, with a trailing separator. */
  private readonly root: string;

  constructor(opts: DirStoreOptions) {
    super();
    this.opts = opts;
    this.writable = !opts.readonly;
    this.log = opts.log ?? silentLogger;
    this.reads = new ReadPolicy(opts.clock);
    const root = join(opts.dir);
    this.root = root === "." ? "" : root.endsWith(sep) ? root : root + sep;
    this.writer = opts.readonly
      ? undefined
      : new JournaledWriter({ dir: opts.dir, log: this.log, checkpointMs: opts.checkpointMs });
    this.watcher = opts.readonly
      ? new DirWatcher({
          dir: opts.dir,
          shard: opts.shard,
          log: this.log,
          pathOf: (key) => this.pathOf(key),
          keyOfFile: (name) => keyOfFile(name),
          served: (key) => this.index.get(key),
          entries: () => this.index.entries(),
        })
      : undefined;
  }

  /** See StoreJournal: writable directory stores journal their changes. */
  get journaled(): StoreJournal | undefined {
    return this.writer ? this : undefined;
  }

  get recovered(): readonly string[] {
    return this.recoveredKeys;
  }

  beforeCheckpoint(hook: () => Promise<void>): void {
    this.writer?.beforeCheckpoint(hook);
  }

  get description(): string {
    return this.opts.dir;
  }

  pathOf(key: string): string {
    // Keys are base32 (no "/" or "."), so concatenation gives what join() would, much faster.
    if (PLAIN_KEY_RE.test(key)) return this.root + (this.opts.shard ? `${key.slice(-2)}/${key}${JWT_SUFFIX}` : key + JWT_SUFFIX);
    return this.opts.shard
      ? join(this.opts.dir, key.slice(-2), key + JWT_SUFFIX)
      : join(this.opts.dir, key + JWT_SUFFIX);
  }

  async open(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: DIR_MODE });
    this.knownDirs.add(this.opts.dir);
    if (this.writer) await this.replay(await this.writer.journal.recover());
    const started = performance.now();
    const above = this.writable ? (this.opts.backgroundLoadAbove ?? BACKGROUND_LOAD_ABOVE) : Infinity;
    let early: (() => void) | undefined;
    const enough = new Promise<void>((resolve) => (early = resolve));
    const done = this.buildIndex(() => {
      if (this.index.size > above) early?.();
    }).finally(() => {
      this.indexing = undefined;
      this.touched.clear();
    });
    this.indexing = done.then(() => {
      if (!this.closed && this.background) {
        this.log.info(`store index complete: ${this.index.size} account JWT(s) loaded in ${Math.round(performance.now() - started)} ms`);
      }
    });
    // Serving starts once the index holds `above` JWTs: get() reads a key not indexed yet on
    // demand, so every answer stays exact while the rest is read.
    await Promise.race([done, enough.then(() => (this.background = true))]);
    if (this.background) this.log.info("indexing the account JWT files in the background");
    if (!this.writable) for (const d of this.shardDirs) this.knownDirs.add(d);
  }

  /**
   * Read every JWT file into the index on a worker thread (in this thread if none can start);
   * `progress` runs after each batch taken in.
   */
  private buildIndex(progress: () => void): Promise<void> {
    const take = (b: IndexBatch): void => {
      for (const r of b.records) {
        if (this.touched.has(r[0])) continue;
        if (!this.writable && this.opts.shard) this.shardDirs.add(dirname(this.pathOf(r[0])));
        this.index.set(entryOf(r));
      }
      for (const key of b.deleted) if (!this.touched.has(key)) this.deleted.add(key);
      for (const e of b.errors) this.log.error(e);
      for (const f of b.removed) this.log.debug(`removed leftover temp file ${f}`);
      progress();
    };
    const taken = new Int32Array(new SharedArrayBuffer(4));
    let worker: Worker;
    try {
      worker = startWorker(import.meta.url, "dir-index-worker", { dir: this.opts.dir, shard: this.opts.shard, writable: this.writable, taken });
    } catch (err) {
      this.log.warn(`indexing ${this.opts.dir} in the main thread (no worker thread: ${errorText(err)})`);
      indexDirectory(this.opts.dir, this.opts.shard, this.writable, take);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      worker.on("message", (m: IndexWorkerMessage) => {
        if ("batch" in m) {
          take(m.batch);
          Atomics.add(taken, 0, 1);
          Atomics.notify(taken, 0);
        } else if ("done" in m) {
          resolve();
          void worker.terminate();
        } else {
          reject(new Error(`indexing ${this.opts.dir} failed: ${m.error}`));
          void worker.terminate();
        }
      });
      worker.on("error", reject);
      worker.on("exit", (code) => reject(new Error(`the indexer of ${this.opts.dir} exited (${code})`)));
    });
  }

  /** Journal fdatasyncs so far (group commit makes this smaller than the number of writes). */
  get journalSyncs(): number {
    return this.writer?.journal.syncs ?? 0;
  }

  /**
   * Bring the files to the last state the journal of an interrupted run recorded, durably. The
   * journal files stay until the first checkpoint, whose hooks (the notification outbox) learn of
   * the recovered keys first.
   */
  private async replay(ops: JournalOp[]): Promise<void> {
    // Per key, the records still in force: an undo cancels the record before it.
    const perKey = new Map<string, JournalOp[]>();
    for (const op of ops) {
      if (!isPublicKey(op.key, "account")) continue;
      const list = perKey.get(op.key) ?? [];
      if (op.op === "undo") list.pop();
      else list.push(op);
      perKey.set(op.key, list);
    }
    const last = new Map<string, JournalOp>();
    for (const [key, list] of perKey) if (list.length > 0) last.set(key, list.at(-1)!);
    if (last.size === 0) return;
    const todo = [...last.values()];
    await inParallel(todo, async (op) => {
      const file = this.pathOf(op.key);
      const dir = dirname(file);
      if (op.op === "put") {
        // After a kill (not a power loss) the file is usually there already: sync, don't rewrite.
        if ((await readFile(file, "utf8").catch(() => undefined)) === op.jwt) await syncFile(file);
        else {
          await mkdir(dir, { recursive: true, mode: DIR_MODE });
          await writeFileDurable(file, op.jwt);
        }
        await unlink(file + ".deleted").catch(() => {});
      } else if (op.op === "tomb") {
        try {
          await rename(file, file + ".deleted");
        } catch {
          await mkdir(dir, { recursive: true, mode: DIR_MODE });
          await writeFile(file + ".deleted", "", { flag: "a", mode: FILE_MODE });
        }
        await syncFile(file + ".deleted");
      } else {
        await unlink(file).catch(() => {});
      }
    });
    for (const dir of new Set([...todo.map((op) => dirname(this.pathOf(op.key))), this.opts.dir])) {
      // A shard directory that never made it to disk held nothing to sync.
      await fsyncDir(dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
    }
    this.recoveredKeys = [...last.keys()];
    this.log.info(`replayed ${ops.length} journaled change(s) of ${last.size} account(s) from an interrupted run`);
  }

  /** See JwtStore.loading: the background indexing, until it is over. */
  get loading(): Promise<void> | undefined {
    return this.indexing;
  }

  /** One file not indexed yet, read now (get() must answer at once while the index is built). */
  private loadNow(key: string): AccountEntry | undefined {
    const path = this.pathOf(key);
    let jwt: string;
    try {
      jwt = readFileSync(path, READ_UTF8);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.error(`reading ${path} failed: ${errorText(e)}`);
      return undefined;
    }
    this.touched.add(key);
    const entry = entryOf(recordOf(key, jwt));
    this.index.set(entry);
    return entry;
  }

  /**
   * Open, one read of the size the index knows (plus a byte, so a longer file shows), close. A
   * small file is read on the event loop while such reads stay fast (the page cache serves them,
   * as nginx reads static files): three thread-pool trips cost a cold GET about 35-60 µs of CPU,
   * a read from the page cache ~12 µs. Slow ones (the disk is being hit) send reads through the
   * thread pool for a while (ReadPolicy), so a slow disk stalls the loop for two reads per back-off.
   */
  protected readBody(entry: AccountEntry): Promise<string | undefined> {
    const path = this.pathOf(entry.key);
    if (entry.size < SYNC_READ_MAX && this.reads.sync()) {
      try {
        return Promise.resolve(this.reads.timed(() => readSmall(path, entry.size)));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise((resolve, reject) => {
      open(path, "r", (err, fd) => {
        if (err) return err.code === "ENOENT" ? resolve(undefined) : reject(err);
        const buf = Buffer.allocUnsafe(entry.size + 1);
        read(fd, buf, 0, buf.length, 0, (rerr, n) => {
          close(fd, () => {});
          if (rerr) reject(rerr);
          else resolve(buf.toString("utf8", 0, n));
        });
      });
    });
  }

  override get(key: string): AccountEntry | undefined {
    const e = this.index.get(key);
    if (e !== undefined || this.indexing === undefined || this.touched.has(key)) return e;
    return this.loadNow(key);
  }

  override isDeleted(key: string): boolean {
    if (this.deleted.has(key)) return true;
    // Not indexed yet: the tombstone on disk answers.
    return this.indexing !== undefined && !this.touched.has(key) && !this.index.get(key) && existsSync(this.pathOf(key) + ".deleted");
  }

  async put(key: string, jwt: string, claims?: EntryClaims): Promise<AccountEntry> {
    const writer = this.writer;
    if (writer) {
      const file = this.pathOf(key);
      const dir = await this.dirFor(file);
      // The temp file is written while the journal record is made durable; the atomic rename
      // follows both. A temp write failing after the record is recorded as undone.
      const tmp = tempNameFor(file);
      // The callback API: the same system calls as fs/promises' FileHandle, ~35 µs less CPU each.
      const written = new Promise<unknown>((resolve) => writeFileCb(tmp, jwt, WRITE_NEW, (err) => resolve(err ?? undefined)));
      const dropTemp = async (): Promise<void> => {
        await written;
        await unlink(tmp).catch(() => {});
      };
      await writer.change(
        { op: "put", key, jwt },
        async () => {
          const failed = await written;
          if (failed !== undefined) throw failed;
          await rename(tmp, file);
          writer.dirtyFile(file);
          if (this.deleted.has(key)) await unlink(file + ".deleted").catch(() => {});
          writer.dirtyDir(dir);
        },
        dropTemp,
      );
    }
    if (this.indexing) this.touched.add(key);
    return this.setEntry(key, jwt, claims);
  }

  async tombstone(key: string): Promise<void> {
    const writer = this.writer;
    if (writer) {
      const file = this.pathOf(key);
      const dir = await this.dirFor(file);
      await writer.change({ op: "tomb", key }, async () => {
        try {
          // Keep the last JWT in the tombstone, as nats-server's rename-on-delete does.
          await rename(file, file + ".deleted");
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
          await writeFile(file + ".deleted", "", { flag: "a", mode: FILE_MODE });
        }
        writer.dirtyFile(file + ".deleted");
        writer.dirtyDir(dir);
      });
    }
    this.watcher?.forget(key);
    if (this.indexing) this.touched.add(key);
    this.forget(key, true);
  }

  /** Forget a JWT (and remove its file on a writable store). */
  async remove(key: string): Promise<void> {
    const writer = this.writer;
    if (writer) {
      const file = this.pathOf(key);
      await writer.change({ op: "rm", key }, async () => {
        await unlink(file).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== "ENOENT") throw e;
        });
        writer.dirtyDir(dirname(file));
      });
    }
    this.watcher?.forget(key);
    if (this.indexing) this.touched.add(key);
    this.forget(key, false);
  }

  /** The directory of `file`, created when new (its entry in the store root is synced at the checkpoint). */
  private async dirFor(file: string): Promise<string> {
    const dir = dirname(file);
    if (!this.knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true, mode: DIR_MODE });
      this.writer?.dirtyDir(this.opts.dir);
      this.knownDirs.add(dir);
    }
    return dir;
  }

  /** See StoreJournal. */
  checkpoint(): Promise<void> {
    return this.writer?.checkpoint() ?? Promise.resolve();
  }


  watch(onChange: (change: ExternalChange) => void): void {
    // Only a directory maintained by someone else changes behind our back.
    this.watcher?.start(this.knownDirs, onChange);
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.closed = true;
    this.watcher?.close();
  }
}
