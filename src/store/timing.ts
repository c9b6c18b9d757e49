/**
 * Durations of the directory store's durable steps, published on a diagnostics channel so the
 * metrics can observe them without the store knowing about metrics (free when nobody listens).
 */
import { channel } from "node:diagnostics_channel";

export const STORE_TIMING_CHANNEL = "nats-account-server:store-timing";

export interface StoreTiming {
  /** The store directory, so a process running several servers keeps them apart. */
  readonly dir: string;
  readonly operation: "journal_commit" | "checkpoint";
  readonly seconds: number;
}

const timing = channel(STORE_TIMING_CHANNEL);

/** Report that `operation` on the store in `dir` took since `startNs` (process.hrtime.bigint()). */
export function reportTiming(dir: string, operation: StoreTiming["operation"], startNs: bigint): void {
  if (!timing.hasSubscribers) return;
  const t: StoreTiming = { dir, operation, seconds: Number(process.hrtime.bigint() - startNs) / 1e9 };
  timing.publish(t);
}
