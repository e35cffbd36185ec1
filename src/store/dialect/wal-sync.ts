// Durable SQLite commits without an fsync on the event loop. The connection runs in WAL mode
// with synchronous=NORMAL: a commit writes its frames to the -wal file but does not fsync it.
// Every write that must be durable then waits for `sync()`, an fdatasync of the -wal file on
// libuv's thread pool, so the main thread keeps serving while the disk flushes.
// Invariants:
// - Same guarantee as synchronous=FULL (which fsyncs the WAL at every commit): a write whose
//   promise has resolved survives power loss. Checkpoints are unchanged: SQLite syncs the WAL
//   before copying it into the database file and syncs that file after.
// - An fdatasync covers every frame written before it started, so concurrent callers share
//   one: a caller arriving while one runs waits for the next, never for one that may have
//   started before its commit. At most one runs at a time.
// - The -wal file is found by path and reopened when its inode changes (SQLite deletes it when
//   the last connection closes; another process may recreate it). No -wal file means no frame
//   waits: everything is already in the database file, synced by the checkpoint that emptied it.
// - Visibility precedes durability by the length of one fdatasync: another reader may see a
//   commit whose sync is still running. No caller is told "stored" before it is durable.
import { closeSync, fdatasync, fsyncSync, openSync, statSync } from 'node:fs'
import { dirname } from 'node:path'

export interface WalSync {
  /** Resolves once everything written to the WAL before the call is on disk. */
  sync(): Promise<void>
  /** Waits for a running sync and closes the file (the connection is closing). */
  close(): Promise<void>
  readonly stats: { syncs: number; requests: number }
}

export function createWalSync(dbPath: string): WalSync {
  const walPath = `${dbPath}-wal`
  let fd: number | null = null
  let ino = -1
  let running: Promise<void> | null = null
  let next: Promise<void> | null = null
  const stats = { syncs: 0, requests: 0 }

  function closeFd() {
    if (fd !== null) closeSync(fd)
    fd = null
    ino = -1
  }

  /** The open -wal file, (re)opened when missing or replaced; null when there is none. */
  function walFd(): number | null {
    const st = statSync(walPath, { throwIfNoEntry: false })
    if (!st) {
      closeFd()
      return null
    }
    if (fd !== null && st.ino === ino) return fd
    closeFd()
    fd = openSync(walPath, 'r+')
    ino = st.ino
    // The file's directory entry must be durable too, once per file.
    const dir = openSync(dirname(walPath), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
    return fd
  }

  function once(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const f = walFd()
      if (f === null) return resolve()
      stats.syncs++
      fdatasync(f, (err) => (err ? reject(err) : resolve()))
    })
  }

  function start(): Promise<void> {
    running = once().finally(() => {
      running = null
    })
    return running
  }

  // Any sync started after the previous one finished started after the waiters' writes.
  const afterRunning = () => {
    next = null
    return running ?? start()
  }

  function sync(): Promise<void> {
    stats.requests++
    if (!running) return start()
    // The running one may have started before the caller's write: wait for the next one.
    next ??= running.then(afterRunning, afterRunning)
    return next
  }

  return {
    sync,
    stats,
    async close() {
      await Promise.allSettled([running, next])
      closeFd()
    },
  }
}
