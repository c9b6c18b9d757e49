/**
 * The server version, read once from package.json so there is a single place to bump it.
 * Works from both src/ (tests through tsx) and dist/ (the installed binary).
 */
import { readFileSync } from "node:fs";

export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;
