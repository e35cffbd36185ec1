// APPEND (RFC 9051 6.3.12, RFC 4315 APPENDUID, RFC 7889 APPENDLIMIT): a message a mail client
// uploads into a folder. The bytes were streamed to a staged blob while the literal arrived
// (stageUpload), so nothing here holds more than one parse of them; filing commits the blob
// with the message row in one transaction, or discards it.
// Invariants: the mailbox quota holds (OVERQUOTA, RFC 9208); the message is parsed once, as
// delivered mail is; the flags given are stored (\Recent never is).

import { readFile } from 'node:fs/promises'
import { parseMessage } from '../../mail/parse.ts'
import type { BlobSource, StagedBlob } from '../../store/blobs/blob-store.ts'
import { fileMessage } from '../delivery/file-message.ts'
import { ServiceError } from '../errors.ts'
import type { MessagesContext } from '../messages/context.ts'
import { folderById, type MailAccountRef } from './folder-view.ts'
import { ensureRoom } from './status.ts'

export type { StagedBlob }

/** Streams an upload into a staged blob of the account's org (fsynced, not yet visible). */
export function stageUpload(ctx: Pick<MessagesContext, 'blobs'>, a: MailAccountRef, source: BlobSource) {
  return ctx.blobs.stage(a.org_id, source)
}

export function discardUpload(ctx: Pick<MessagesContext, 'blobs'>, staged: StagedBlob) {
  return ctx.blobs.discard(staged)
}

/** How far back an APPEND to Sent looks for the same message filed by submission. */
const SENT_TWIN_MS = 3_600_000

export interface AppendInput {
  staged: StagedBlob
  flags: readonly string[]
  /** INTERNALDATE from the command, epoch ms; null = now. */
  internaldate: number | null
}

export async function appendMessage(
  ctx: MessagesContext,
  a: MailAccountRef,
  folderId: string,
  input: AppendInput,
): Promise<{ uidvalidity: number; uid: number }> {
  const { staged } = input
  try {
    const raw = staged.data ?? (await readFile(staged.tmp as string))
    const parsed = await parseMessage(raw)
    const now = ctx.clock.now()
    return await ctx.store.db.transaction().execute(async (tx) => {
      const folder = await folderById(tx, a, folderId)
      if (!folder) throw new ServiceError('not_found', 'FOLDER_NOT_FOUND', 'No such folder.')
      // A mail client that submitted a message also APPENDs it to Sent, where submission
      // already filed it: the copy with the same Message-ID from the last hour is the answer.
      if (folder.role === 'sent' && parsed.message_id) {
        const twin = await tx
          .selectFrom('folder_messages as fm')
          .innerJoin('messages as m', 'm.id', 'fm.message_id')
          .select('fm.uid')
          .where('fm.folder_id', '=', folder.id)
          .where('fm.org_id', '=', a.org_id)
          .where('m.mailbox_id', '=', a.mailbox_id)
          .where('m.message_id_header', '=', parsed.message_id)
          .where('m.created_at', '>', now - SENT_TWIN_MS)
          .executeTakeFirst()
        if (twin) {
          await ctx.blobs.discard(staged).catch(() => {})
          return { uidvalidity: folder.uidvalidity, uid: Number(twin.uid) }
        }
      }
      await ensureRoom(tx, a, staged.size)
      const blob = await ctx.blobs.commitStaged(tx, staged)
      const id = await fileMessage(
        tx,
        { blobs: ctx.blobs, bus: ctx.bus, dialect: ctx.store.dialect },
        {
          org_id: a.org_id,
          mailbox_id: a.mailbox_id,
          role: 'inbox',
          folder_id: folder.id,
          received_at: input.internaldate ?? now,
          blob,
          parsed,
          now,
          auth_summary: null,
          envelope: null,
          keywords: [...new Set(input.flags.filter((f) => f.toLowerCase() !== '\\recent'))],
          event: { type: 'email.appended', actor: a.mailbox_id, ip: null, payload: { folder: folder.name } },
        },
      )
      const m = await tx
        .selectFrom('folder_messages')
        .select('uid')
        .where('folder_id', '=', folder.id)
        .where('message_id', '=', id)
        .executeTakeFirstOrThrow()
      return { uidvalidity: folder.uidvalidity, uid: Number(m.uid) }
    })
  } catch (err) {
    await ctx.blobs.discard(staged).catch(() => {})
    throw err
  }
}
