/**
 * Large account JWTs are checked on worker threads (one per core), so validating a JWT of a
 * megabyte never holds up other requests; small ones are checked inline, where it costs less.
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { startWorker } from "../workers.js";
import { AccountServerError, type ErrorCode } from "../errors.js";
import { checkAccountJwt, type CheckedJwt, type CheckInput } from "./check.js";

/** What the pool sends a worker: the check's input, trust keys as a list. */
export interface CheckRequest {
  readonly id: number;
  readonly input: Omit<CheckInput, "trusted"> & { readonly trusted: readonly string[] };
}

/** A worker's answer: the checked fields (without the token, which the caller has), or why not. */
export type CheckReply =
  | { readonly id: number; readonly checked: Omit<CheckedJwt, "token"> }
  | {
      readonly id: number;
      readonly refusal: { code: ErrorCode; phrase: string; details: string[]; reason?: string };
    }
  | { readonly id: number; readonly failure: string };

/**
 * JWTs up to this size are checked inline: the heaviest shapes of 16 KiB take 1–10 ms of CPU
 * (bench/validation.ts --limit=16384 on a loaded 2-core machine; ordinary account JWTs are a few
 * KiB and take well under a millisecond); above it a worker round trip costs far less than the check.
 */
export const INLINE_LIMIT = 16 * 1024;

interface Job {
  readonly input: CheckInput;
  readonly request: CheckRequest;
  readonly resolve: (c: CheckedJwt) => void;
  readonly reject: (e: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
}

/** The worker's entry: the compiled .js, or the .ts source loaded through tsx when run from sources. */
function spawn(): Worker {
  return startWorker(import.meta.url, "check-worker");
}

export class CheckPool {
  private readonly size: number;
  private readonly inlineLimit: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;

  constructor(opts: { size?: number; inlineLimit?: number } = {}) {
    this.size = Math.max(1, opts.size ?? availableParallelism());
    this.inlineLimit = opts.inlineLimit ?? INLINE_LIMIT;
  }

  /**
   * checkAccountJwt: a small JWT right away (returning or throwing, so callers keep the order in
   * which requests came), a large one on a worker (rejecting with the same AccountServerError).
   */
  check(input: CheckInput): CheckedJwt | Promise<CheckedJwt> {
    if (input.jwt.length <= this.inlineLimit || this.closed) return checkAccountJwt(input);
    return new Promise((resolve, reject) => {
      const request: CheckRequest = { id: ++this.nextId, input: { ...input, trusted: [...input.trusted] } };
      this.queue.push({ input, request, resolve, reject });
      this.dispatch();
    });
  }

  /** Workers started so far (they start on first use). */
  get workers(): number {
    return this.slots.length;
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (!slot && this.slots.length < this.size) slot = this.start();
      if (!slot) return;
      const job = this.queue.shift() as Job;
      slot.job = job;
      slot.worker.ref();
      slot.worker.postMessage(job.request);
    }
  }

  private start(): Slot {
    const slot: Slot = { worker: spawn(), job: undefined };
    // An idle worker must not keep the process alive.
    slot.worker.unref();
    slot.worker.on("message", (reply: CheckReply) => {
      const job = slot.job;
      slot.job = undefined;
      slot.worker.unref();
      if (job && job.request.id === reply.id) settle(job, reply);
      this.dispatch();
    });
    const lost = (why: string): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const job = slot.job;
      slot.job = undefined;
      if (!job) return;
      // Closing: finish the check here. A worker that died on its own may have died of this JWT.
      if (this.closed) inline(job.input).then(job.resolve, job.reject);
      else job.reject(new AccountServerError("INTERNAL", { reason: `validation worker ${why}` }));
      this.dispatch();
    };
    slot.worker.on("error", (err) => lost(`failed: ${err.message}`));
    slot.worker.on("exit", (code) => lost(`exited with code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  /** Stop the workers; checks still queued or running, and later ones, are done inline. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) inline(job.input).then(job.resolve, job.reject);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

function inline(input: CheckInput): Promise<CheckedJwt> {
  try {
    return Promise.resolve(checkAccountJwt(input));
  } catch (err) {
    return Promise.reject(err);
  }
}

function settle(job: Job, reply: CheckReply): void {
  if ("checked" in reply) job.resolve({ ...reply.checked, token: job.input.jwt });
  else if ("refusal" in reply) {
    const { code, phrase, details, reason } = reply.refusal;
    job.reject(new AccountServerError(code, { phrase, details, ...(reason !== undefined ? { reason } : {}) }));
  } else job.reject(new AccountServerError("INTERNAL", { reason: `validation worker: ${reply.failure}` }));
}
