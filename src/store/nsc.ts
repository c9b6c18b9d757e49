/**
 * NSC store: a read-only view over an `nsc` operator folder (`<folder>/<Operator>.jwt`,
 * `<folder>/accounts/<Name>/<Name>.jwt`), indexed by account key and watched for edits.
 */
import { readFileSync, watch as fsWatch, type FSWatcher } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { errorText } from "../errors.js";
import { extractJwt, isPublicKey, peekClaims } from "../jwt/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { ServedOnlyStore } from "./indexed.js";
import { digestOf, type AccountEntry, type ExternalChange, type JwtStore } from "./types.js";

export interface NscStoreOptions {
  /** The operator folder, e.g. `~/.local/share/nats/nsc/stores/<Operator>`. */
  readonly folder: string;
  readonly log?: Logger;
}

/** nsc's own names for the parts of an operator folder. */
const ACCOUNTS = "accounts";
const NSC_INFO = ".nsc";
const JWT_SUFFIX = ".jwt";
/** How long file events are coalesced before files are read (nsc truncates, then writes). */
const SETTLE_MS = 25;

/**
 * The operator JWT of an nsc folder: `<folder>/<name>.jwt`, where nsc takes the name from its
 * `.nsc` file (normally equal to the folder's base name).
 */
export function nscOperatorJwtPath(folder: string): string {
  let name = basename(folder);
  try {
    const info = JSON.parse(readFileSync(join(folder, NSC_INFO), "utf8")) as { name?: unknown };
    if (typeof info.name === "string" && info.name.trim() !== "") name = info.name.trim();
  } catch {
    // No or unreadable .nsc: nsc names the folder after the operator.
  }
  return join(folder, name + JWT_SUFFIX);
}

interface AccountFile {
  readonly key: string;
  /** SHA-256 of the JWT in the file (see digestOf): bodies are read again when needed. */
  readonly digest: string;
  readonly iat: number;
  /** mtime and size, to skip re-reading files an event did not change. */
  readonly sig: string;
}

type ReadResult =
  | { readonly kind: "ok"; readonly file: AccountFile; readonly jwt: string }
  | { readonly kind: "unchanged" | "missing" | "invalid" };

export class NscStore extends ServedOnlyStore implements JwtStore {
  readonly kind = "nsc";
  readonly writable = false;
  private readonly folder: string;
  private readonly accountsDir: string;
  private readonly log: Logger;
  /** What is on disk: account folder name → its JWT file. */
  private readonly files = new Map<string, AccountFile>();
  /** key → account folder names holding it (normally one). */
  private readonly namesByKey = new Map<string, Set<string>>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly pending = new Set<string>();
  private rescanPending = false;
  private settleTimer: NodeJS.Timeout | undefined;
  /** File checks run one batch at a time, so a batch sees a stable index. */
  private queue: Promise<void> = Promise.resolve();
  private onExternal: ((c: ExternalChange) => void) | undefined;
  private closed = false;

  constructor(opts: NscStoreOptions) {
    super();
    this.folder = opts.folder;
    this.accountsDir = join(opts.folder, ACCOUNTS);
    this.log = opts.log ?? silentLogger;
  }

  get description(): string {
    return `nsc folder ${this.folder}`;
  }

  /** The operator JWT file of this folder. */
  get operatorJwtPath(): string {
    return nscOperatorJwtPath(this.folder);
  }

  private fileOf(name: string): string {
    return join(this.accountsDir, name, name + JWT_SUFFIX);
  }

  async open(): Promise<void> {
    const st = await stat(this.folder);
    if (!st.isDirectory()) throw new Error(`${this.folder} is not a directory`);
    const read = new Map<string, string>();
    for (const name of await this.accountNames()) {
      const r = await this.readAccount(name);
      if (r.kind === "ok") {
        this.link(name, r.file);
        read.set(name, r.jwt);
      }
    }
    for (const key of this.namesByKey.keys()) {
      const best = this.winner(key);
      if (best) this.setEntry(key, read.get(best.name)!);
    }
    this.log.debug(`nsc folder ${this.folder}: ${this.files.size} account file(s), ${this.size} account(s)`);
  }

  /** Names of the account folders (`accounts/<Name>/`); none while `accounts/` does not exist. */
  private async accountNames(): Promise<string[]> {
    try {
      const dirents = await readdir(this.accountsDir, { withFileTypes: true });
      return dirents.filter((d) => d.isDirectory()).map((d) => d.name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }

  /**
   * `force`: an event named this folder. The mtime-and-size signature only spares rescans: an
   * edit of equal size within one timestamp tick (nsc rewrites files in place) keeps both.
   */
  private async readAccount(name: string, force = false): Promise<ReadResult> {
    const path = this.fileOf(name);
    let text: string;
    let sig: string;
    try {
      const st = await stat(path);
      if (!st.isFile()) return { kind: "missing" };
      sig = `${st.mtimeMs}:${st.size}`;
      if (!force && this.files.get(name)?.sig === sig) return { kind: "unchanged" };
      text = await readFile(path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return { kind: "missing" };
      this.log.error(`reading ${path} failed: ${errorText(e)}`);
      return { kind: "invalid" };
    }
    // nsc writes bare JWTs; decorated ones (copied from `nsc describe --raw` or an export) are accepted too.
    const jwt = extractJwt(text);
    const claims = peekClaims(jwt);
    if (!claims || !isPublicKey(claims.sub, "account")) {
      // Possibly caught half-written: keep serving what was there, the write's next event re-reads it.
      if (text.trim() !== "") this.log.warn(`ignoring ${path}: not an account JWT`);
      return { kind: "invalid" };
    }
    return { kind: "ok", file: { key: claims.sub, digest: digestOf(jwt), iat: claims.iat, sig }, jwt };
  }

  /** The JWT in the winning file of `entry`'s key, read again (the index holds no bodies). */
  protected async readBody(entry: AccountEntry): Promise<string | undefined> {
    const best = this.winner(entry.key);
    if (!best) return undefined;
    const r = await this.readAccount(best.name, true);
    return r.kind === "ok" ? r.jwt : undefined;
  }

  private link(name: string, file: AccountFile): void {
    this.files.set(name, file);
    let names = this.namesByKey.get(file.key);
    if (!names) this.namesByKey.set(file.key, (names = new Set()));
    names.add(name);
  }

  private unlink(name: string): string | undefined {
    const old = this.files.get(name);
    if (!old) return undefined;
    this.files.delete(name);
    const names = this.namesByKey.get(old.key);
    names?.delete(name);
    if (names?.size === 0) this.namesByKey.delete(old.key);
    return old.key;
  }

  /** The file served for `key` when several folders hold it: newest `iat`, then first name. */
  private winner(key: string): { name: string; file: AccountFile } | undefined {
    let best: { name: string; file: AccountFile } | undefined;
    for (const name of this.namesByKey.get(key) ?? []) {
      const file = this.files.get(name)!;
      if (!best || file.iat > best.file.iat || (file.iat === best.file.iat && name < best.name)) {
        best = { name, file };
      }
    }
    return best;
  }

  watch(onChange: (change: ExternalChange) => void): void {
    this.onExternal = onChange;
    this.watchDir(this.folder, (name) => {
      if (name === null || name === ACCOUNTS) this.schedule(undefined);
    });
    this.watchDir(this.accountsDir, () => this.schedule(undefined));
    for (const name of this.files.keys()) this.watchAccount(name);
    // Folders that held no valid JWT at open still need watching, so their first JWT is seen.
    this.schedule(undefined);
  }

  private watchAccount(name: string): void {
    this.watchDir(join(this.accountsDir, name), (file) => {
      if (file === null || file === name + JWT_SUFFIX) this.schedule(name);
    });
  }

  private watchDir(dir: string, onEvent: (name: string | null) => void): void {
    if (this.closed || this.watchers.has(dir)) return;
    try {
      const w = fsWatch(dir, { persistent: false }, (_event, name) => onEvent(name === null ? null : name.toString()));
      // A watched folder that disappears reports an error; the parent's rescan cleans up.
      w.on("error", () => this.unwatch(dir));
      this.watchers.set(dir, w);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        this.log.error(`cannot watch ${dir}: ${errorText(e)}`);
      }
    }
  }

  private unwatch(dir: string): void {
    this.watchers.get(dir)?.close();
    this.watchers.delete(dir);
  }

  /** Queue a check of one account folder, or (undefined) of the whole `accounts/` listing. */
  private schedule(name: string | undefined): void {
    if (this.closed) return;
    if (name === undefined) this.rescanPending = true;
    else this.pending.add(name);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = undefined;
      const rescan = this.rescanPending;
      const names = [...this.pending];
      this.rescanPending = false;
      this.pending.clear();
      this.queue = this.queue.then(() => this.check(rescan, names)).catch((e: unknown) => {
        this.log.error(`checking nsc folder ${this.folder} failed: ${errorText(e)}`);
      });
    }, SETTLE_MS);
  }

  /**
   * Re-read the named account folders (all of them after a listing change), then report each
   * key whose file content now differs from what is served. Renames are seen as one batch, so
   * an account moved to another folder is not reported as removed and re-added.
   */
  private async check(rescan: boolean, names: string[]): Promise<void> {
    if (this.closed) return;
    const toRead = new Set(names);
    if (rescan) {
      this.watchDir(this.accountsDir, () => this.schedule(undefined));
      const present = new Set(await this.accountNames());
      for (const name of present) {
        toRead.add(name);
        this.watchAccount(name);
      }
      for (const name of [...this.files.keys()]) {
        if (!present.has(name)) toRead.add(name);
      }
      for (const dir of this.watchers.keys()) {
        if (dirname(dir) === this.accountsDir && !present.has(basename(dir))) this.unwatch(dir);
      }
    }
    const affected = new Set<string>();
    const named = new Set(names);
    const read = new Map<string, string>();
    for (const name of toRead) {
      const r = await this.readAccount(name, named.has(name));
      if (r.kind === "unchanged" || r.kind === "invalid") continue;
      const oldKey = this.unlink(name);
      if (oldKey !== undefined) affected.add(oldKey);
      if (r.kind === "ok") {
        this.link(name, r.file);
        read.set(name, r.jwt);
        affected.add(r.file.key);
      }
    }
    for (const key of affected) {
      const best = this.winner(key);
      if (best?.file.digest === this.get(key)?.digest || this.closed) continue;
      if (!best) {
        this.onExternal?.({ key, jwt: undefined });
        continue;
      }
      const jwt = read.get(best.name) ?? (await this.readAccount(best.name, true).then((r) => (r.kind === "ok" ? r.jwt : undefined)));
      if (jwt !== undefined && !this.closed) this.onExternal?.({ key, jwt });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.settleTimer) clearTimeout(this.settleTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.queue;
  }
}
