// FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2): every data item, in batches of messages (flags
// and sizes read per batch; the raw bytes read per message from the blob store only when an
// item needs them, and released before the next message). BODY[...] without .PEEK, RFC822
// and RFC822.TEXT set \Seen in a read-write folder, and the new FLAGS are sent with the data.
// Output is flushed per message, so a slow reader holds one message in memory at most, plus
// the small messages read ahead of it (at most 1 MB, so their file reads overlap).

import { type MimePart, parseMimeTree } from '../../mail/mime-tree.ts'
import { storeFlags } from '../../services/mailstore/flags.ts'
import {
  changesSince,
  flagsOf,
  type StoredMessage,
  storedMessages,
} from '../../services/mailstore/folder-view.ts'
import { type ImapCommand, ImapNo, SELECTED } from '../command.ts'
import { binaryContent, UnknownCteError } from '../fetch/binary.ts'
import { bodyStructureAtom } from '../fetch/bodystructure.ts'
import { envelopeOf } from '../fetch/envelope.ts'
import { partialOf, sectionBytes } from '../fetch/section.ts'
import { imapFlags } from '../flags.ts'
import { encode, flagList, imapDateTime } from '../protocol/encoder.ts'
import { itemsNeedBody, itemsSetSeen, parseFetchItems, sectionLabel } from '../protocol/fetch-items.ts'
import { ImapSyntaxError, inRanges, sequenceRanges } from '../protocol/parser.ts'
import type { FetchItem } from '../protocol/types.ts'
import { atom, type ImapValue, literal } from '../protocol/values.ts'
import { resolveSet, uidSetText } from '../sequence.ts'
import type { ImapSession } from '../session.ts'

const BATCH = 100

/** Stand-in when no item needs the stored row (UID, FLAGS, MODSEQ only). */
const NO_STORED: StoredMessage = { id: '', blob_sha256: '', size: 0, received_at: 0, sent_at: null }

export const fetch: ImapCommand = {
  states: SELECTED,
  uidForm: true,
  expungeOk: (call) => call.uid,
  async run(s, call) {
    const r = call.args
    const sel = s.selected
    if (!sel) throw new ImapNo('No folder selected.')
    r.space()
    const set = r.sequenceSet()
    r.space()
    const items = parseFetchItems(r)
    let changedSince: number | null = null
    let vanished = false
    if (r.trySpace()) {
      // FETCH modifiers (RFC 7162 3.1.4.1, 3.2.6): CHANGEDSINCE n and, under UID FETCH, VANISHED.
      r.openList()
      do {
        const m = r.keyword()
        if (m === 'CHANGEDSINCE') {
          r.space()
          changedSince = r.nzNumber64()
        } else if (m === 'VANISHED') vanished = true
        else throw new ImapSyntaxError(`Unknown FETCH modifier ${m}.`)
      } while (r.trySpace())
      r.closeList()
    }
    r.end()
    if (vanished && (!call.uid || !s.qresync || changedSince === null))
      throw new ImapSyntaxError('VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC.')
    if (changedSince !== null || items.some((i) => i.kind === 'MODSEQ')) s.condstore = true
    if (changedSince !== null && !items.some((i) => i.kind === 'MODSEQ')) items.push({ kind: 'MODSEQ' })
    let seqs = resolveSet(sel, set, call.uid)
    if (vanished && changedSince !== null) {
      const gone = await changesSince(s.ctx.mail.store.db, s.ref, sel.folder.id, changedSince)
      const ranges = sequenceRanges(set, Math.max(sel.maxUid, sel.folder.uidnext))
      const uids = (gone?.vanished ?? []).filter((u) => inRanges(ranges, u))
      if (uids.length) s.write(Buffer.from(`* VANISHED (EARLIER) ${uidSetText(uids)}\r\n`))
    }
    if (changedSince !== null) {
      const since = changedSince
      seqs = seqs.filter((n) => sel.modseqAt(n) > since)
    }
    if (call.uid && !items.some((i) => i.kind === 'UID')) items.unshift({ kind: 'UID' })
    // A whole message asked for alone (BODY[], RFC822, BINARY[]) is streamed from the blob
    // store, not read into memory: the other items first, the literal last.
    const bodyItems = items.filter((i) => itemsNeedBody([i]))
    const streamed =
      bodyItems.length === 1 && isWhole(bodyItems[0] as FetchItem) ? (bodyItems[0] as FetchItem) : null
    const needBody = itemsNeedBody(items) && !streamed
    const rest = streamed ? items.filter((i) => i !== streamed) : items
    const setSeen = !sel.readOnly && itemsSetSeen(items)
    const wantFlags = items.some((i) => i.kind === 'FLAGS')
    // Only what the items need is read: FETCH 1:* (UID FLAGS), the commonest, reads flags only.
    const needStored =
      needBody ||
      streamed !== null ||
      items.some((i) => i.kind === 'INTERNALDATE' || i.kind === 'RFC822.SIZE')
    for (let i = 0; i < seqs.length; i += BATCH) {
      const batch = seqs.slice(i, i + BATCH).filter((n) => n <= sel.exists)
      const ids = batch.map((n) => sel.messageIdAt(n))
      const db = s.ctx.mail.store.db
      let flags = wantFlags || setSeen ? await flagsOf(db, s.ref.org_id, ids) : new Map<string, string[]>()
      if (setSeen) {
        const unseen = batch.filter((n) => !(flags.get(sel.messageIdAt(n)) ?? []).includes('\\Seen'))
        if (unseen.length) {
          await storeFlags(
            s.ctx.mail,
            s.ref,
            sel.folder.id,
            unseen.map((n) => sel.uidAt(n)),
            'add',
            ['\\Seen'],
            null,
          )
          await s.sync(false, new Set(unseen.map((n) => sel.uidAt(n))))
          flags = await flagsOf(db, s.ref.org_id, ids)
        }
      }
      if (wantFlags || setSeen) for (const f of flags.values()) s.announce(f)
      const stored = needStored ? await storedMessages(db, s.ref.org_id, ids) : null
      const ahead =
        needBody && stored
          ? readAhead(
              ids.map((id) => stored.get(id)),
              (m) => readRaw(s, m),
            )
          : null
      for (const [k, n] of batch.entries()) {
        const id = sel.messageIdAt(n)
        const m = stored ? stored.get(id) : NO_STORED
        if (!m) continue // deleted meanwhile: nothing to say until the EXPUNGE is reported
        const f = imapFlags(flags.get(id) ?? [], s.recent(sel, sel.uidAt(n)))
        const raw = ahead ? await ahead(k) : null
        const out = fetchValues(rest, {
          uid: sel.uidAt(n),
          flags: f,
          modseq: sel.modseqAt(n),
          stored: m,
          raw,
          setSeen: setSeen && !wantFlags,
          condstore: s.condstore,
        })
        if (streamed) await streamWhole(s, n, out, streamed, m)
        else s.untagged(n, atom('FETCH'), out)
        await s.flush()
      }
    }
    return undefined
  },
}

function isWhole(i: FetchItem): boolean {
  if (i.kind === 'RFC822') return true
  if (i.kind === 'SECTION') return i.section.part.length === 0 && !i.section.text && !i.partial
  if (i.kind === 'BINARY') return i.part.length === 0 && !i.size && !i.partial
  return false
}

/** Whole messages up to this size are read at once rather than streamed. */
const SMALL_WHOLE = 128 * 1024

/** `* n FETCH (<items> BODY[] {size}` + the blob's pieces as they are read + `)`. */
async function streamWhole(s: ImapSession, n: number, out: ImapValue[], item: FetchItem, m: StoredMessage) {
  const label = item.kind === 'SECTION' ? sectionLabel(item) : item.kind === 'BINARY' ? 'BINARY[]' : 'RFC822'
  const head = out.map((v) => encode(v).toString('latin1')).join(' ')
  const marker = item.kind === 'BINARY' ? '~' : ''
  s.write(Buffer.from(`* ${n} FETCH (${head}${head ? ' ' : ''}${label} ${marker}{${m.size}}\r\n`, 'latin1'))
  let sent = 0
  let unflushed = 0
  try {
    // A small message is read in one go (the blob store reads it synchronously from the page
    // cache); a stream costs several thread-pool round trips per message.
    const pieces =
      m.size <= SMALL_WHOLE
        ? [await s.ctx.mail.blobs.get(s.ref.org_id, m.blob_sha256)]
        : s.ctx.mail.blobs.stream(s.ref.org_id, m.blob_sha256)
    for await (const piece of pieces) {
      const take = piece.subarray(0, Math.max(0, m.size - sent))
      s.write(take)
      sent += take.length
      unflushed += take.length
      if (unflushed >= 256 * 1024) {
        await s.flush()
        unflushed = 0
      }
    }
  } catch (err) {
    s.log.error({ err, message: m.id }, 'message bytes unreadable while streaming a FETCH')
  }
  if (sent !== m.size) {
    // The literal cannot be completed truthfully: end the connection rather than send a lie.
    s.log.error({ message: m.id, sent, size: m.size }, 'FETCH stream ended short; closing the connection')
    s.drop('Server error reading a message.')
    return
  }
  s.write(Buffer.from(')\r\n'))
}

/** Messages read ahead of the one being answered, and the bytes they may hold beyond it. */
const AHEAD_COUNT = 8
const AHEAD_BYTES = 1024 * 1024

/**
 * Reads a batch's messages a few ahead of the one being answered, so their file reads overlap
 * (each is several thread-pool hops) instead of running one after another; small messages
 * only: what is read ahead stays within AHEAD_BYTES. Answers in list order.
 */
function readAhead(
  list: readonly (StoredMessage | undefined)[],
  read: (m: StoredMessage) => Promise<Buffer>,
): (i: number) => Promise<Buffer> {
  const started = new Map<number, Promise<Buffer>>()
  let next = 0
  let held = 0
  const start = (j: number) => {
    const m = list[j]
    if (!m) return
    const p = read(m)
    p.catch(() => {}) // observed when its turn comes; never an unhandled rejection meanwhile
    started.set(j, p)
    held += m.size
  }
  return async (i: number) => {
    if (next <= i) {
      start(i)
      next = i + 1
    }
    while (next < list.length && next <= i + AHEAD_COUNT && held + (list[next]?.size ?? 0) <= AHEAD_BYTES) {
      start(next)
      next++
    }
    const p = started.get(i) ?? read(list[i] as StoredMessage)
    started.delete(i)
    try {
      return await p
    } finally {
      held -= list[i]?.size ?? 0
    }
  }
}

async function readRaw(s: ImapSession, m: StoredMessage): Promise<Buffer> {
  try {
    return await s.ctx.mail.blobs.get(s.ref.org_id, m.blob_sha256)
  } catch (err) {
    s.log.error({ err, message: m.id }, 'message bytes missing from the blob store')
    throw new ImapNo('The message could not be read; the server logged it.', 'SERVERBUG')
  }
}

interface One {
  uid: number
  flags: string[]
  stored: StoredMessage
  raw: Buffer | null
  modseq: number
  /** \Seen was set by this FETCH and FLAGS was not asked for: send FLAGS anyway. */
  setSeen: boolean
  /** CONDSTORE is on: FLAGS sent because of \Seen come with MODSEQ. */
  condstore: boolean
}

function fetchValues(items: FetchItem[], m: One): ImapValue[] {
  const out: ImapValue[] = []
  let tree: MimePart | null = null
  const root = (): MimePart => {
    tree ??= parseMimeTree(m.raw as Buffer)
    return tree
  }
  const raw = () => m.raw as Buffer
  for (const item of items) {
    switch (item.kind) {
      case 'UID':
        out.push(atom('UID'), m.uid)
        break
      case 'FLAGS':
        out.push(atom('FLAGS'), flagList(m.flags))
        break
      case 'MODSEQ':
        out.push(atom('MODSEQ'), [m.modseq])
        break
      case 'INTERNALDATE':
        out.push(atom('INTERNALDATE'), imapDateTime(new Date(m.stored.received_at)))
        break
      case 'RFC822.SIZE':
        out.push(atom('RFC822.SIZE'), m.raw ? m.raw.length : m.stored.size)
        break
      case 'ENVELOPE':
        out.push(atom('ENVELOPE'), envelopeOf(raw(), root()))
        break
      case 'BODYSTRUCTURE':
        out.push(atom('BODYSTRUCTURE'), bodyStructureAtom(raw(), root(), true))
        break
      case 'BODY':
        out.push(atom('BODY'), bodyStructureAtom(raw(), root(), false))
        break
      case 'RFC822':
        out.push(atom('RFC822'), literal(raw()))
        break
      case 'RFC822.HEADER':
        out.push(atom('RFC822.HEADER'), literal(sectionBytes(raw(), root(), { part: [], text: 'HEADER' })))
        break
      case 'RFC822.TEXT':
        out.push(atom('RFC822.TEXT'), literal(sectionBytes(raw(), root(), { part: [], text: 'TEXT' })))
        break
      case 'BINARY': {
        let bytes: Buffer
        try {
          bytes = binaryContent(raw(), root(), item.part)
        } catch (err) {
          if (err instanceof UnknownCteError) throw new ImapNo(err.message, 'UNKNOWN-CTE')
          throw err
        }
        const spec = item.part.join('.')
        if (item.size) {
          out.push(atom(`BINARY.SIZE[${spec}]`), bytes.length)
          break
        }
        if (item.partial) bytes = partialOf(bytes, item.partial.start, item.partial.length)
        // literal8 only when the bytes hold a NUL (RFC 3516 4.3); an ordinary literal otherwise.
        out.push(
          atom(`BINARY[${spec}]${item.partial ? `<${item.partial.start}>` : ''}`),
          literal(bytes, bytes.includes(0)),
        )
        break
      }
      case 'SECTION': {
        let bytes = sectionBytes(raw(), root(), item.section)
        if (item.partial) bytes = partialOf(bytes, item.partial.start, item.partial.length)
        out.push(atom(sectionLabel(item)), literal(bytes))
        break
      }
    }
  }
  if (m.setSeen) {
    out.push(atom('FLAGS'), flagList(m.flags))
    if (m.condstore && !items.some((i) => i.kind === 'MODSEQ')) out.push(atom('MODSEQ'), [m.modseq])
  }
  return out
}
