/**
 * Starting a worker thread from a module next to the caller: the compiled .js, or the .ts source
 * loaded through tsx when the server runs from its sources (tests, benchmarks).
 */
import { Worker } from "node:worker_threads";

export function startWorker(callerUrl: string, name: string, workerData?: unknown): Worker {
  const opts = workerData === undefined ? {} : { workerData };
  if (!callerUrl.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, callerUrl), opts);
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { ...opts, eval: true });
}
