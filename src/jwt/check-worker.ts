/**
 * Validation worker thread: runs checkAccountJwt on one JWT per message and answers the fields the
 * write path needs, or the refusal's code and texts (see check-pool.ts for the protocol).
 */
import { parentPort } from "node:worker_threads";
import { isAccountServerError } from "../errors.js";
import { checkAccountJwt, type CheckInput } from "./check.js";
import type { CheckReply, CheckRequest } from "./check-pool.js";

const port = parentPort;
if (!port) throw new Error("check-worker.ts runs only as a worker thread");

port.on("message", (req: CheckRequest) => {
  let reply: CheckReply;
  try {
    const input: CheckInput = { ...req.input, trusted: new Set(req.input.trusted) };
    const { token: _token, ...checked } = checkAccountJwt(input);
    reply = { id: req.id, checked };
  } catch (err) {
    reply = isAccountServerError(err)
      ? { id: req.id, refusal: { code: err.code, phrase: err.phrase, details: [...err.details], ...(err.reason !== undefined ? { reason: err.reason } : {}) } }
      : { id: req.id, failure: (err as Error)?.stack ?? String(err) };
  }
  port.postMessage(reply);
});
