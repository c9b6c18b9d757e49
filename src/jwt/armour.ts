/**
 * nsc's armour around JWTs in files (operator JWTs, `nsc describe --raw` copies): the bare JWT
 * found the way Go's regex finds it, line by line.
 */

const ARMOURED_JWT = /^[\w\-.=]+$/;

/** A BEGIN line: somewhere in it a run of 3+ dashes, then anything, then 3+ dashes at its end. */
function isBeginLine(line: string): boolean {
  return line.endsWith("---") && line.indexOf("---") <= line.length - 6;
}

/**
 * nsc's armour: a dashed BEGIN line, the JWT alone on a line, a dashed END line; the same matches
 * as Go's regex, found line by line (a backtracking regex took minutes on one long dashed line).
 */
function armouredJwt(text: string): string | undefined {
  const lines = text.split("\n");
  for (let i = 0; i + 2 < lines.length; i++) {
    if (!isBeginLine(lines[i]!.replace(/\r$/, ""))) continue;
    const jwt = lines[i + 1]!.replace(/\r$/, "");
    if (!ARMOURED_JWT.test(jwt)) continue;
    // The END line may be the last one, without a newline; then it must end in dashes exactly.
    const end = i + 3 < lines.length ? lines[i + 2]!.replace(/\r$/, "") : lines[i + 2]!;
    if (end.startsWith("---") && end.endsWith("---") && end.length >= 6) return jwt;
  }
  return undefined;
}

/**
 * The bare JWT from a file's text: the first armoured block of a decorated file (as nsc
 * writes operator JWTs), otherwise the text minus surrounding whitespace.
 * Meant for files only: POST bodies are stored verbatim.
 */
export function extractJwt(text: string): string {
  return armouredJwt(text) ?? text.trim();
}
