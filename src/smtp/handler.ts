// The contract between Postern's SMTP server (mechanism: sockets, grammar, limits, framing) and
// the policy that decides who may send what to whom (the MX handler, later submission). The
// server calls the handler at each step of a session and sends what it answers; the handler
// never sees sockets, command lines or dot-stuffing.
// Invariants:
// - Calls for one session never overlap: the server awaits each one before reading on.
// - Every address is syntactically valid for RFC 5321 4.1.2 (RFC 6531 3.3 with SMTPUTF8) and
//   written `local@domain`, the local part as the client wrote it (quotes kept); source routes
//   are dropped. A bare `<Postmaster>` recipient arrives as `postmaster@<hostname>` (4.5.1).
// - Replies are sent as given, with the enhanced code defaulting to X.0.0 of the reply's class;
//   a handler that throws is answered 451 4.3.0 (421 4.3.0 at connect) and the error logged.

export interface SmtpReply {
  /** 2xx accepts, 4xx refuses for now, 5xx refuses for good. */
  code: number
  /** RFC 3463 `class.subject.detail`, e.g. '5.1.1'; defaults to X.0.0 of the code's class. */
  enhanced?: string
  /** One line, or several separated by '\n' (sent as a multi-line reply). */
  message: string
}

export interface SessionInfo {
  /** `smtp_<random>`, also the `cid` of the session's log lines. */
  id: string
  remoteAddress: string
  remotePort: number
  localAddress: string
  localPort: number
  /** The argument of the last EHLO or HELO; null before one (and again after STARTTLS). */
  helo: string | null
  /** True after EHLO, false after HELO. */
  esmtp: boolean
  tls: { protocol: string; cipher: string } | null
  /** Epoch milliseconds. */
  startedAt: number
  /** Who logged in with AUTH (submission), or null. */
  auth: string | null
}

/** AUTH (RFC 4954) for submission; an MX handler has none, and AUTH is then never offered. */
export interface SmtpAuth {
  /** Whether AUTH may be offered to this session now (TLS, or a trusted client address). */
  offered(s: SessionInfo): boolean
  /** Checks a name and secret; ok with the identity the session then carries, or the reply to send. */
  login(
    s: SessionInfo,
    name: string,
    secret: string,
  ): Promise<{ ok: true; identity: string } | { ok: false; reply: SmtpReply }>
}

export interface MailFrom {
  /** '' for the null reverse-path <>. */
  address: string
  /** SIZE= (RFC 1870), the client's estimate; the server enforces the real size. */
  size: number | null
  /** BODY= (RFC 6152; BINARYMIME is RFC 3030 and not offered, so never given today). */
  body: '7BIT' | '8BITMIME' | 'BINARYMIME' | null
  /** SMTPUTF8 (RFC 6531): the addresses and header may be UTF-8. */
  smtputf8: boolean
  /** RET= (RFC 3461 4.3). */
  ret: 'FULL' | 'HDRS' | null
  /** ENVID= (RFC 3461 4.4), xtext decoded. */
  envid: string | null
  /** REQUIRETLS (RFC 8689 2): the message must only travel over verified TLS. Only over TLS. */
  requireTls: boolean
}

export interface RcptTo {
  address: string
  /** NOTIFY= (RFC 3461 4.1); NEVER never comes with another value. */
  notify: ('NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY')[] | null
  /** ORCPT= (RFC 3461 4.2) as `addr-type;address`, the address xtext decoded: 'rfc822;a@b.example'. */
  orcpt: string | null
}

export interface SmtpHandler {
  /** Present in submission mode only. */
  auth?: SmtpAuth
  /** The session ended (the handler forgets what it kept for it). */
  onClose?(s: SessionInfo): void
  /** null accepts the connection; a reply refuses it (sent instead of the greeting, then close). */
  onConnect(s: SessionInfo): Promise<SmtpReply | null>
  /** null accepts (250 2.1.0). */
  onMailFrom(s: SessionInfo, from: MailFrom): Promise<SmtpReply | null>
  /** null accepts (250 2.1.5). `accepted` are the recipients accepted so far in this transaction. */
  onRcptTo(s: SessionInfo, from: MailFrom, to: RcptTo, accepted: readonly RcptTo[]): Promise<SmtpReply | null>
  /**
   * The whole message (dot-unstuffed, CRLF line ends) once DATA or the last BDAT chunk is complete;
   * the reply is the final answer for it (250 only when stored durably).
   */
  onMessage(
    s: SessionInfo,
    envelope: { from: MailFrom; to: readonly RcptTo[] },
    message: Buffer,
  ): Promise<SmtpReply>
}
