/**
 * Graceful shutdown of the HTTP listener: once draining, requests already in flight finish and
 * close their connection, and requests that arrive later on open connections get a clean 503.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AccountServerError } from "../errors.js";
import type { Logger } from "../log.js";
import { sendError } from "./respond.js";

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export class Drain {
  private draining = false;
  private readonly inflight = new Set<ServerResponse>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  /** Requests being handled right now. */
  get active(): number {
    return this.inflight.size;
  }

  wrap(app: RequestListener): RequestListener {
    return (req, res) => {
      if (this.draining) {
        res.setHeader("Connection", "close");
        sendError(req, res, new AccountServerError("SHUTTING_DOWN"), this.log);
        return;
      }
      app(req, res);
      // Answered synchronously (the GET hot path): nothing left in flight to close on shutdown.
      if (res.writableEnded) return;
      this.inflight.add(res);
      res.once("close", () => this.inflight.delete(res));
    };
  }

  /** Stop taking requests: in-flight answers close their connection instead of keeping it alive. */
  start(): void {
    this.draining = true;
    for (const res of this.inflight) {
      if (!res.headersSent) res.setHeader("Connection", "close");
    }
  }
}
