/**
 * Where activation tokens live, keyed by their hash id: in memory beside the memory store, else
 * as `<statedir>/activations/<hash>.jwt` files, so the account store directory stays portable.
 */
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { stateDirOf, type StoreConfig } from "../config/types.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { DIR_MODE, fsyncDir, isTempName, writeFileDurable } from "../durable.js";
import { makeEntry, type JwtStore, type StoredJwt } from "./types.js";

/** Our activation hash ids: unpadded base32 of a SHA-256 (52 characters). */
export const ACTIVATION_HASH_RE = /^[A-Z2-7]{52}$/;
const FILE_RE = /^([A-Z2-7]{52})\.jwt$/;

export interface ActivationStore {
  /** "memory" or "dir", for logs and health. */
  readonly kind: string;
  readonly description: string;
  /** False when the account store is read-only: nothing is ever written. */
  readonly writable: boolean;
  open(): Promise<void>;
  get(hash: string): StoredJwt | undefined;
  readonly size: number;
  /** Resolves once the token is durable. */
  put(hash: string, jwt: string): Promise<StoredJwt>;
  close(): Promise<void>;
}

export class MemoryActivationStore implements ActivationStore {
  readonly kind = "memory";
  readonly description = "memory (activation tokens are not kept across restarts)";
  readonly writable: boolean;
  private readonly index = new Map<string, StoredJwt>();

  constructor(writable = true) {
    this.writable = writable;
  }

  async open(): Promise<void> {}

  get(hash: string): StoredJwt | undefined {
    return this.index.get(hash);
  }

  get size(): number {
    return this.index.size;
  }

  async put(hash: string, jwt: string): Promise<StoredJwt> {
    const entry = makeEntry(hash, jwt);
    this.index.set(entry.key, entry);
    return entry;
  }

  async close(): Promise<void> {}
}

export interface DirActivationStoreOptions {
  /** The activations directory itself (`<statedir>/activations`). */
  readonly dir: string;
  readonly writable: boolean;
  readonly log?: Logger;
}

/** One durable file per token; everything is read at open and served from memory. */
export class DirActivationStore implements ActivationStore {
  readonly kind = "dir";
  readonly writable: boolean;
  private readonly index = new Map<string, StoredJwt>();
  private readonly dir: string;
  private readonly log: Logger;
  private dirReady = false;

  constructor(opts: DirActivationStoreOptions) {
    this.dir = opts.dir;
    this.writable = opts.writable;
    this.log = opts.log ?? silentLogger;
  }

  get description(): string {
    return this.dir;
  }

  async open(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      // Created on the first upload; a read-only server never creates it.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    this.dirReady = true;
    for (const name of names) {
      if (isTempName(name)) {
        if (this.writable) await unlink(join(this.dir, name)).catch(() => {});
        continue;
      }
      const hash = FILE_RE.exec(name)?.[1];
      if (hash === undefined) {
        this.log.debug(`ignoring ${join(this.dir, name)}: not an activation file`);
        continue;
      }
      this.index.set(hash, makeEntry(hash, await readFile(join(this.dir, name), "utf8")));
    }
  }

  get(hash: string): StoredJwt | undefined {
    return this.index.get(hash);
  }

  get size(): number {
    return this.index.size;
  }

  async put(hash: string, jwt: string): Promise<StoredJwt> {
    if (!ACTIVATION_HASH_RE.test(hash)) throw new Error(`not an activation hash: ${hash}`);
    if (!this.writable) throw new Error("the activation store is read-only");
    if (!this.dirReady) {
      await mkdir(this.dir, { recursive: true, mode: DIR_MODE });
      // The new directories must survive a crash too: sync the parents that got an entry.
      await fsyncDir(dirname(this.dir));
      await fsyncDir(dirname(dirname(this.dir)));
      this.dirReady = true;
    }
    await writeFileDurable(join(this.dir, `${hash}.jwt`), jwt);
    const entry = makeEntry(hash, jwt);
    this.index.set(entry.key, entry);
    return entry;
  }

  async close(): Promise<void> {}
}


/**
 * The activation store that goes with `accounts`: in memory beside a memory store (or when
 * there is no state directory), else files under the state directory.
 */
export function createActivationStore(config: StoreConfig, accounts: JwtStore, log: Logger): ActivationStore {
  const stateDir = stateDirOf(config);
  if (accounts.kind === "memory" || stateDir === undefined) return new MemoryActivationStore(accounts.writable);
  return new DirActivationStore({ dir: join(stateDir, "activations"), writable: accounts.writable, log });
}
