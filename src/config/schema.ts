// The configuration schema: every key Postern reads, with its type, default and a one-line doc.
// This file is the single source for config loading (load.ts), the environment names
// (POSTERN_<PATH>), the command-line flags (--<path-with-dashes>), `postern config` and
// docs/config.md. Invariant: a key's default is valid for its own type, no secret has a default.

export type KeyKind = 'string' | 'integer' | 'boolean' | 'list' | 'enum'

export interface KeyDef<T> {
  readonly kind: KeyKind
  readonly default: T
  readonly doc: string
  readonly nullable: boolean
  /** Redacted by `postern config`, GET /v1/config and logs. */
  readonly secret?: boolean
  readonly values?: readonly string[]
  readonly min?: number
  readonly max?: number
  /** Shown in docs instead of the raw default when the default is derived at start. */
  readonly derived?: string
  /** A string value must match this (with `patternDoc` saying what it means). */
  readonly pattern?: RegExp
  readonly patternDoc?: string
}

interface Opts {
  secret?: boolean
  derived?: string
}

const str = (def: string, doc: string, o: Opts = {}): KeyDef<string> => ({
  kind: 'string',
  default: def,
  doc,
  nullable: false,
  ...o,
})
const optStr = (doc: string, o: Opts = {}): KeyDef<string | null> => ({
  kind: 'string',
  default: null,
  doc,
  nullable: true,
  ...o,
})
const int = (def: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): KeyDef<number> => ({
  kind: 'integer',
  default: def,
  doc,
  nullable: false,
  min,
  max,
})
/** A TCP port; 0 asks the system for a random free port. */
const port = (def: number, doc: string): KeyDef<number> => int(def, doc, 0, 65535)
/** A TCP port where null means "the standard port when it may be bound, else the fallback". */
const autoPort = (doc: string, derived: string): KeyDef<number | null> => ({
  kind: 'integer',
  default: null,
  doc,
  nullable: true,
  min: 0,
  max: 65535,
  derived,
})
/** A rate limit written `<count>/<window>`, e.g. `10/15m` (units s, m, h, d). */
const rate = (def: string, doc: string): KeyDef<string> => ({
  kind: 'string',
  default: def,
  doc,
  nullable: false,
  pattern: /^\d+\/\d+[smhd]$/,
  patternDoc: 'a rate written <count>/<window>, e.g. 10/15m (units s, m, h, d)',
})
const bool = (def: boolean, doc: string): KeyDef<boolean> => ({
  kind: 'boolean',
  default: def,
  doc,
  nullable: false,
})
const list = (
  def: readonly string[],
  doc: string,
  values?: readonly string[],
): KeyDef<readonly string[]> => ({
  kind: 'list',
  default: def,
  doc,
  nullable: false,
  ...(values ? { values } : {}),
})
const oneOf = <const V extends string>(values: readonly V[], def: V, doc: string): KeyDef<V> => ({
  kind: 'enum',
  default: def,
  doc,
  nullable: false,
  values,
})

export const ROLES = ['http', 'smtp', 'imap', 'workers'] as const
export type Role = (typeof ROLES)[number]
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const schema = {
  data_dir: str(
    './data',
    'Folder holding the SQLite database, blobs, TLS material and secrets; created on first start.',
  ),
  secrets_file: optStr(
    'Path of the 0600 secrets file (token signing key, key-encryption key); shared by every node.',
    {
      derived: '<data_dir>/secrets.json',
    },
  ),
  hostname: optStr('Host name this server announces in SMTP banners, certificates and links.', {
    derived: 'the machine host name',
  }),
  public_url: optStr(
    'Base URL people and programs use to reach the HTTP listener (setup link, client set-up).',
    {
      derived: 'http://<http.host>:<http.port>',
    },
  ),
  roles: list(ROLES, 'What this process runs: any of http, smtp, imap, workers.', ROLES),
  log: {
    level: oneOf(LOG_LEVELS, 'info', 'Log level: fatal, error, warn, info, debug, trace or silent.'),
  },
  database: {
    url: optStr('PostgreSQL URL (postgres://...) for a multi-node store; unset means SQLite in data_dir.', {
      secret: true,
      derived: 'SQLite at <data_dir>/postern.db',
    }),
    schema: str('public', 'PostgreSQL schema holding Postern tables (one schema per installation).'),
    pool_size: int(10, 'Maximum PostgreSQL connections per process.', 1, 1000),
    busy_timeout_ms: int(
      5000,
      'How long a SQLite write waits for another process holding the write lock.',
      0,
    ),
  },
  blobs: {
    backend: oneOf(
      ['fs', 'database'] as const,
      'fs',
      'Where message bytes live: fs (data folder) or database (shared by nodes on PostgreSQL).',
    ),
    dir: optStr('Folder of the filesystem blob store.', { derived: '<data_dir>/blobs' }),
    inline_max_bytes: int(
      65_536,
      'fs backend: blobs up to this size (most mail) are kept in the database, committed with the message, instead of a file of their own; 0 puts every blob in a file.',
      0,
      16_777_216,
    ),
    collect_grace_seconds: int(
      3600,
      'How long an unreferenced blob is kept before the collection job deletes it.',
    ),
  },
  http: {
    host: str('127.0.0.1', 'Address the HTTP API listens on.'),
    port: port(8787, 'Port of the HTTP API (0 picks a random port).'),
    body_limit_bytes: int(1_048_576, 'Largest request body the API accepts; larger ones get 413.', 1024),
    trust_proxy: bool(false, 'Take the client address from X-Forwarded-For (only behind a proxy you run).'),
  },
  https: {
    enabled: bool(false, 'Also serve the HTTP API over TLS with the certificate service.'),
    host: optStr('Address of the HTTPS listener.', { derived: 'http.host' }),
    port: port(8443, 'Port of the HTTPS listener (0 picks a random port).'),
  },
  smtp: {
    host: str('0.0.0.0', 'Address the SMTP listeners bind.'),
    mx_port: autoPort('Port of the SMTP MX listener.', '25, or 2025 when port 25 may not be bound'),
    submission_port: autoPort('Port of SMTP submission with STARTTLS.', '587, or 2587 when unprivileged'),
    submissions_port: autoPort(
      'Port of SMTP submission over implicit TLS.',
      '465, or 2465 when unprivileged',
    ),
    banner: optStr('Text after the host name in the SMTP greeting.', { derived: 'Postern ESMTP' }),
    max_message_bytes: int(52_428_800, 'Largest message accepted (advertised as SIZE).', 1024),
    max_header_bytes: int(1_048_576, 'Largest header section of a message.', 1024),
    max_recipients: int(100, 'Recipients per transaction.', 1, 100_000),
    max_line_bytes: int(
      4096,
      'Longest line accepted in commands and message text (RFC 5321 minimum 1000).',
      1000,
      1_000_000,
    ),
    max_connections: int(1000, 'Simultaneous SMTP connections in total.', 1),
    max_connections_per_ip: int(50, 'Simultaneous SMTP connections from one address.', 1),
    max_errors: int(10, 'Bad commands in one session before it is closed.', 1),
    max_unknown_recipients: int(20, 'Refused recipients in one session before it is closed.', 1),
    max_transactions: int(100, 'Messages in one connection.', 1),
    command_timeout_ms: int(
      300_000,
      'Idle time allowed between commands (RFC 5321 4.5.3.2: 5 minutes).',
      1000,
    ),
    data_timeout_ms: int(600_000, 'Time allowed to send the message text.', 1000),
    greeting_delay_ms: int(
      0,
      'Pause before the greeting to catch clients that talk first (0 = off).',
      0,
      60_000,
    ),
    authserv_id: optStr('The authserv-id in Authentication-Results headers (RFC 8601).', {
      derived: 'hostname',
    }),
    dmarc_reject: bool(true, 'Refuse mail whose DMARC policy is reject and which fails DMARC (550 5.7.1).'),
    dmarc_quarantine_to_junk: bool(
      true,
      'File mail whose DMARC policy is quarantine and which fails DMARC in Junk.',
    ),
    verify_auth: bool(true, 'Check SPF, DKIM, DMARC and ARC of incoming mail.'),
    arc_trusted_sealers: list(
      [],
      'Domains whose ARC seals are trusted (RFC 8617 7.2): mail failing DMARC that carries a valid ARC chain last sealed by one of them is delivered as if its DMARC policy were none (forwarders and lists you rely on).',
    ),
  },
  imap: {
    host: str('0.0.0.0', 'Address the IMAP listeners bind.'),
    port: autoPort('Port of IMAP with STARTTLS.', '143, or 2143 when unprivileged'),
    tls_port: autoPort('Port of IMAP over implicit TLS.', '993, or 2993 when unprivileged'),
    max_connections: int(5000, 'Simultaneous IMAP connections in total.', 1),
    max_connections_per_ip: int(200, 'Simultaneous IMAP connections from one address.', 1),
    idle_timeout_ms: int(
      1_800_000,
      'Idle time allowed to a logged-in session, IDLE included (RFC 9051 5.4: at least 30 minutes).',
      1000,
    ),
    login_timeout_ms: int(60_000, 'Time allowed before a connection has logged in.', 1000),
    max_line_bytes: int(65_536, 'Longest command line, literals not counted.', 1024),
    max_command_bytes: int(
      1_048_576,
      'Largest command with its literals, APPEND messages not counted (they stream to disk).',
      1024,
    ),
    max_errors: int(20, 'Bad commands in one session before it is closed.', 1),
  },
  tls: {
    cert_file: optStr(
      'PEM certificate chain for every listener; unset means a self-signed one made on first start.',
    ),
    key_file: optStr('PEM private key matching tls.cert_file.'),
    sni_dir: optStr('Folder of per-host certificates named <host>.crt and <host>.key, chosen by SNI.'),
    watch_interval_ms: int(
      2000,
      'How often certificate files are checked for changes (0 turns reloading off).',
    ),
  },
  dns: {
    servers: list([], 'DNS servers as ip or ip:port; empty uses the system resolver configuration.'),
    timeout_ms: int(5000, 'Timeout of one DNS query.', 1),
    cache_entries: int(
      10_000,
      'DNS answers kept in memory for mail (SPF, DKIM, DMARC, iprev, MX, MTA-STS) for their TTL; 0 turns the cache off. Domain verification always asks the DNS.',
      0,
    ),
    cache_max_ttl_seconds: int(3600, 'Longest a cached DNS answer is kept, whatever its TTL.', 0),
    cache_default_ttl_seconds: int(
      60,
      'How long a DNS answer whose TTL the resolver cannot report (TXT, MX, CNAME, SRV, PTR) is cached.',
      0,
    ),
    cache_negative_seconds: int(60, 'How long a DNS "no such name" or "no such record" answer is cached.', 0),
  },
  auth: {
    signup: oneOf(
      ['open', 'invite', 'closed'] as const,
      'closed',
      'Who may sign up: anyone (open), only invited people (invite), or nobody (closed).',
    ),
    session_days: int(7, 'How long a browser session lasts.', 1, 365),
    secure_cookies: oneOf(
      ['auto', 'always', 'never'] as const,
      'auto',
      'Mark the session cookie Secure: auto means when the request came over HTTPS.',
    ),
    argon2_memory_kib: int(19_456, 'Argon2id memory cost for passwords people choose, in KiB.', 8, 4_194_304),
    argon2_time_cost: int(2, 'Argon2id iterations.', 1, 100),
    argon2_parallelism: int(1, 'Argon2id lanes.', 1, 16),
    mail_login_cache_seconds: int(
      900,
      'How long a mail client password that verified is remembered (a keyed hash, in memory), so reconnecting IMAP and SMTP clients skip Argon2id; 0 turns it off.',
      0,
      86_400,
    ),
    min_password_length: int(10, 'Shortest password a person may choose.', 8, 1024),
    slowdown_after: int(
      3,
      'Failed logins for one account or address after which each new attempt is delayed.',
      1,
    ),
    lockout_after: int(10, 'Failed logins for one account within the window after which it is locked.', 1),
    lockout_ip_after: int(
      50,
      'Failed logins from one address within the window after which it is locked.',
      1,
    ),
    lockout_window_minutes: int(15, 'Window in which failed logins are counted.', 1),
    lockout_minutes: int(15, 'How long a locked account or address waits.', 1),
    plaintext_allowed_from: list(
      ['127.0.0.0/8', '::1/128'],
      'Client networks (CIDR) that may log in to IMAP and SMTP without TLS; elsewhere TLS comes first.',
    ),
    mailbox_password_with_2fa: bool(
      false,
      'Keep the mailbox password working for IMAP and SMTP when its owner has two-factor log-in on (app passwords always work).',
    ),
  },
  rate_limits: {
    signup: rate('5/1h', 'Sign-ups per client address.'),
    login_ip: rate('10/15m', 'Log-in attempts per client address.'),
    login_email: rate('10/15m', 'Log-in attempts per email address.'),
    forgot_ip: rate('3/1h', 'Password-reset requests per client address.'),
    forgot_email: rate('3/1h', 'Password-reset requests per email address.'),
    verify_email: rate(
      '10/15m',
      'Attempts with a code or token (email verification, password reset, invitation claim) per client address.',
    ),
    setup: rate('3/15m', 'First-run setup attempts per client address.'),
    send_ip: rate('20/60s', 'Messages sent by people per client address.'),
    send_user: rate('30/60s', 'Messages sent per user.'),
    send_key: rate('6000/60s', 'Messages sent per API key (a batch counts each message).'),
    admin_jobs: rate('5/60s', 'Manual job runs per user.'),
    forward_alias: rate(
      '100/1h',
      'Messages one alias forwards to outside addresses; over it the MX answers 451 4.7.1 at RCPT.',
    ),
    tracking_message: rate(
      '200/1h',
      'Opens and clicks recorded per tracked message; more are still answered, not recorded.',
    ),
  },
  domains: {
    dkim_rotation_grace_days: int(
      7,
      'How long a rotated-out DKIM key stays published (and verifiable) before it is retired.',
      0,
      365,
    ),
    dmarc_policy: oneOf(
      ['none', 'quarantine', 'reject'] as const,
      'quarantine',
      'DMARC policy suggested in the DNS records of new domains.',
    ),
    mta_sts_mode: oneOf(
      ['testing', 'enforce', 'none'] as const,
      'testing',
      'MTA-STS policy mode served for hosted domains.',
    ),
    mta_sts_max_age_days: int(7, 'max_age of the MTA-STS policy, in days.', 1, 365),
    record_ttl: int(
      3600,
      'TTL suggested for the DNS records Postern asks you to publish, in seconds.',
      60,
      86_400,
    ),
    recheck_hours: int(24, 'How often verified domains have their DNS re-checked.', 1, 720),
  },
  outbound: {
    mx_port: port(
      25,
      'Port outbound mail connects to on remote MX hosts (tests point it at a local server).',
    ),
    helo: optStr('Name sent in EHLO by outbound SMTP.', { derived: 'hostname' }),
    concurrency: int(20, 'Outbound SMTP connections open at once, in total.', 1, 10_000),
    per_destination: int(5, 'Outbound SMTP connections open at once to one destination domain.', 1, 1000),
    recipients_per_transaction: int(
      50,
      'Recipients sent in one SMTP transaction to one destination.',
      1,
      1000,
    ),
    retry_intervals: list(
      ['5m', '10m', '30m', '1h', '2h', '4h'],
      'Waits between delivery attempts after a temporary failure; the last repeats (units ms, s, m, h, d).',
    ),
    lifetime_seconds: int(
      432_000,
      'How long a message is retried before it bounces as failed (default 5 days).',
      1,
    ),
    delay_notice_seconds: int(
      14_400,
      'After this long undelivered, an email.delayed event is raised once (webhooks carry it to the sender), and mail clients that asked with NOTIFY=DELAY get a delay notice (RFC 3461).',
      1,
    ),
    dsn_return_max_bytes: int(
      1_048_576,
      'A failure notice (bounce) to a mail client returns the whole message up to this size; larger ones return only the header section.',
      0,
    ),
    connect_timeout_ms: int(30_000, 'Time allowed to connect to a remote SMTP server.', 100),
    command_timeout_ms: int(300_000, 'Time allowed for each remote SMTP reply.', 100),
    poll_ms: int(1000, 'How often an idle queue worker looks for due messages.', 5),
    lease_seconds: int(
      600,
      'How long a worker holds a message it is delivering before another may retry it.',
      1,
    ),
    smart_host: optStr(
      "Relay all outbound mail through this host as ip:port or host:port (resolved through Postern's resolver).",
    ),
    smart_host_tls: oneOf(
      ['starttls', 'require', 'implicit', 'none'] as const,
      'require',
      'TLS towards the smart host: require (STARTTLS, verified), starttls (when offered), implicit (port 465), none.',
    ),
    smart_host_user: optStr('User name for SMTP AUTH at the smart host.'),
    smart_host_password: optStr('Password for SMTP AUTH at the smart host.', { secret: true }),
    mta_sts: bool(
      true,
      'Apply the MTA-STS policies (RFC 8461) of destination domains: enforce defers mail that cannot reach a listed MX over verified TLS; testing records the failures.',
    ),
    mta_sts_port: port(
      443,
      'Port of the MTA-STS policy hosts (mta-sts.<domain>); tests point it at a local HTTPS server.',
    ),
    mta_sts_timeout_ms: int(
      10_000,
      'Time allowed to fetch one MTA-STS policy (connect, TLS and the whole response).',
      100,
      120_000,
    ),
    tls_ca_file: optStr(
      'PEM file of extra CA certificates trusted for outbound TLS (MTA-STS policy hosts, MX hosts that must present a valid certificate, the smart host), besides the system ones; tests set it.',
    ),
    org_hourly_cap: int(10_000, 'Recipients one organisation may send per hour (0 = no cap).', 0),
    org_daily_cap: int(100_000, 'Recipients one organisation may send per day (0 = no cap).', 0),
    max_batch: int(100, 'Messages in one batch send request.', 1, 1000),
  },
  attachments: {
    max_bytes: int(
      10_485_760,
      'Largest file POST /v1/attachments accepts; a larger upload gets 413 and nothing is kept.',
      1,
    ),
    unused_hours: int(
      24,
      'How long an uploaded attachment that no draft uses is kept before the attachment-purge job deletes it.',
      1,
    ),
  },
  forwarding: {
    srs_max_age_days: int(
      21,
      'How many days a bounce to an SRS address of a forwarded message is accepted and sent back to its sender.',
      1,
      1000,
    ),
  },
  net: {
    connect_allow: list(
      [],
      'Loopback, private or link-local ranges (CIDR) outbound connections may reach; public addresses are always allowed.',
    ),
  },
  analytics: {
    fold_interval_ms: int(
      5000,
      'How often the analytics job adds new events to the hourly deliverability counters.',
      100,
    ),
    fold_settle_ms: int(
      30_000,
      'How far behind the clock the analytics fold stays, so events of transactions still committing are not passed over (summaries count newer events directly).',
      0,
    ),
  },
  jobs: {
    tick_ms: int(1000, 'How often the job runner looks for due jobs.', 10),
    lease_seconds: int(300, 'How long a process holds a job it started before another may take it over.', 1),
  },
  events: {
    poll_ms: int(100, 'How often a SQLite process checks for changes written by other processes.', 5),
    retention_days: int(
      30,
      'How many days events are kept (GET /v1/events); the events-prune job deletes older ones.',
      1,
      3650,
    ),
  },
  webhooks: {
    poll_ms: int(100, 'How often the webhook sender looks for due deliveries.', 5, 60_000),
    concurrency: int(32, 'Webhook requests one process has in flight at once.', 1, 256),
    timeout_ms: int(
      10_000,
      'Time allowed for one webhook request (DNS, connect, TLS and the whole response).',
      100,
      120_000,
    ),
    lease_seconds: int(
      60,
      'How long a process holds a delivery it is attempting before another may take it over (longer than timeout_ms).',
      1,
    ),
    retry_base_ms: int(
      5_000,
      'Delay before the first retry of a failed delivery; each further retry waits twice as long (at most six hours).',
      1,
    ),
    retry_hours: int(72, 'How long a delivery is retried before it is given up as failed.', 1, 720),
    disable_after_hours: int(
      72,
      'An endpoint whose every attempt has failed for this long is disabled (an event and a mail to the org admins).',
      1,
      720,
    ),
    disable_after_failures: int(
      0,
      'Also disable an endpoint after this many failed attempts in a row (0: only the time rule).',
      0,
    ),
    secret_grace_hours: int(
      24,
      'After a secret rotation, how long the previous secret keeps signing beside the new one.',
      0,
      720,
    ),
  },
  feed: {
    poll_ms: int(
      500,
      'How often the live feed (GET /v1/ws) reads new events when no change note woke it earlier.',
      10,
    ),
    lookback_ms: int(
      3000,
      'How far back the live feed re-reads events, to catch ones whose transaction committed late.',
      0,
    ),
    heartbeat_seconds: int(
      30,
      'Seconds between pings on a live-feed socket; credentials are re-checked at each one.',
      1,
    ),
    max_buffered_bytes: int(
      1_048_576,
      'Bytes a live-feed socket may have unsent before it is closed as a slow consumer (code 4429).',
      1024,
    ),
  },
  tracking: {
    base_url: {
      ...optStr(
        'Base URL of the open pixel, click and unsubscribe links in tracked mail; use https (RFC 8058 one-click needs it).',
        { derived: 'public_url' },
      ),
      pattern: /^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/i,
      patternDoc: 'an http(s) URL without query or fragment, e.g. https://t.example.com',
    },
    prefetch_window_ms: int(
      2000,
      'An open or click this soon after delivery is flagged bot: prefetch (scanners, previews).',
      0,
    ),
  },
  shutdown: {
    grace_ms: int(10_000, 'How long shutdown waits for in-flight work before closing connections.', 0),
  },
} as const

type Resolve<S> = {
  readonly [K in keyof S]: S[K] extends KeyDef<infer T> ? T : Resolve<S[K]>
}

/** The validated, frozen configuration every module receives. */
export type Config = Resolve<typeof schema>

export interface FlatKey {
  /** Dotted path, e.g. `http.port`. */
  path: string
  env: string
  flag: string
  def: KeyDef<unknown>
}

const isKeyDef = (v: unknown): v is KeyDef<unknown> =>
  typeof v === 'object' && v !== null && 'kind' in v && 'doc' in v

/** Every key in schema order, with its environment variable and flag names. */
export function flatKeys(): FlatKey[] {
  const out: FlatKey[] = []
  const walk = (node: Record<string, unknown>, prefix: string[]) => {
    for (const [name, value] of Object.entries(node)) {
      const parts = [...prefix, name]
      if (isKeyDef(value)) {
        out.push({
          path: parts.join('.'),
          env: `POSTERN_${parts.join('_').toUpperCase()}`,
          flag: `--${parts.join('-').replaceAll('_', '-')}`,
          def: value,
        })
      } else walk(value as Record<string, unknown>, parts)
    }
  }
  walk(schema, [])
  return out
}
