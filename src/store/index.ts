/**
 * What the rest of the server may use of `store/`: the backends behind one interface, chosen
 * from the configuration, the activation-token stores, the version history and the store errors.
 */
import { join } from "node:path";
import { stateDirOf, type Config } from "../config/types.js";
import { StartupError } from "../errors.js";
import type { Logger } from "../log.js";
import { DirStore } from "./dir.js";
import { HistoryLog } from "./history.js";
import { KvStore } from "./kv.js";
import { MemoryStore } from "./memory.js";
import { NscStore } from "./nsc.js";
import type { HistorySource, JwtStore } from "./types.js";

export { createActivationStore, type ActivationStore } from "./activations.js";
export { DirStore } from "./dir.js";
export { ViewCache } from "./cache.js";
export { HistoryLog } from "./history.js";
export { KvStore } from "./kv.js";
export { nscOperatorJwtPath } from "./nsc.js";
export { STORE_TIMING_CHANNEL, type StoreTiming } from "./timing.js";
export {
  AccountEntry,
  accountEntry,
  contentEtag,
  digestOf,
  contentId,
  makeEntry,
  sameEntry,
  sha256,
  StoreConflictError,
  StoreOutcomeUnknownError,
  StoreUnavailableError,
  xorInto,
  type AccountChange,
  type ChangeSource,
  type EntryClaims,
  type ExternalChange,
  type HistoryEntry,
  type HistorySource,
  type JwtStore,
  type StoredJwt,
} from "./types.js";

/** The backend the configuration names (explicitly, or by the settings present). */
export function createStore(config: Config, log: Logger): JwtStore {
  const s = config.store;
  // An explicit type must have what it needs; without one the settings present decide.
  if (s.type === "dir" && s.dir === undefined) throw new StartupError("store type dir needs store.dir (or -dir)");
  if (s.type === "nsc" && s.nsc === undefined) throw new StartupError("store type nsc needs store.nsc (or -nsc)");
  if (s.type === "memory") return new MemoryStore();
  if (s.type === "kv") {
    const servers = s.servers ?? config.nats.servers;
    if (servers.length === 0) throw new StartupError("store type kv needs store.servers or nats.servers");
    return new KvStore({
      bucket: s.bucket,
      replicas: s.replicas,
      history: s.history,
      nats: {
        ...config.nats,
        servers,
        ...(s.userCredentials !== undefined ? { userCredentials: s.userCredentials } : {}),
      },
      log,
    });
  }
  if (s.nsc !== undefined && s.type !== "dir") {
    if (s.dir !== undefined) log.warn(`store.dir ${s.dir} is ignored: serving the nsc folder ${s.nsc}`);
    return new NscStore({ folder: s.nsc, log });
  }
  if (s.dir === undefined) return new MemoryStore();
  return new DirStore({ dir: s.dir, shard: s.shard, readonly: s.readonly, log });
}

/** The bucket keeps versions itself; other stores get a bounded log in the state directory. */
export function createHistory(config: Config, store: JwtStore, log: Logger, now: () => number): HistorySource {
  if (store instanceof KvStore) return store;
  const stateDir = stateDirOf(config.store);
  return new HistoryLog({
    ...(stateDir !== undefined && store.writable ? { dir: join(stateDir, "history") } : {}),
    limit: config.store.history,
    now,
    log,
  });
}
