/**
 * The notification outbox: account keys whose change no nats-server has confirmed yet, kept in a
 * small state file so that changes made while NATS is away are announced even after a restart.
 */
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { stateDirOf, type Config } from "../config/types.js";
import { errorText, StartupError } from "../errors.js";
import { isPublicKey } from "../jwt/index.js";
import type { Logger } from "../log.js";
import type { JwtStore } from "../store/index.js";
import type { NatsLink } from "./connection.js";
import { DIR_MODE, isTempNameOf, writeFileDurable } from "../durable.js";

/** Name of the outbox file inside the state directory. */
export const OUTBOX_FILE = "notify-outbox.json";

interface Entry {
  /** Bumped on every change of the key, so a late confirmation of an older one is ignored. */
  gen: number;
  /** Writes of the key in progress: the key must stay until they are announced. */
  writing: number;
  /** In the state file (or on its way there); memory-only entries cost no disk write. */
  durable: boolean;
  /**
   * How to take back the running write's begin() if it stores nothing: the generation before it
   * (undefined: the entry did not exist) and whether that earlier announcement was confirmed since.
   */
  undo?: { gen: number | undefined; confirmed: boolean } | undefined;
}

export interface OutboxOptions {
  /** The state file; undefined keeps the outbox in memory only (memory store, no state dir). */
  readonly file?: string;
  /**
   * The store journals every change durably until its checkpoint, which calls persist(): begin()
   * then writes nothing, and the file is written once per checkpoint instead of once per change.
   */
  readonly journaled?: boolean;
  readonly log: Logger;
}

export class Outbox {
  readonly file: string | undefined;
  private readonly log: Logger;
  private readonly journaled: boolean;
  private readonly entries = new Map<string, Entry>();
  private gen = 0;
  /** Bumped on every mutation; `saved` is the version last written, to skip idle rewrites. */
  private version = 0;
  private saved = 0;
  private saving: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(opts: OutboxOptions) {
    this.file = opts.file;
    this.log = opts.log;
    this.journaled = opts.journaled ?? false;
  }

  /**
   * Create the state directory, drop temp files of an interrupted save and load the keys a
   * previous run left unconfirmed. Resolves false when the file was unreadable, in which case
   * the caller should announce everything it holds.
   */
  async open(): Promise<boolean> {
    if (this.file === undefined) return true;
    const dir = dirname(this.file);
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    for (const name of await readdir(dir)) {
      if (isTempNameOf(this.file, name)) await unlink(join(dir, name)).catch(() => {});
    }
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return true;
      throw err;
    }
    let keys: unknown;
    try {
      keys = (JSON.parse(text) as { pending?: unknown }).pending;
    } catch {
      keys = undefined;
    }
    if (!Array.isArray(keys)) {
      this.log.error(`notification outbox ${this.file} is unreadable`);
      return false;
    }
    for (const k of keys) {
      if (typeof k === "string" && isPublicKey(k, "account")) {
        this.entries.set(k, { gen: ++this.gen, writing: 0, durable: true });
      }
    }
    this.saved = this.version;
    return true;
  }

  get size(): number {
    return this.entries.size;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** The current generation of `key`, or undefined when nothing is pending for it. */
  generation(key: string): number | undefined {
    return this.entries.get(key)?.gen;
  }

  /**
   * A change of `key` is about to be written: resolves once that intent is durable. A key already
   * in the file needs no new write (repeated changes during an outage cost nothing more), nor does
   * any key of a journaled store (its journal holds the change until persist() has run).
   */
  async begin(key: string): Promise<void> {
    const prior = this.entries.get(key)?.gen;
    const e = this.touch(key);
    e.undo = e.writing === 0 ? { gen: prior, confirmed: false } : undefined;
    if (this.journaled) {
      e.writing++;
      return;
    }
    if (!e.durable) {
      e.durable = true;
      this.version++;
    }
    e.writing++;
    try {
      await this.save();
    } catch (err) {
      e.writing--;
      throw err;
    }
  }

  /**
   * The write of `key` ended: announced on the change feed, or failed. `stored` false means it
   * certainly stored nothing (refused, lost a compare-and-set, store unreachable): its begin() is
   * taken back, so nothing already announced is announced again on the next connect.
   */
  end(key: string, stored = true): void {
    const e = this.entries.get(key);
    if (!e || e.writing === 0) return;
    e.writing--;
    const undo = e.undo;
    e.undo = undefined;
    if (stored || !undo || e.writing > 0) return;
    if (undo.gen !== undefined && !undo.confirmed) {
      e.gen = undo.gen;
      return;
    }
    this.entries.delete(key);
    if (e.durable) {
      this.version++;
      this.saveLater();
    }
  }

  /**
   * Queue an announcement of `key` in memory only (`notify=true`, an unreadable outbox at start):
   * nothing was changed, so nothing is lost if a crash forgets it.
   */
  mark(key: string): void {
    this.touch(key).undo = undefined;
  }

  /**
   * Write every pending key to the file (the store's checkpoint hook, before it drops the journal
   * that recorded their changes). Resolves once the file is durable.
   */
  persist(): Promise<void> {
    for (const e of this.entries.values()) {
      if (!e.durable) {
        e.durable = true;
        this.version++;
      }
    }
    return this.save();
  }

  /** A nats-server received the announcement of `key` made at generation `gen`. */
  confirm(key: string, gen: number): void {
    const e = this.entries.get(key);
    if (e?.undo?.gen === gen) e.undo.confirmed = true;
    if (!e || e.gen !== gen || e.writing > 0) return;
    this.entries.delete(key);
    if (!e.durable) return;
    this.version++;
    this.saveLater();
  }

  private touch(key: string): Entry {
    let e = this.entries.get(key);
    if (!e) {
      e = { gen: 0, writing: 0, durable: false };
      this.entries.set(key, e);
    }
    e.gen = ++this.gen;
    return e;
  }

  private saveLater(): void {
    this.save().catch((err: unknown) => {
      this.log.error(`saving the notification outbox ${this.file} failed: ${errorText(err)}`);
    });
  }

  /**
   * Write the pending keys (atomic, durable). Calls made while a write is running share the one
   * write queued after it, which sees every change made before it starts (group commit).
   */
  save(): Promise<void> {
    if (this.file === undefined) return Promise.resolve();
    if (!this.saving) {
      this.saving = this.write().finally(() => {
        this.saving = undefined;
      });
      return this.saving;
    }
    this.queued ??= this.saving
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return this.save();
      });
    return this.queued;
  }

  private async write(): Promise<void> {
    const version = this.version;
    if (version === this.saved) return;
    const durable = [...this.entries].filter(([, e]) => e.durable).map(([k]) => k);
    await writeFileDurable(this.file!, JSON.stringify({ version: 1, pending: durable }) + "\n");
    if (this.saved < version) this.saved = version;
  }
}

/**
 * The NATS notification outbox, kept in the state directory when there is one, so changes made
 * while NATS is away are announced after a restart too. Unreadable: announce everything again.
 */
export async function openOutbox(config: Config, store: JwtStore, link: NatsLink | undefined, log: Logger): Promise<Outbox> {
  const stateDir = stateDirOf(config.store);
  if (!link || stateDir === undefined || store.kind === "memory") return new Outbox({ log });
  const journal = store.journaled;
  const outbox = new Outbox({ file: join(stateDir, OUTBOX_FILE), journaled: journal !== undefined, log });
  try {
    const readable = await outbox.open();
    if (!readable) {
      log.warn("announcing every stored account to be safe");
      await store.loading;
      for (const { key } of store.entries()) outbox.mark(key);
    }
    // Changes an interrupted run journaled may not have been announced.
    for (const key of journal?.recovered ?? []) outbox.mark(key);
    // One rewrite of the file, so a crash before NATS is back loses nothing.
    if (!readable || (journal?.recovered.length ?? 0) > 0) await outbox.persist();
  } catch (err) {
    const why = `cannot keep the notification outbox in ${stateDir}: ${errorText(err)}`;
    if (store.writable) throw new StartupError(`${why} (store.statedir sets a writable directory)`);
    log.warn(`${why}; changes seen while NATS is down are kept in memory only`);
    return new Outbox({ log });
  }
  journal?.beforeCheckpoint(() => outbox.persist());
  if (outbox.size > 0) log.info(`${outbox.size} notification(s) from before the restart wait for NATS`);
  return outbox;
}
