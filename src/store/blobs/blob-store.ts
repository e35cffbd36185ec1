// The content-addressed blob store: raw message bytes and attachments, addressed by the
// SHA-256 of their content within a namespace (an org id, or 'system'), so identical bytes are
// stored once per org and never shared across orgs.
//
// Invariants:
// - put() reports done only when the bytes are durable: filesystem backend = file fsynced,
//   renamed into place, directory fsynced; database backend = committed.
// - The filesystem backend keeps blobs of at most `inlineMaxBytes` in the database's
//   blob_data table instead of a file (most mail is a few KB): the transaction that records
//   the message commits its bytes too, so a small message costs no file create, fsync,
//   rename or directory fsync. get/stream/exists/collect look in blob_data first, then the
//   folder, so blobs written under an earlier threshold are found wherever they live.
// - put() touches the `blobs` row (refcount unchanged) BEFORE the bytes become visible, and the
//   collector deletes row and bytes in one transaction. So a put racing a collection either
//   waits for it and writes the bytes anew, or makes the collector skip the blob.
// - get() verifies the hash; a mismatch is BlobCorruptError, never silently returned bytes.
// - References are counted in `blobs.refcount` (addRef/release in the caller's transaction);
//   blobs at zero for longer than the grace period are deleted by collect().

import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Store } from '../db.ts'
import type { Database } from '../schema.ts'
import { type FileOps, nodeFileOps } from './file-ops.ts'

export type BlobSource = Uint8Array | string | Readable | AsyncIterable<Uint8Array>

export interface BlobRef {
  sha256: string
  size: number
}

export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError'
}
export class BlobCorruptError extends Error {
  override name = 'BlobCorruptError'
}

/** Bytes written and fsynced but not yet part of the store (see stage/commitStaged). */
export interface StagedBlob extends BlobRef {
  namespace: string
  /** Filesystem backend: the fsynced temp file. */
  tmp: string | null
  /** Database backend: the bytes. */
  data: Buffer | null
}

export interface BlobStore {
  readonly backend: 'fs' | 'database'
  put(namespace: string, source: BlobSource): Promise<BlobRef>
  /**
   * Two-step put for callers that batch their writes (delivery's group commit): stage writes
   * and fsyncs the bytes; commitStaged, inside the caller's transaction, touches the row and
   * then makes the bytes visible (rename and directory fsync), so the one commit that records
   * the message also covers its blob. Idempotent, so a retried transaction may run it again.
   * `refs`: references added in the same statement (what `refs` addRef calls would do).
   */
  stage(namespace: string, source: BlobSource): Promise<StagedBlob>
  commitStaged(tx: Executor, staged: StagedBlob, refs?: number): Promise<BlobRef>
  /** Drops a staged blob that will not be committed. */
  discard(staged: StagedBlob): Promise<void>
  get(namespace: string, sha256: string): Promise<Buffer>
  /**
   * The bytes in pieces, for sending a large blob without holding it (IMAP FETCH BODY[]).
   * The hash is checked as the pieces pass: a mismatch throws after the last one (what was
   * sent cannot be taken back; the caller logs it and ends the response).
   */
  stream(namespace: string, sha256: string): AsyncIterable<Buffer>
  exists(namespace: string, sha256: string): Promise<boolean>
  /** +1 reference, inside the caller's transaction (the row exists since put). */
  addRef(db: Executor, namespace: string, sha256: string): Promise<void>
  /** -1 reference; the blob becomes collectable after the grace period at zero. */
  release(db: Executor, namespace: string, sha256: string): Promise<void>
  /** Deletes blobs unreferenced for longer than graceMs; returns how many. */
  collect(graceMs: number): Promise<number>
  /** Proves the backend is usable (health). */
  check(): Promise<void>
}

type Executor = Kysely<Database> | Transaction<Database>

export interface BlobStoreOptions {
  store: Store
  backend: 'fs' | 'database'
  /** Root folder of the filesystem backend. */
  dir: string
  /** Filesystem backend: blobs up to this many bytes live in blob_data (0: every blob is a file). */
  inlineMaxBytes?: number
  now: () => number
  fileOps?: FileOps
}

const NAMESPACE = /^[a-z0-9_]{1,64}$/
const SHA256 = /^[0-9a-f]{64}$/

function checkAddress(namespace: string, sha256?: string) {
  if (!NAMESPACE.test(namespace)) throw new Error(`invalid blob namespace ${JSON.stringify(namespace)}`)
  if (sha256 !== undefined && !SHA256.test(sha256))
    throw new Error(`invalid blob address ${JSON.stringify(sha256)}`)
}

async function* chunksOf(source: BlobSource): AsyncIterable<Uint8Array> {
  if (typeof source === 'string') yield Buffer.from(source)
  else if (source instanceof Uint8Array) yield source
  else
    for await (const chunk of source as AsyncIterable<Uint8Array | string>)
      yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk
}

const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)

function verify(namespace: string, sha256: string, data: Buffer): Buffer {
  const actual = createHash('sha256').update(data).digest('hex')
  if (actual !== sha256)
    throw new BlobCorruptError(`blob ${namespace}/${sha256} is corrupt (content hashes to ${actual})`)
  return data
}

export function createBlobStore(opts: BlobStoreOptions): BlobStore {
  const { store, now } = opts
  const db = store.db
  const ops = opts.fileOps ?? nodeFileOps

  /** Records the blob (refcount raised by `refs`) and refreshes updated_at, so the collector keeps it. */
  async function touch(ex: Executor, namespace: string, sha256: string, size: number, refs = 0) {
    const t = now()
    await ex
      .insertInto('blobs')
      .values({ namespace, sha256, size, refcount: refs, created_at: t, updated_at: t })
      .onConflict((oc) =>
        oc
          .columns(['namespace', 'sha256'])
          .doUpdateSet(refs ? { updated_at: t, refcount: sql`blobs.refcount + ${refs}` } : { updated_at: t }),
      )
      .execute()
  }

  const common = {
    async addRef(ex: Executor, namespace: string, sha256: string) {
      const r = await ex
        .updateTable('blobs')
        .set({ refcount: sql`refcount + 1`, updated_at: now() })
        .where('namespace', '=', namespace)
        .where('sha256', '=', sha256)
        .executeTakeFirst()
      if (Number(r.numUpdatedRows) !== 1)
        throw new BlobNotFoundError(`blob ${namespace}/${sha256} was never stored`)
    },
    async release(ex: Executor, namespace: string, sha256: string) {
      await ex
        .updateTable('blobs')
        .set({ refcount: sql`refcount - 1`, updated_at: now() })
        .where('namespace', '=', namespace)
        .where('sha256', '=', sha256)
        .execute()
    },
  }

  /** Bytes kept in the database (the database backend, and the fs backend's small blobs). */
  const rows = {
    async insert(ex: Executor, s: StagedBlob) {
      await ex
        .insertInto('blob_data')
        .values({ namespace: s.namespace, sha256: s.sha256, data: s.data as Buffer, created_at: now() })
        .onConflict((oc) => oc.columns(['namespace', 'sha256']).doNothing())
        .execute()
    },
    async read(namespace: string, sha256: string): Promise<Buffer | null> {
      const row = await db
        .selectFrom('blob_data')
        .select('data')
        .where('namespace', '=', namespace)
        .where('sha256', '=', sha256)
        .executeTakeFirst()
      return row ? verify(namespace, sha256, Buffer.from(row.data)) : null
    },
    async exists(namespace: string, sha256: string): Promise<boolean> {
      const row = await db
        .selectFrom('blob_data')
        .select('sha256')
        .where('namespace', '=', namespace)
        .where('sha256', '=', sha256)
        .executeTakeFirst()
      return row !== undefined
    },
    async delete(tx: Executor, namespace: string, sha256: string) {
      await tx
        .deleteFrom('blob_data')
        .where('namespace', '=', namespace)
        .where('sha256', '=', sha256)
        .execute()
    },
  }

  /** The whole source when it has at most `max` bytes (rest null); else what was read and the rest. */
  async function readUpTo(
    source: BlobSource,
    max: number,
  ): Promise<{ data: Buffer; rest: AsyncIterator<Uint8Array> | null }> {
    const it = chunksOf(source)[Symbol.asyncIterator]()
    const parts: Uint8Array[] = []
    let size = 0
    // One piece (a Buffer source) is viewed, not copied: a large message is not duplicated.
    const joined = () => (parts.length === 1 ? asBuffer(parts[0] as Uint8Array) : Buffer.concat(parts, size))
    for (;;) {
      const r = await it.next()
      if (r.done) return { data: joined(), rest: null }
      parts.push(r.value)
      size += r.value.length
      if (size > max) return { data: joined(), rest: it }
    }
  }

  async function collectWith(
    graceMs: number,
    deleteBytes: (tx: Transaction<Database>, ns: string, sha: string) => Promise<void>,
  ) {
    const cutoff = now() - graceMs
    const candidates = await db
      .selectFrom('blobs')
      .select(['namespace', 'sha256'])
      .where('refcount', '<=', 0)
      .where('updated_at', '<', cutoff)
      .limit(1000)
      .execute()
    let deleted = 0
    for (const c of candidates) {
      await db.transaction().execute(async (tx) => {
        const r = await tx
          .deleteFrom('blobs')
          .where('namespace', '=', c.namespace)
          .where('sha256', '=', c.sha256)
          .where('refcount', '<=', 0)
          .where('updated_at', '<', cutoff)
          .executeTakeFirst()
        if (Number(r.numDeletedRows) === 1) {
          await deleteBytes(tx, c.namespace, c.sha256)
          deleted++
        }
      })
    }
    return deleted
  }

  if (opts.backend === 'database') {
    return {
      backend: 'database',
      ...common,
      async stage(namespace, source) {
        checkAddress(namespace)
        const parts: Uint8Array[] = []
        const hash = createHash('sha256')
        for await (const chunk of chunksOf(source)) {
          hash.update(chunk)
          parts.push(chunk)
        }
        const data = Buffer.concat(parts)
        return { namespace, sha256: hash.digest('hex'), size: data.length, tmp: null, data }
      },
      async commitStaged(tx, s, refs = 0) {
        await touch(tx, s.namespace, s.sha256, s.size, refs)
        await rows.insert(tx, s)
        return { sha256: s.sha256, size: s.size }
      },
      async discard() {},
      async put(namespace, source) {
        const staged = await this.stage(namespace, source)
        return db.transaction().execute((tx) => this.commitStaged(tx, staged))
      },
      async get(namespace, sha256) {
        checkAddress(namespace, sha256)
        const data = await rows.read(namespace, sha256)
        if (!data) throw new BlobNotFoundError(`blob ${namespace}/${sha256} not found`)
        return data
      },
      async *stream(namespace, sha256) {
        yield await this.get(namespace, sha256)
      },
      async exists(namespace, sha256) {
        checkAddress(namespace, sha256)
        return rows.exists(namespace, sha256)
      },
      collect: (graceMs) => collectWith(graceMs, rows.delete),
      async check() {
        await db.selectFrom('blob_data').select('sha256').limit(1).execute()
      },
    }
  }

  const root = opts.dir
  const inlineMax = opts.inlineMaxBytes ?? 0
  const tmpDir = join(root, 'tmp')
  let tmpReady = false
  const ignoreMissing = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err
  }
  const pathOf = (ns: string, sha: string) => join(root, ns, sha.slice(0, 2), sha.slice(2, 4), sha)

  /** mkdir -p, then fsync the parent of every directory it created, so the new entries persist. */
  async function durableMkdirp(dir: string) {
    const first = await ops.mkdirp(dir)
    if (first === undefined) return
    const created: string[] = []
    for (let d = dir; d.length >= first.length; d = join(d, '..')) created.push(d)
    for (const d of created) await ops.syncDir(join(d, '..'))
  }

  return {
    backend: 'fs',
    ...common,
    async stage(namespace, source) {
      checkAddress(namespace)
      let rest: BlobSource = source
      let head: Buffer | null = null
      if (inlineMax > 0) {
        const read = await readUpTo(source, inlineMax)
        if (read.rest === null) {
          const sha256 = createHash('sha256').update(read.data).digest('hex')
          return { namespace, sha256, size: read.data.length, tmp: null, data: read.data }
        }
        // Too big to keep inline: the file gets what was read, then the remainder.
        head = read.data
        const it = read.rest
        rest = { [Symbol.asyncIterator]: () => it }
      }
      if (!tmpReady) {
        await durableMkdirp(tmpDir)
        tmpReady = true
      }
      const tmp = join(tmpDir, `${randomBytes(12).toString('hex')}.tmp`)
      const hash = createHash('sha256')
      let size = 0
      const file = await ops.create(tmp)
      try {
        try {
          if (head) {
            hash.update(head)
            size += head.length
            await file.write(head)
          }
          for await (const chunk of chunksOf(rest)) {
            hash.update(chunk)
            size += chunk.length
            await file.write(chunk)
          }
          await file.sync()
        } finally {
          await file.close()
        }
        return { namespace, sha256: hash.digest('hex'), size, tmp, data: null }
      } catch (err) {
        await ops.unlink(tmp).catch(() => {})
        throw err
      }
    },
    async commitStaged(tx, s, refs = 0) {
      // The row first (see the module invariants), then the bytes become visible.
      await touch(tx, s.namespace, s.sha256, s.size, refs)
      if (s.tmp === null) {
        await rows.insert(tx, s)
        return { sha256: s.sha256, size: s.size }
      }
      const final = pathOf(s.namespace, s.sha256)
      const dir = join(final, '..')
      // Renaming over an existing blob is safe (same address, same bytes) and saves a lookup;
      // the directory is made only when the rename finds none. A retried transaction finds the
      // temp file gone and the blob in place.
      try {
        await ops.rename(s.tmp as string, final)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        if (await ops.exists(final)) return { sha256: s.sha256, size: s.size }
        await durableMkdirp(dir)
        await ops.rename(s.tmp as string, final)
      }
      await ops.syncDir(dir)
      return { sha256: s.sha256, size: s.size }
    },
    async discard(s) {
      if (s.tmp) await ops.unlink(s.tmp).catch(ignoreMissing)
    },
    async put(namespace, source) {
      const staged = await this.stage(namespace, source)
      try {
        return await db.transaction().execute((tx) => this.commitStaged(tx, staged))
      } catch (err) {
        await this.discard(staged)
        throw err
      }
    },
    async get(namespace, sha256) {
      checkAddress(namespace, sha256)
      const inline = await rows.read(namespace, sha256)
      if (inline) return inline
      let data: Buffer
      try {
        data = await ops.readFile(pathOf(namespace, sha256))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new BlobNotFoundError(`blob ${namespace}/${sha256} not found`)
        throw err
      }
      return verify(namespace, sha256, data)
    },
    async *stream(namespace, sha256) {
      checkAddress(namespace, sha256)
      const inline = await rows.read(namespace, sha256)
      if (inline) {
        yield inline
        return
      }
      const hash = createHash('sha256')
      try {
        for await (const piece of createReadStream(pathOf(namespace, sha256), { highWaterMark: 64 * 1024 })) {
          hash.update(piece as Buffer)
          yield piece as Buffer
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new BlobNotFoundError(`blob ${namespace}/${sha256} not found`)
        throw err
      }
      if (hash.digest('hex') !== sha256) throw new BlobCorruptError(`blob ${namespace}/${sha256} is corrupt`)
    },
    async exists(namespace, sha256) {
      checkAddress(namespace, sha256)
      return (await rows.exists(namespace, sha256)) || ops.exists(pathOf(namespace, sha256))
    },
    async collect(graceMs) {
      const n = await collectWith(graceMs, async (tx, ns, sha) => {
        await rows.delete(tx, ns, sha)
        await ops.unlink(pathOf(ns, sha)).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err
        })
      })
      // Temp files left by a crash mid-put are garbage once older than the grace period.
      const cutoff = now() - graceMs
      for (const name of await ops.readdir(tmpDir).catch(() => [] as string[])) {
        const p = join(tmpDir, name)
        if ((await ops.mtimeMs(p).catch(() => Number.POSITIVE_INFINITY)) < cutoff)
          await ops.unlink(p).catch(() => {})
      }
      return n
    },
    async check() {
      await durableMkdirp(tmpDir)
      if (!(await ops.exists(tmpDir))) throw new Error(`blob folder ${root} is not usable`)
    },
  }
}
