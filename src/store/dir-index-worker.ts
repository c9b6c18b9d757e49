/**
 * Worker thread that builds the directory store's index (see dir-index.ts): batches go to the
 * store as they are read, at most a few ahead of what the store has taken in.
 */
import { parentPort, workerData } from "node:worker_threads";
import { indexDirectory, type IndexBatch } from "./dir-index.js";

export interface IndexWorkerData {
  readonly dir: string;
  readonly shard: boolean;
  readonly writable: boolean;
  /** [0]: batches the store has taken in (it notifies after each). */
  readonly taken: Int32Array;
}

export type IndexWorkerMessage = { readonly batch: IndexBatch } | { readonly done: true } | { readonly error: string };

/** Batches sent and not yet taken in before the worker waits: bounds the memory in transit. */
const AHEAD = 4;

const port = parentPort;
if (!port) throw new Error("dir-index-worker.ts runs only as a worker thread");
const d = workerData as IndexWorkerData;
let sent = 0;
try {
  indexDirectory(d.dir, d.shard, d.writable, (batch) => {
    port.postMessage({ batch } satisfies IndexWorkerMessage);
    sent++;
    for (let taken = Atomics.load(d.taken, 0); sent - taken > AHEAD; taken = Atomics.load(d.taken, 0)) {
      Atomics.wait(d.taken, 0, taken, 1000);
    }
  });
  port.postMessage({ done: true } satisfies IndexWorkerMessage);
} catch (err) {
  port.postMessage({ error: (err as Error)?.stack ?? String(err) } satisfies IndexWorkerMessage);
}
