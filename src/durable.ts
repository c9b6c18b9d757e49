/**
 * Durable file primitives shared by the stores and the state files: an atomic replace that
 * survives a crash, and fsync of a directory so that renames and unlinks in it do too.
 */
import { close, fdatasync, fsync, open as openFd } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Modes of everything the server writes: group-readable, never world-readable. */
export const FILE_MODE = 0o640;
export const DIR_MODE = 0o750;

/**
 * Open `path` read-only, fsync it (`fdatasync` with `dataOnly`) and close it. Through the callback
 * API: a checkpoint does this once per changed file and directory, and a FileHandle (promises API)
 * costs about a quarter more CPU per file for the same three system calls.
 */
export function syncPath(path: string, dataOnly: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    openFd(path, "r", (openErr, fd) => {
      if (openErr) {
        reject(openErr);
        return;
      }
      (dataOnly ? fdatasync : fsync)(fd, (syncErr) => {
        close(fd, (closeErr) => {
          const err = syncErr ?? closeErr;
          if (err) reject(err);
          else resolve();
        });
      });
    });
  });
}

/** fsync a directory, so a rename, creation or unlink in it survives a crash. */
export function fsyncDir(dir: string): Promise<void> {
  return syncPath(dir, false);
}

let tempSeq = 0;

/**
 * A temp file name next to `file`, unique to this process (pid and a counter: no random bytes to
 * draw per write), which the directory store treats as a leftover after a crash.
 */
export function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid.toString(36)}-${(++tempSeq).toString(36)}.tmp`);
}

/** A name tempNameFor gives (a write interrupted by a crash leaves one behind). */
export function isTempName(name: string): boolean {
  return name.charCodeAt(0) === 46 /* "." */ && name.endsWith(".tmp");
}

/** A name tempNameFor gives for `file`. */
export function isTempNameOf(file: string, name: string): boolean {
  return name.startsWith(`.${basename(file)}.`) && name.endsWith(".tmp");
}

/** Write `data` to `file` so that a crash leaves either the old or the new content, never a mix. */
export async function writeFileDurable(file: string, data: string, mode = FILE_MODE): Promise<void> {
  const tmp = tempNameFor(file);
  const fh = await open(tmp, "wx", mode);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dirname(file));
}
