/**
 * The Prometheus scrape endpoint: the server's private registry in the text exposition format.
 */
import type { Metrics } from "../metrics.js";
import { send } from "./respond.js";
import type { Handler } from "./router.js";

export function metricsRoute(metrics: Metrics): Handler {
  return async function scrape(_req, res) {
    const { body, contentType } = await metrics.render();
    send(res, 200, { "Content-Type": contentType, "Cache-Control": "no-store" }, body);
  };
}
