// The file-system calls the filesystem blob store makes, behind one small interface so a test
// can record their order (a write is reported done only after file fsync, rename, dir fsync)
// or inject failures. The default implementation is node:fs/promises.

import { constants } from 'node:fs'
import * as fsp from 'node:fs/promises'

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
  readFile: (path) => fsp.readFile(path),
  readdir: (path) => fsp.readdir(path),
  mtimeMs: async (path) => (await fsp.stat(path)).mtimeMs,
}
