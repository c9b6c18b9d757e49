/**
 * Directory store: `<dir>/<KEY>.jwt`, or `<dir>/<last 2 chars>/<KEY>.jwt` when sharded, the layout
 * nats-server's resolvers and the Go account server share. Writes are atomic and durable.
 */
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { errorText } from "../errors.js";
import { isPublicKey } from "../jwt/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { DirWatcher, statSignature } from "./dir-watch.js";
import { DIR_MODE, FILE_MODE, fsyncDir, isTempName, tempNameFor, writeFileDurable } from "../durable.js";
import { inParallel, JournaledWriter, syncFile } from "./dir-journal.js";
import { isJournalFile, type JournalOp } from "./journal.js";
import { IndexedStore } from "./indexed.js";
import {
  accountEntry,
  type AccountEntry,
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
   * With more JWT files than this, open() reads only the key list and the JWTs are loaded in the
   * background (default BACKGROUND_LOAD_ABOVE); 0 always loads in the background.
   */
  readonly backgroundLoadAbove?: number;
  /** A checkpoint runs this long after the first change it will cover (default CHECKPOINT_MS). */
  readonly checkpointMs?: number;
}

/** Up to this many files open() reads itself; a bigger store is served while it loads. */
export const BACKGROUND_LOAD_ABOVE = 5000;
/** Longest the background loader holds the event loop before letting requests through. */
const LOAD_SLICE_MS = 4;
const JWT_SUFFIX = ".jwt";
const TOMBSTONE_SUFFIX = ".jwt.deleted";
const PLAIN_KEY_RE = /^[A-Z2-7]+$/;
/** A constant options object: readFileSync spends a third of its time copying a string option. */
const READ_UTF8 = { encoding: "utf8", flag: "r" } as const;
function keyOfFile(name: string, suffix = JWT_SUFFIX): string | undefined {
  if (!name.endsWith(suffix)) return undefined;
  const key = name.slice(0, -suffix.length);
  return isPublicKey(key, "account") ? key : undefined;
}

export class DirStore extends IndexedStore implements JwtStore {
  readonly kind = "dir";
  readonly writable: boolean;
  private readonly log: Logger;
  private readonly knownDirs = new Set<string>();
  /** Read-only stores only: reports edits made by whoever maintains the directory. */
  private readonly watcher: DirWatcher | undefined;
  private closed = false;
  /** Keys found by open() whose file is not read yet (background loading of a large store). */
  private readonly unloaded = new Set<string>();
  private backgroundLoad: Promise<void> | undefined;
  /** Writable stores only: every change is durable here before it is acknowledged. */
  private readonly writer: JournaledWriter | undefined;
  /** Keys whose last change was replayed from the journal by open(). */
  private recoveredKeys: string[] = [];

  private readonly opts: DirStoreOptions;
  /** The store directory as join() writes it, with a trailing separator. */
  private readonly root: string;

  constructor(opts: DirStoreOptions) {
    super();
    this.opts = opts;
    this.writable = !opts.readonly;
    this.log = opts.log ?? silentLogger;
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
    const files: string[] = [];
    for (const d of await readdir(this.opts.dir, { withFileTypes: true })) {
      if (this.opts.shard && d.isDirectory() && d.name.length === 2) {
        const sub = join(this.opts.dir, d.name);
        this.knownDirs.add(sub);
        for (const f of await readdir(sub, { withFileTypes: true })) {
          // Only leftovers need waiting for (their removal); a big store has none to speak of.
          const leftover = this.consider(sub, f.name, f.isFile(), files, d.name);
          if (leftover) await leftover;
        }
      } else {
        const leftover = this.consider(this.opts.dir, d.name, d.isFile(), files, undefined);
        if (leftover) await leftover;
      }
    }
    // A read-only directory is read whole: its watcher must compare later edits with what was there.
    if (this.writable && files.length > (this.opts.backgroundLoadAbove ?? BACKGROUND_LOAD_ABOVE)) {
      // Serving starts now: get() reads a key not loaded yet on demand, entries() and hash()
      // finish the load first, so every answer stays exact while the rest loads.
      for (const key of files) this.unloaded.add(key);
      this.log.info(`indexing ${files.length} account JWT file(s) in the background`);
      this.backgroundLoad = this.loadInBackground(performance.now());
      return;
    }
    // Read in parallel batches: a large store is dominated by per-file latency.
    const BATCH = 64;
    for (let i = 0; i < files.length; i += BATCH) {
      await Promise.all(
        files.slice(i, i + BATCH).map(async (key) => {
          const path = this.pathOf(key);
          const [jwt, st] = await Promise.all([readFile(path, "utf8"), stat(path)]);
          this.watcher?.remember(key, statSignature(st));
          this.index.set(accountEntry(key, jwt));
        }),
      );
    }
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

  /** See JwtStore.loading: the background load, until it is over. */
  get loading(): Promise<void> | undefined {
    return this.unloaded.size > 0 ? this.backgroundLoad : undefined;
  }

  /** Read the files in time slices between requests; a slice never exceeds LOAD_SLICE_MS by more than one file. */
  private async loadInBackground(started: number): Promise<void> {
    while (this.unloaded.size > 0 && !this.closed) {
      await new Promise<void>((r) => setImmediate(r));
      const until = performance.now() + LOAD_SLICE_MS;
      for (const key of this.unloaded) {
        this.loadNow(key);
        if (performance.now() >= until) break;
      }
    }
    if (!this.closed) {
      this.log.info(
        `store index complete: ${this.index.size} account JWT(s) loaded in ${Math.round(performance.now() - started)} ms`,
      );
    }
  }

  /** Read one file found at open() into the index, synchronously (get() must answer now). */
  private loadNow(key: string): AccountEntry | undefined {
    this.unloaded.delete(key);
    const path = this.pathOf(key);
    let jwt: string;
    try {
      jwt = readFileSync(path, READ_UTF8);
    } catch (e) {
      // Gone since open() (or unreadable): not part of the store, as if it had not been listed.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.error(`reading ${path} failed: ${errorText(e)}`);
      return undefined;
    }
    const entry = accountEntry(key, jwt);
    this.index.set(entry);
    return entry;
  }

  protected async readBody(entry: AccountEntry): Promise<string | undefined> {
    try {
      return await readFile(this.pathOf(entry.key), READ_UTF8);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      return undefined;
    }
  }

  /** Everything still to load, now (entries() and hash() must see the whole store). */
  private loadAll(): void {
    if (this.unloaded.size === 0) return;
    this.log.debug(`loading the ${this.unloaded.size} account JWT(s) not indexed yet`);
    for (const key of this.unloaded) this.loadNow(key);
  }

  /**
   * Sort one directory entry of the store: a JWT key goes to `out`, a tombstone to `deleted`;
   * `shard` is the name of the shard directory it is in (undefined at the top). Runs once per file
   * of a possibly huge store, so the layout is checked on the names (no path building); returns a
   * promise only when a leftover temp file is being removed.
   */
  private consider(dir: string, name: string, isFile: boolean, out: string[], shard: string | undefined): Promise<void> | undefined {
    if (!isFile) return undefined;
    if (shard === undefined && isJournalFile(name)) return undefined;
    if (isTempName(name)) {
      // Leftover of a write interrupted by a crash: never part of the store.
      if (!this.writable) return undefined;
      return unlink(join(dir, name)).then(
        () => this.log.debug(`removed leftover temp file ${join(dir, name)}`),
        () => {},
      );
    }
    const tomb = keyOfFile(name, TOMBSTONE_SUFFIX);
    const key = tomb ?? keyOfFile(name);
    // `<dir>/<KEY>.jwt` flat, `<dir>/<last 2 of KEY>/<KEY>.jwt` sharded: the same test as comparing with pathOf(key).
    const inLayout = key !== undefined && (this.opts.shard ? shard !== undefined && key.endsWith(shard) : shard === undefined);
    if (!inLayout) {
      this.log.debug(`ignoring ${join(dir, name)}: not in the store layout`);
      return undefined;
    }
    if (tomb) this.deleted.add(key);
    else out.push(key);
    return undefined;
  }

  override get(key: string): AccountEntry | undefined {
    const e = this.index.get(key);
    if (e !== undefined || this.unloaded.size === 0 || !this.unloaded.has(key)) return e;
    return this.loadNow(key);
  }

  override entries(): IterableIterator<AccountEntry> {
    this.loadAll();
    return this.index.entries();
  }

  override get size(): number {
    return this.index.size + this.unloaded.size;
  }

  override hash(): Buffer {
    this.loadAll();
    return this.index.hash();
  }

  async put(key: string, jwt: string, claims?: EntryClaims): Promise<AccountEntry> {
    const writer = this.writer;
    if (writer) {
      const file = this.pathOf(key);
      const dir = await this.dirFor(file);
      // The temp file is written while the journal record is made durable; the atomic rename
      // follows both. A temp write failing after the record is recorded as undone.
      const tmp = tempNameFor(file);
      const written = writeFile(tmp, jwt, { flag: "wx", mode: FILE_MODE }).then(
        () => undefined,
        (err: unknown) => err,
      );
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
    this.unloaded.delete(key);
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
    this.unloaded.delete(key);
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
    this.unloaded.delete(key);
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
