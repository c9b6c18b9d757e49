/**
 * The watcher of a read-only directory store: file events are coalesced, each named file is read
 * and compared with what is served, and a difference is reported as an external change.
 */
import { watch as fsWatch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { errorText } from "../errors.js";
import type { Logger } from "../log.js";
import { digestOf, type AccountEntry, type ExternalChange } from "./types.js";

/** How long file events are coalesced before the file is read (editors write in bursts). */
const SETTLE_MS = 25;

export interface DirWatcherOptions {
  /** The store root. */
  readonly dir: string;
  readonly shard: boolean;
  readonly log: Logger;
  readonly pathOf: (key: string) => string;
  /** The account key a file name in the layout stands for. */
  readonly keyOfFile: (name: string) => string | undefined;
  /** What is served now. */
  readonly served: (key: string) => AccountEntry | undefined;
  readonly entries: () => Iterable<AccountEntry>;
}

/** mtime and size: a rescan skips files whose signature did not change. */
export function statSignature(st: { mtimeMs: number; size: number }): string {
  return `${st.mtimeMs}:${st.size}`;
}

export class DirWatcher {
  private readonly o: DirWatcherOptions;
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly sigs = new Map<string, string>();
  private onChange: ((change: ExternalChange) => void) | undefined;
  private closed = false;

  constructor(o: DirWatcherOptions) {
    this.o = o;
  }

  /** The signature of the file `key` was read from (at open), so rescans compare with it. */
  remember(key: string, sig: string): void {
    this.sigs.set(key, sig);
  }

  forget(key: string): void {
    this.sigs.delete(key);
  }

  start(dirs: Iterable<string>, onChange: (change: ExternalChange) => void): void {
    this.onChange = onChange;
    for (const d of dirs) this.watchDir(d);
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  private watchDir(dir: string): void {
    if (this.closed || this.watchers.has(dir)) return;
    try {
      const w = fsWatch(dir, { persistent: false }, (_event, name) => this.onFsEvent(dir, name));
      w.on("error", (err) => this.o.log.error(`watching ${dir} failed: ${err.message}`));
      this.watchers.set(dir, w);
    } catch (err) {
      this.o.log.error(`cannot watch ${dir}: ${errorText(err)}`);
    }
  }

  private onFsEvent(dir: string, name: string | Buffer | null): void {
    if (name === null) {
      void this.rescanDir(dir);
      return;
    }
    const file = name.toString();
    if (this.o.shard && dir === this.o.dir && file.length === 2) {
      const sub = join(dir, file);
      this.watchDir(sub);
      void this.rescanDir(sub);
      return;
    }
    const key = this.o.keyOfFile(file);
    if (!key || this.o.pathOf(key) !== join(dir, file)) return;
    const t = this.pending.get(key);
    if (t) clearTimeout(t);
    this.pending.set(
      key,
      setTimeout(() => {
        this.pending.delete(key);
        void this.checkFile(key, true);
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
      const key = this.o.keyOfFile(n);
      if (key && this.o.pathOf(key) === join(dir, n)) {
        seen.add(key);
        await this.checkFile(key);
      }
    }
    for (const e of [...this.o.entries()]) {
      if (dirname(this.o.pathOf(e.key)) === dir && !seen.has(e.key)) await this.checkFile(e.key);
    }
  }

  /**
   * Compare one file with what is served and report a difference. `force`: an event named the
   * file; the signature only spares rescans, since an edit of equal size within one timestamp
   * tick keeps it.
   */
  private async checkFile(key: string, force = false): Promise<void> {
    if (this.closed || !this.onChange) return;
    const path = this.o.pathOf(key);
    let jwt: string | undefined;
    try {
      const sig = statSignature(await stat(path));
      if (!force && this.sigs.get(key) === sig && this.o.served(key)) return;
      jwt = await readFile(path, "utf8");
      this.sigs.set(key, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        this.o.log.error(`reading ${path} failed: ${errorText(e)}`);
        return;
      }
      this.sigs.delete(key);
    }
    const current = this.o.served(key);
    if (jwt === undefined ? !current : current?.digest === digestOf(jwt)) return;
    this.onChange({ key, jwt });
  }
}
