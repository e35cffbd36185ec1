// Spool files: where the SMTP server puts a large message's text while it arrives, so a
// connection holds at most the spool threshold in memory instead of up to max_message_bytes.
// A spool file is a private temp file in the blob store's temp folder (the blob collection
// job already removes temp files a crash left behind, once older than its grace period).
// Invariants:
// - Writes are queued in order and run one at a time, small pieces gathered into writes of
//   WRITE_BYTES; `pending` counts the octets not yet written, so the reader can stop reading
//   the socket while the disk is behind.
// - read() returns everything written as one Buffer of exactly that size (one copy of the
//   message in memory), or rejects with the first write error.
// - discard() removes the file and never rejects; it is safe to call more than once. No
//   fsync: a spool file is never the durable copy (the blob store's put is), so a crash may
//   lose it, and the client that got no 250 sends the message again.

import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { type FileHandle, mkdir, open, readdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'

export interface SpoolFile {
  write(chunk: Buffer): void
  readonly pending: number
  flushed(): Promise<void>
  read(): Promise<Buffer>
  discard(): Promise<void>
}

/** Spool files under `dir` (made on first use, 0700); returns the function that opens one. */
export function createSpool(dir: string): () => SpoolFile {
  let ready: Promise<unknown> | null = null
  return () => {
    ready ??= mkdir(dir, { recursive: true, mode: 0o700 })
    return openSpoolFile(join(dir, `spool-${randomBytes(12).toString('hex')}.tmp`), ready)
  }
}

/** Pieces are gathered until this many octets, then written in one call. */
const WRITE_BYTES = 64 * 1024

function openSpoolFile(path: string, dirReady: Promise<unknown>): SpoolFile {
  let failure: Error | null = null
  let pending = 0
  let gathered: Buffer[] = []
  let gatheredBytes = 0
  let size = 0
  let discarded = false
  const handle: Promise<FileHandle | null> = dirReady
    .then(() => open(path, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, 0o600))
    .catch((err: Error) => {
      failure ??= err
      return null
    })
  let tail: Promise<void> = handle.then(() => {})

  const flushGathered = () => {
    if (gatheredBytes === 0) return
    const chunk = gathered.length === 1 ? (gathered[0] as Buffer) : Buffer.concat(gathered, gatheredBytes)
    gathered = []
    gatheredBytes = 0
    queue(chunk)
  }
  const queue = (chunk: Buffer) => {
    tail = tail.then(async () => {
      const fh = await handle
      try {
        if (fh && !failure && !discarded) {
          let off = 0
          while (off < chunk.length) {
            const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, size + off)
            off += bytesWritten
          }
          size += chunk.length
        }
      } catch (err) {
        failure ??= err as Error
      } finally {
        pending -= chunk.length
      }
    })
  }

  return {
    write(chunk) {
      if (failure || discarded) return
      pending += chunk.length
      gathered.push(chunk)
      gatheredBytes += chunk.length
      if (gatheredBytes >= WRITE_BYTES) flushGathered()
    },
    get pending() {
      return pending
    },
    flushed() {
      flushGathered()
      return tail
    },
    async read() {
      flushGathered()
      await tail
      if (failure) throw failure
      if (discarded) throw new Error('spool file already discarded')
      const fh = (await handle) as FileHandle
      const out = Buffer.allocUnsafe(size)
      let off = 0
      while (off < size) {
        const { bytesRead } = await fh.read(out, off, size - off, off)
        if (bytesRead === 0) throw new Error(`spool file ${path} is shorter than written`)
        off += bytesRead
      }
      return out
    },
    async discard() {
      if (discarded) return
      discarded = true
      gathered = []
      gatheredBytes = 0
      await tail
      const fh = await handle
      await fh?.close().catch(() => {})
      if (fh) await unlink(path).catch(() => {})
    },
  }
}

/** Removes spool files under `dir` older than `olderThanMs` (left by a process that died). */
export async function sweepSpool(dir: string, olderThanMs: number, now: number): Promise<number> {
  let removed = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith('spool-')) continue
    const p = join(dir, name)
    const mtime = await stat(p).then(
      (st) => st.mtimeMs,
      () => Number.POSITIVE_INFINITY,
    )
    if (
      mtime < now - olderThanMs &&
      (await unlink(p).then(
        () => true,
        () => false,
      ))
    )
      removed++
  }
  return removed
}
