// Folders of a mailbox (IMAP mailboxes, '/' between levels) and labels (the role-less folders,
// Gmail-style). Listing needs scope read, changes scope write, and the caller must reach the
// mailbox's mail (services/messages/access.ts). Rules for names, renames and deletion are in
// services/messages/folders.ts: role folders are never deleted; a deleted folder's messages
// that are nowhere else go to Trash, a deleted label's to Archive.

import { Type } from 'typebox'
import {
  createFolder,
  createLabel,
  deleteFolder,
  deleteLabel,
  listFolders,
  listLabels,
  updateFolder,
  updateLabel,
} from '../../services/messages/folders.ts'
import { principalOf } from '../plugins/auth.ts'
import { list } from '../schemas/accounts.ts'
import { errorResponses } from '../schemas/common.ts'
import {
  FolderCreateSchema,
  FolderPatchSchema,
  FolderSchema,
  folderBody,
  LabelCreateSchema,
  LabelPatchSchema,
  LabelSchema,
  labelBody,
  MailboxParam,
} from '../schemas/messages.ts'
import type { RoutePlugin } from '../types.ts'
import { mailContext } from './messages.ts'

const MailboxId = Type.String({ minLength: 1, maxLength: 330, description: 'Mailbox id or address' })
const FolderParams = Type.Object({ id: MailboxId, folder_id: Type.String({ minLength: 1, maxLength: 100 }) })
const LabelId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100, description: 'Label id' }) })

export const folderRoutes: RoutePlugin = async (app, deps) => {
  const ctx = mailContext(deps)

  app.get(
    '/v1/mailboxes/:id/folders',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['folders'],
        summary: 'Folders of a mailbox with their IMAP state and message counts',
        params: Type.Object({ id: MailboxId }),
        response: { 200: list(FolderSchema), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await listFolders(ctx, principalOf(req), req.params.id)).map(folderBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/mailboxes/:id/folders',
    {
      config: { auth: 'write' },
      schema: {
        tags: ['folders'],
        summary: 'Create a folder (no role); parents are not created implicitly',
        params: Type.Object({ id: MailboxId }),
        body: FolderCreateSchema,
        response: { 201: FolderSchema, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply.code(201).send(folderBody(await createFolder(ctx, principalOf(req), req.params.id, req.body))),
  )

  app.patch(
    '/v1/mailboxes/:id/folders/:folder_id',
    {
      config: { auth: 'write' },
      schema: {
        tags: ['folders'],
        summary: 'Rename (children follow) or (un)subscribe a folder; the inbox keeps its name',
        params: FolderParams,
        body: FolderPatchSchema,
        response: { 200: FolderSchema, ...errorResponses },
      },
    },
    async (req) =>
      folderBody(await updateFolder(ctx, principalOf(req), req.params.id, req.params.folder_id, req.body)),
  )

  app.delete(
    '/v1/mailboxes/:id/folders/:folder_id',
    {
      config: { auth: 'write' },
      schema: {
        tags: ['folders'],
        summary: 'Delete a folder without children; its messages that are nowhere else go to Trash',
        params: FolderParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteFolder(ctx, principalOf(req), req.params.id, req.params.folder_id)
      return reply.code(204).send(null)
    },
  )

  app.get(
    '/v1/labels',
    {
      config: { auth: 'read' },
      schema: {
        tags: ['labels'],
        summary: 'Labels (role-less folders) of a mailbox',
        querystring: Type.Object({ mailbox: MailboxParam }),
        response: { 200: list(LabelSchema), ...errorResponses },
      },
    },
    async (req) => ({
      data: (await listLabels(ctx, principalOf(req), req.query)).map(labelBody),
      next_cursor: null,
    }),
  )

  app.post(
    '/v1/labels',
    {
      config: { auth: 'write' },
      schema: {
        tags: ['labels'],
        summary: 'Create a label',
        querystring: Type.Object({ mailbox: MailboxParam }),
        body: LabelCreateSchema,
        response: { 201: LabelSchema, ...errorResponses },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(
          labelBody(
            await createLabel(ctx, principalOf(req), { mailbox: req.query.mailbox, name: req.body.name }),
          ),
        ),
  )

  app.patch(
    '/v1/labels/:id',
    {
      config: { auth: 'write' },
      schema: {
        tags: ['labels'],
        summary: 'Rename a label (labels under it follow)',
        params: LabelId,
        body: LabelPatchSchema,
        response: { 200: LabelSchema, ...errorResponses },
      },
    },
    async (req) => labelBody(await updateLabel(ctx, principalOf(req), req.params.id, req.body)),
  )

  app.delete(
    '/v1/labels/:id',
    {
      config: { auth: 'write' },
      schema: {
        tags: ['labels'],
        summary: 'Delete a label; messages it alone held go to Archive',
        params: LabelId,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (req, reply) => {
      await deleteLabel(ctx, principalOf(req), req.params.id)
      return reply.code(204).send(null)
    },
  )
}
