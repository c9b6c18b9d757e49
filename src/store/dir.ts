/**
 * Directory store: `<dir>/<KEY>.jwt`, or `<dir>/<last 2 chars>/<KEY>.jwt` when sharded, the layout
 * nats-server's resolvers and the Go account server share. Writes are atomic and durable.
 */
import { readFileSync, watch as fsWatch, type FSWatcher } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, sep } from "node:path";
import { isPublicKey } from "../jwt/nkey.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import {
  EntryIndex,
  makeEntry,
  type ExternalChange,
  type JwtStore,
  type StoredJwt,
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
}

/** Up to this many files open() reads itself; a bigger store is served while it loads. */
export const BACKGROUND_LOAD_ABOVE = 5000;
/** Longest the background loader holds the event loop before letting requests through. */
const LOAD_SLICE_MS = 4;

const JWT_SUFFIX = ".jwt";
const TOMBSTONE_SUFFIX = ".jwt.deleted";
const TEMP_RE = /^\..+\.tmp$/;
const PLAIN_KEY_RE = /^[A-Z2-7]+$/;
/** A constant options object: readFileSync spends a third of its time copying a string option. */
const READ_UTF8 = { encoding: "utf8", flag: "r" } as const;
const FILE_MODE = 0o640;
const DIR_MODE = 0o750;
/** How long file events are coalesced before the file is read (editors write in bursts). */
const SETTLE_MS = 25;

function keyOfFile(name: string, suffix = JWT_SUFFIX): string | undefined {
  if (!name.endsWith(suffix)) return undefined;
  const key = name.slice(0, -suffix.length);
  return isPublicKey(key, "account") ? key : undefined;
}

/** fsync a directory, so a rename or unlink in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Write `data` to `file` so that a crash leaves either the old or the new content, never a mix. */
export async function writeFileDurable(
  file: string,
  data: string,
  syncDir: (dir: string) => Promise<void> = fsyncDir,
): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", FILE_MODE);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await syncDir(dir);
}

interface Waiters {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Group commit of directory fsyncs: writers that call `sync(dir)` while an fsync of that directory
 * is running share the next one, which starts when the running one ends. Each caller resolves
 * only after an fsync that began after its call, so nothing is acknowledged before it is durable.
 */
export class DirSyncer {
  private readonly dirs = new Map<string, { running: boolean; next: Waiters | undefined }>();
  private readonly fsync: (dir: string) => Promise<void>;
  /** Number of fsyncs started (for tests and metrics). */
  started = 0;

  constructor(fsync: (dir: string) => Promise<void> = fsyncDir) {
    this.fsync = fsync;
  }

  sync(dir: string): Promise<void> {
    let d = this.dirs.get(dir);
    if (!d) {
      d = { running: false, next: undefined };
      this.dirs.set(dir, d);
    }
    d.next ??= waiters();
    const { promise } = d.next;
    if (!d.running) this.run(dir, d);
    return promise;
  }

  private run(dir: string, d: { running: boolean; next: Waiters | undefined }): void {
    const batch = d.next!;
    d.next = undefined;
    d.running = true;
    this.started++;
    this.fsync(dir).then(batch.resolve, batch.reject).finally(() => {
      d.running = false;
      if (d.next) this.run(dir, d);
      else this.dirs.delete(dir);
    });
  }
}

export class DirStore implements JwtStore {
  readonly kind = "dir";
  readonly writable: boolean;
  private readonly index = new EntryIndex();
  private readonly deleted = new Set<string>();
  private readonly log: Logger;
  private readonly knownDirs = new Set<string>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly pendingFiles = new Map<string, NodeJS.Timeout>();
  /** stat signature of each indexed file, to tell real edits from touch-only events. */
  private readonly sigs = new Map<string, string>();
  private onExternal: ((c: ExternalChange) => void) | undefined;
  private closed = false;
  /** Keys found by open() whose file is not read yet (background loading of a large store). */
  private readonly unloaded = new Set<string>();
  private backgroundLoad: Promise<void> | undefined;
  private readonly syncer = new DirSyncer();
  private readonly syncDir = (dir: string): Promise<void> => this.syncer.sync(dir);

  private readonly opts: DirStoreOptions;
  /** The store directory as join() writes it, with a trailing separator. */
  private readonly root: string;

  constructor(opts: DirStoreOptions) {
    this.opts = opts;
    this.writable = !opts.readonly;
    this.log = opts.log ?? silentLogger;
    const root = join(opts.dir);
    this.root = root === "." ? "" : root.endsWith(sep) ? root : root + sep;
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
          this.sigs.set(key, `${st.mtimeMs}:${st.size}`);
          this.index.set(makeEntry(key, jwt));
        }),
      );
    }
  }

  /** Directory fsyncs started so far (group commit makes this smaller than the number of writes). */
  get dirFsyncs(): number {
    return this.syncer.started;
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
  private loadNow(key: string): StoredJwt | undefined {
    this.unloaded.delete(key);
    const path = this.pathOf(key);
    let jwt: string;
    try {
      jwt = readFileSync(path, READ_UTF8);
    } catch (e) {
      // Gone since open() (or unreadable): not part of the store, as if it had not been listed.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.log.error(`reading ${path} failed: ${(e as Error).message}`);
      return undefined;
    }
    const entry = makeEntry(key, jwt);
    this.index.set(entry);
    return entry;
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
    if (name.charCodeAt(0) === 46 /* "." */ && TEMP_RE.test(name)) {
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

  get(key: string): StoredJwt | undefined {
    const e = this.index.get(key);
    if (e !== undefined || this.unloaded.size === 0 || !this.unloaded.has(key)) return e;
    return this.loadNow(key);
  }

  entries(): IterableIterator<StoredJwt> {
    this.loadAll();
    return this.index.entries();
  }

  get size(): number {
    return this.index.size + this.unloaded.size;
  }

  hash(): Buffer {
    this.loadAll();
    return this.index.hash();
  }

  async put(key: string, jwt: string): Promise<StoredJwt> {
    const entry = makeEntry(key, jwt);
    if (this.writable) {
      const file = this.pathOf(key);
      const dir = dirname(file);
      if (!this.knownDirs.has(dir)) {
        await mkdir(dir, { recursive: true, mode: DIR_MODE });
        await this.syncDir(this.opts.dir);
        this.knownDirs.add(dir);
      }
      // Concurrent writes share their directory fsyncs (group commit), each still durable first.
      await writeFileDurable(file, jwt, this.syncDir);
      if (this.deleted.has(key)) {
        await unlink(file + ".deleted").catch(() => {});
        await this.syncDir(dir);
      }
    }
    this.deleted.delete(key);
    this.unloaded.delete(key);
    this.index.set(entry);
    return entry;
  }

  async tombstone(key: string): Promise<void> {
    if (this.writable) {
      const file = this.pathOf(key);
      const dir = dirname(file);
      try {
        // Keep the last JWT in the tombstone, as nats-server's rename-on-delete does.
        await rename(file, file + ".deleted");
        await this.syncDir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        if (!this.knownDirs.has(dir)) {
          await mkdir(dir, { recursive: true, mode: DIR_MODE });
          this.knownDirs.add(dir);
        }
        await writeFileDurable(file + ".deleted", "", this.syncDir);
      }
    }
    this.sigs.delete(key);
    this.unloaded.delete(key);
    this.index.delete(key);
    this.deleted.add(key);
  }

  isDeleted(key: string): boolean {
    return this.deleted.has(key);
  }

  /** Forget a JWT (and remove its file on a writable store). */
  async remove(key: string): Promise<void> {
    if (this.writable) {
      await unlink(this.pathOf(key)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      await this.syncDir(dirname(this.pathOf(key)));
    }
    this.sigs.delete(key);
    this.unloaded.delete(key);
    this.index.delete(key);
  }

  watch(onChange: (change: ExternalChange) => void): void {
    // Only a directory maintained by someone else changes behind our back.
    if (this.writable) return;
    this.onExternal = onChange;
    for (const d of this.knownDirs) this.watchDir(d);
  }

  private watchDir(dir: string): void {
    if (this.closed || this.watchers.has(dir)) return;
    try {
      const w = fsWatch(dir, { persistent: false }, (_event, name) => this.onFsEvent(dir, name));
      w.on("error", (err) => this.log.error(`watching ${dir} failed: ${err.message}`));
      this.watchers.set(dir, w);
    } catch (err) {
      this.log.error(`cannot watch ${dir}: ${(err as Error).message}`);
    }
  }

  private onFsEvent(dir: string, name: string | Buffer | null): void {
    if (name === null) {
      void this.rescanDir(dir);
      return;
    }
    const file = name.toString();
    if (this.opts.shard && dir === this.opts.dir && file.length === 2) {
      const sub = join(dir, file);
      this.knownDirs.add(sub);
      this.watchDir(sub);
      void this.rescanDir(sub);
      return;
    }
    const key = keyOfFile(file);
    if (!key || this.pathOf(key) !== join(dir, file)) return;
    const t = this.pendingFiles.get(key);
    if (t) clearTimeout(t);
    this.pendingFiles.set(
      key,
      setTimeout(() => {
        this.pendingFiles.delete(key);
        void this.checkFile(key);
      }, SETTLE_MS),
    );
  }

  private async rescanDir(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    const seen = new Set<string>();
    for (const n of names) {
      const key = keyOfFile(n);
      if (key && this.pathOf(key) === join(dir, n)) {
        seen.add(key);
        await this.checkFile(key);
      }
    }
    for (const e of [...this.index.entries()]) {
      if (dirname(this.pathOf(e.key)) === dir && !seen.has(e.key)) await this.checkFile(e.key);
    }
  }

  /** Compare one file with the index and report a difference. */
  private async checkFile(key: string): Promise<void> {
    if (this.closed || !this.onExternal) return;
    const path = this.pathOf(key);
    let jwt: string | undefined;
    try {
      const st = await stat(path);
      const sig = `${st.mtimeMs}:${st.size}`;
      if (this.sigs.get(key) === sig && this.index.get(key)) return;
      jwt = await readFile(path, "utf8");
      this.sigs.set(key, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        this.log.error(`reading ${path} failed: ${(e as Error).message}`);
        return;
      }
      this.sigs.delete(key);
    }
    const current = this.index.get(key);
    if (jwt === undefined ? !current : current?.jwt === jwt) return;
    this.onExternal({ key, jwt });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of this.pendingFiles.values()) clearTimeout(t);
    this.pendingFiles.clear();
  }
}
