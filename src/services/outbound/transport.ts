// The contract between the outbound queue (policy: what to send where, retries, state) and
// the SMTP client that carries one message to one remote server (mechanism). The queue never
// sees sockets or SMTP grammar; the client never sees the database. main.ts wires the
// implementation in src/smtp/client/ into the queue worker.
// Invariants:
// - A target is always an IP address (`ip`); `host` is the name it was found under, used only
//   for TLS SNI and for logs. The client never resolves names.
// - Every connection goes through the connect guard given to the client.
// - A result is given for every recipient of a transaction, in the order they were given.
// - `onTrace` sees each step as it happens (connect, TLS, each reply), for the message trace.

export interface DeliveryTarget {
  /** The destination domain the recipients belong to (ASCII). */
  domain: string
  /** MX host name (or smart host name); the TLS servername. */
  host: string
  /** IP literal to connect to (IPv6 without brackets). */
  ip: string
  port: number
}

export interface SessionOptions {
  /** Name sent in EHLO/HELO. */
  helo: string
  /** 'starttls' (opportunistic: use STARTTLS whenever offered), 'require' (refuse to send without TLS), 'implicit' (TLS from the first byte, port 465 style), 'none' (never TLS). */
  tls: 'starttls' | 'require' | 'implicit' | 'none'
  /** Verify the server certificate against the CA bundle (smart hosts); off for opportunistic MX TLS. */
  verifyCertificate: boolean
  /** SMTP AUTH (smart host only). */
  auth?: { user: string; pass: string } | null
  onTrace?: (step: TraceStep) => void
}

export interface TraceStep {
  kind: 'connect' | 'tls' | 'reply' | 'error'
  /** Epoch ms. */
  at: number
  /** connect: {ip, port, host}; tls: {protocol, cipher}; reply: {command, code, enhanced, message}; error: {message, phase} */
  detail: Record<string, unknown>
}

export interface OutgoingRecipient {
  address: string
  /** RFC 3461 NOTIFY values, passed on when the server offers DSN. */
  notify?: readonly ('NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY')[] | null
  /** RFC 3461 ORCPT as 'rfc822;addr'. */
  orcpt?: string | null
}

export interface OutgoingTransaction {
  /** '' for the null reverse-path. */
  mailFrom: string
  recipients: readonly OutgoingRecipient[]
  /** The complete message, CRLF line ends, already signed. */
  message: Buffer
  /** ENVID/RET when the server offers DSN. */
  envid?: string | null
  ret?: 'FULL' | 'HDRS' | null
  /** Put REQUIRETLS on MAIL FROM when the server offers it (RFC 8689); only on a verified TLS session. */
  requireTls?: boolean
}

export interface RecipientOutcome {
  address: string
  /** The reply that decided this recipient: its RCPT reply when refused, else the DATA reply (or MAIL's when MAIL failed). */
  code: number
  enhanced: string | null
  message: string
}

export interface TransactionResult {
  recipients: RecipientOutcome[]
  /** The server offered DSN (RFC 3461): NOTIFY, ORCPT, RET and ENVID went with the transaction, and it reports. */
  dsn: boolean
}

/** A connection failure or a failure outside a transaction (greeting, EHLO, STARTTLS, AUTH). */
export class TransportError extends Error {
  readonly temporary: boolean
  readonly phase: 'connect' | 'greeting' | 'ehlo' | 'tls' | 'auth' | 'transaction' | 'timeout'
  readonly code: number | null
  readonly enhanced: string | null

  constructor(
    message: string,
    o: { temporary: boolean; phase: TransportError['phase']; code?: number | null; enhanced?: string | null },
  ) {
    super(message)
    this.name = 'TransportError'
    this.temporary = o.temporary
    this.phase = o.phase
    this.code = o.code ?? null
    this.enhanced = o.enhanced ?? null
  }
}

export interface SmtpSession {
  readonly target: DeliveryTarget
  /** Negotiated TLS, null for plain text. `verified`: the certificate chains to a trusted CA and names the host (known even when not required). */
  readonly tls: { protocol: string; cipher: string; verified?: boolean; verifyError?: string | null } | null
  /** False once the connection broke or the server closed it. */
  readonly usable: boolean
  /** Whether the server's last EHLO listed this extension keyword (upper case), e.g. 'REQUIRETLS'. */
  offers(keyword: string): boolean
  /** Runs MAIL, RCPT..., DATA (RSET first when this is not the first transaction). */
  send(tx: OutgoingTransaction): Promise<TransactionResult>
  /** QUIT and close (never throws). */
  close(): Promise<void>
}

export interface Transport {
  /** Connects, reads the greeting, EHLO (HELO fallback), STARTTLS per options, AUTH when given. Throws TransportError. */
  open(target: DeliveryTarget, opts: SessionOptions): Promise<SmtpSession>
}
