// mailparser, loaded once on first use: it brings iconv tables, an HTML parser and html-to-text,
// none of which an idle server needs. Delivery (mail/parse.ts) and reading (services/messages)
// share the one promise.

import type * as Mailparser from 'mailparser'

let mailparser: Promise<typeof Mailparser> | null = null

export function loadMailparser(): Promise<typeof Mailparser> {
  mailparser ??= import('mailparser')
  return mailparser
}
