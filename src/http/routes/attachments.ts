// Uploaded attachments: POST /v1/attachments takes one file as multipart/form-data and streams
// it into the blob store (services/attachments); GET gives its metadata, GET .../content its
// bytes as a download (Content-Disposition: attachment, nosniff, a sandboxing CSP, the stored
// type). Scope send: uploads exist to be sent (POST /v1/emails, drafts).
// The multipart parser is registered in this file's scope only, so no other route parses
// multipart bodies. A request whose Content-Length already says it is too large is refused
// before its body is read; otherwise the parser cuts the file off one byte past the limit and
// the service refuses it, keeping nothing.

import multipart from '@fastify/multipart'
import { Type } from 'typebox'
import {
  type AttachmentsContext,
  type AttachmentView,
  attachmentContent,
  attachmentSettings,
  commitAttachment,
  discardStagedAttachment,
  getAttachment,
  type StagedAttachment,
  stageAttachment,
  tooLarge,
} from '../../services/attachments/attachments.ts'
import { ServiceError } from '../../services/errors.ts'
import { toIso } from '../../time/clock.ts'
import { principalOf } from '../plugins/auth.ts'
import { errorResponses } from '../schemas/common.ts'
import type { AppDeps, RoutePlugin } from '../types.ts'
import { sendDownload } from './messages.ts'

/** Room for the multipart framing and a few small fields around the file. */
const MULTIPART_OVERHEAD = 64 * 1024

export const attachmentsContext = (deps: AppDeps): AttachmentsContext => ({
  store: deps.services.domains.store,
  clock: deps.services.domains.clock,
  blobs: deps.services.blobs,
  attachments: attachmentSettings(deps.config.attachments),
})

const Time = Type.String({ format: 'date-time' })
export const AttachmentSchema = Type.Object({
  id: Type.String({ description: 'att_...' }),
  filename: Type.String(),
  content_type: Type.String(),
  size: Type.Integer({ description: 'Bytes' }),
  sha256: Type.String({ description: 'Hex SHA-256 of the bytes' }),
  mailbox_id: Type.Union([Type.String(), Type.Null()], {
    description: 'The mailbox whose mailbox-scoped key uploaded it',
  }),
  created_at: Time,
  expires_at: Type.String({
    format: 'date-time',
    description: 'Deleted after this unless a draft uses it (attachments.unused_hours)',
  }),
  draft_ids: Type.Array(Type.String(), {
    description: 'Drafts that carry it; it does not expire while any do',
  }),
})

export const attachmentBody = (a: AttachmentView) => ({
  ...a,
  created_at: toIso(a.created_at),
  expires_at: toIso(a.expires_at),
})

const IdParam = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100, description: 'Attachment id (att_...)' }),
})

const refused = (code: string, message: string) => new ServiceError('invalid', code, message)

/** The multipart parser's own errors, in this API's words. */
function multipartError(err: unknown, max: number): unknown {
  const code = (err as { code?: string }).code
  switch (code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return tooLarge(max)
    case 'FST_FILES_LIMIT':
      return refused('ONE_FILE_PER_UPLOAD', 'Send one file per request (one part with a filename).')
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return refused('TOO_MANY_PARTS', 'Send one file part and at most a few small fields.')
    case 'FST_PROTO_VIOLATION':
      return refused('INVALID_MULTIPART', 'A part has a field name that is not allowed.')
    case 'FST_MP_PREMATURE_CLOSE':
      return refused('INVALID_MULTIPART', 'The request ended before the multipart body was complete.')
  }
  if (
    err instanceof Error &&
    !(err instanceof ServiceError) &&
    /multipart|boundary|form|part/i.test(err.message)
  )
    return refused('INVALID_MULTIPART', `The multipart body is malformed: ${err.message}`)
  return err
}

export const attachmentRoutes: RoutePlugin = async (app, deps) => {
  const ctx = attachmentsContext(deps)
  const max = ctx.attachments.maxBytes
  const tags = ['sending']

  await app.register(async (scope) => {
    await scope.register(multipart, {
      throwFileSizeLimit: false,
      limits: { fileSize: max + 1, files: 1, fields: 10, fieldSize: 1024, parts: 12, headerPairs: 50 },
    })
    scope.post(
      '/v1/attachments',
      {
        config: { auth: 'send' },
        // The body is a stream read by the handler; this schema documents it (OpenAPI) only.
        validatorCompiler: () => () => true,
        schema: {
          tags,
          summary: `Upload one file (multipart/form-data, a part with a filename; at most attachments.max_bytes, ${max} bytes here)`,
          description:
            'Use the returned id in POST /v1/emails or a draft (attachments: [{"id": "att_..."}]). An upload no draft uses is deleted after attachments.unused_hours.',
          consumes: ['multipart/form-data'],
          body: Type.Object(
            {
              file: Type.String({
                format: 'binary',
                description: 'The file; its part filename and type are kept',
              }),
            },
            { required: ['file'] },
          ),
          response: { 201: AttachmentSchema, ...errorResponses },
        },
      },
      async (req, reply) => {
        const p = principalOf(req)
        const length = Number(req.headers['content-length'])
        if (Number.isFinite(length) && length > max + MULTIPART_OVERHEAD) throw tooLarge(max)
        if (!req.isMultipart())
          throw new ServiceError(
            'invalid',
            'MULTIPART_REQUIRED',
            'Upload the file as multipart/form-data (e.g. curl -F file=@invoice.pdf).',
          )
        let staged: StagedAttachment | null = null
        try {
          for await (const part of req.parts()) {
            if (part.type !== 'file') continue
            staged = await stageAttachment(ctx, p, {
              filename: part.filename,
              content_type: part.mimetype,
              content: part.file,
            })
          }
        } catch (err) {
          if (staged) await discardStagedAttachment(ctx, staged)
          throw multipartError(err, max)
        }
        if (!staged)
          throw new ServiceError(
            'invalid',
            'FILE_REQUIRED',
            'The form has no file: send one part with a filename (e.g. curl -F file=@invoice.pdf).',
          )
        const made = await commitAttachment(ctx, staged)
        return reply.code(201).send(attachmentBody(made))
      },
    )
  })

  app.get(
    '/v1/attachments/:id',
    {
      config: { auth: 'send' },
      schema: {
        tags,
        summary: 'An uploaded attachment: name, type, size, hash, expiry and the drafts using it',
        params: IdParam,
        response: { 200: AttachmentSchema, ...errorResponses },
      },
    },
    async (req) => attachmentBody(await getAttachment(ctx, principalOf(req), req.params.id)),
  )

  app.get(
    '/v1/attachments/:id/content',
    {
      config: { auth: 'send' },
      schema: {
        tags,
        summary: 'The bytes of an uploaded attachment, as a download with its stored type',
        params: IdParam,
        response: { ...errorResponses },
      },
    },
    async (req, reply) => sendDownload(reply, await attachmentContent(ctx, principalOf(req), req.params.id)),
  )
}
