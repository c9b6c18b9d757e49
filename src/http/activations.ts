/**
 * `/jwt/v1/activations[/<hash>]`: upload an activation token and fetch it by its hash id, with
 * the flags, conditional requests and cache headers of the account endpoint.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ActivationRegistry } from "../activations.js";
import { AccountServerError, isAccountServerError } from "../errors.js";
import type { Notifier } from "../nats/index.js";
import { readBody, send } from "./respond.js";
import { serveStored } from "./serve-jwt.js";
import type { RequestContext } from "./router.js";

export interface ActivationRoutesOptions {
  readonly activations: ActivationRegistry;
  readonly notifier: Notifier;
  readonly maxBodyBytes: number;
  /** Wall clock in milliseconds. */
  readonly now: () => number;
}

export function activationRoutes(opts: ActivationRoutesOptions) {
  const { activations, notifier, now } = opts;

  function getActivation(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void {
    const hash = ctx.params["hash"]!;
    const view = activations.view(hash);
    if (!view) throw new AccountServerError("ACTIVATION_NOT_FOUND", { reason: hash });
    serveStored(req, res, ctx, view, now(), () => notifier.notifyActivation(view.issuer, view.entry.key, view.jwt));
  }

  async function postActivation(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: string;
    try {
      body = await readBody(req, opts.maxBodyBytes);
    } catch (err) {
      // An unreadable body gets the activation wording; a too-large one keeps its 413.
      if (isAccountServerError(err) && err.code === "BAD_JWT") {
        throw new AccountServerError("BAD_ACTIVATION", { reason: err.reason ?? "", cause: err });
      }
      throw err;
    }
    await activations.accept(body);
    send(res, 200, {});
  }

  return { getActivation, postActivation };
}
