// The file-system calls the filesystem blob store makes, behind one small interface so a test
// can record their order (a write is reported done only after file fsync, rename, dir fsync)
// or inject failures. The default implementation is node:fs/promises.

import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import * as fsp from 'node:fs/promises'

/**
 * Files up to this size (most mail) are read with synchronous calls: a few microseconds from
 * the page cache, where fs/promises' readFile takes four thread-pool round trips (about 40 us
 * idle and milliseconds on a loaded machine; IMAP FETCH of headers waited mostly on those).
 */
const READ_SYNC_MAX = 128 * 1024

export interface WritableFile {
  write(chunk: Uint8Array): Promise<void>
  sync(): Promise<void>
  close(): Promise<void>
}

export interface FileOps {
  /** Creates a new file for writing (fails if it exists). */
  create(path: string): Promise<WritableFile>
  rename(from: string, to: string): Promise<void>
  /** mkdir -p; returns the first directory it created, or undefined when all existed. */
  mkdirp(path: string): Promise<string | undefined>
  /** fsync of a directory, making renames and new entries in it durable. */
  syncDir(path: string): Promise<void>
  unlink(path: string): Promise<void>
  exists(path: string): Promise<boolean>
  readFile(path: string): Promise<Buffer>
  readdir(path: string): Promise<string[]>
  mtimeMs(path: string): Promise<number>
}

export const nodeFileOps: FileOps = {
  async create(path) {
    const fh = await fsp.open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600)
    return {
      async write(chunk) {
        let off = 0
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off)
          off += bytesWritten
        }
      },
      sync: () => fh.sync(),
      close: () => fh.close(),
    }
  },
  rename: (from, to) => fsp.rename(from, to),
  mkdirp: (path) => fsp.mkdir(path, { recursive: true, mode: 0o700 }),
  async syncDir(path) {
    const fh = await fsp.open(path, constants.O_RDONLY | constants.O_DIRECTORY)
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
  },
  unlink: (path) => fsp.unlink(path),
  exists: (path) =>
    fsp.access(path).then(
      () => true,
      () => false,
    ),
  async readFile(path) {
    const fd = openSync(path, 'r')
    let small: Buffer | null = null
    try {
      const size = fstatSync(fd).size
      if (size <= READ_SYNC_MAX) {
        small = Buffer.allocUnsafe(size)
        let off = 0
        while (off < size) {
          const n = readSync(fd, small, off, size - off, off)
          if (n === 0) break
          off += n
        }
        if (off < size) small = small.subarray(0, off)
      }
    } finally {
      closeSync(fd)
    }
    return small ?? fsp.readFile(path)
  },
  readdir: (path) => fsp.readdir(path),
  mtimeMs: async (path) => (await fsp.stat(path)).mtimeMs,
}
