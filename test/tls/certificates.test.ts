// The certificate service over real TLS sockets on 127.0.0.1: self-signed first start and
// reuse, configured files, error messages, SNI choice, and reloading from disk. Two RSA keys
// are made once and every test certificate is signed with one of them, to keep this fast.

import assert from 'node:assert/strict'
import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  connect,
  createServer as createTlsServer,
  type PeerCertificate,
  type Server,
  TLSSocket,
} from 'node:tls'
import { generate } from 'selfsigned'
import type { Config } from '../../src/config/schema.ts'
import { createLogger } from '../../src/log/logger.ts'
import { manualClock } from '../../src/time/clock.ts'
import { type CertificateService, createCertificateService, TlsError } from '../../src/tls/certificates.ts'

type KeyPem = { privateKey: string; publicKey: string }

function rsaKey(): KeyPem {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
}

async function makeCert(
  cn: string,
  key: KeyPem,
  dnsNames: string[] = [cn],
): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: cn }], {
    algorithm: 'sha256',
    keyPair: key,
    extensions: [
      { name: 'subjectAltName', altNames: dnsNames.map((value) => ({ type: 2 as const, value })) },
    ],
  })
  return { cert: pems.cert, key: key.privateKey }
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256

/** Replaces a file by rename, as certbot and friends do, so a watcher never sees half of it. */
function put(file: string, body: string): void {
  writeFileSync(`${file}.tmp`, body)
  renameSync(`${file}.tmp`, file)
}

function captureLog() {
  const lines: { level: string; msg: string; [k: string]: unknown }[] = []
  const log = createLogger({
    level: 'debug',
    destination: { write: (s: string) => lines.push(JSON.parse(s)) },
  })
  return { log, lines }
}

function tlsConfig(over: Partial<Config['tls']> = {}): Config['tls'] {
  return { cert_file: null, key_file: null, sni_dir: null, watch_interval_ms: 0, ...over }
}

async function listen(svc: CertificateService): Promise<{ server: Server; port: number }> {
  const server = createTlsServer(svc.serverOptions(), (s) => s.end())
  svc.attach(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const addr = server.address()
  assert.ok(addr && typeof addr === 'object')
  return { server, port: addr.port }
}

function peer(port: number, servername?: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate())
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

async function eventually(check: () => Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  assert.fail(`timed out waiting for ${what}`)
}

describe('certificate service', () => {
  let root: string
  let keyA: KeyPem
  let keyB: KeyPem
  let n = 0
  const dir = () => {
    const d = join(root, `t${n++}`)
    mkdirSync(d)
    return d
  }
  const cleanups: (() => void)[] = []

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'postern-tls-'))
    keyA = rsaKey()
    keyB = rsaKey()
  })
  after(() => {
    for (const c of cleanups.reverse()) c()
    rmSync(root, { recursive: true, force: true })
  })
  const track = (svc: CertificateService, server?: Server) => {
    cleanups.push(() => {
      svc.close()
      server?.close()
    })
  }

  it('generates a self-signed certificate on first start and reuses it on the next', async () => {
    const dataDir = dir()
    const { log, lines } = captureLog()
    const first = await createCertificateService({
      tls: tlsConfig(),
      hostname: 'mail.example.test',
      dataDir,
      log,
    })
    const info = first.info()
    assert.equal(info.source, 'self-signed')
    assert.equal(info.self_signed, true)
    assert.equal(info.subject, 'CN=mail.example.test')
    assert.equal(info.reload_error, null)
    assert.deepEqual(info.sni_hosts, [])
    const days = (Date.parse(info.not_after) - Date.now()) / 86_400_000
    assert.ok(days > 360 && days < 370, `valid for ~1 year, got ${days} days`)
    assert.ok(lines.some((l) => l.msg === 'generating a self-signed TLS certificate'))

    assert.equal(statSync(join(dataDir, 'tls')).mode & 0o777, 0o700)
    assert.equal(statSync(join(dataDir, 'tls', 'self-signed.key')).mode & 0o777, 0o600)
    assert.equal(
      fingerprintOf(readFileSync(join(dataDir, 'tls', 'self-signed.crt'), 'utf8')),
      info.fingerprint256,
    )

    const { server, port } = await listen(first)
    track(first, server)
    const cert = await peer(port)
    assert.equal(cert.fingerprint256, info.fingerprint256)
    assert.equal(cert.subject.CN, 'mail.example.test')
    for (const san of ['DNS:mail.example.test', 'DNS:localhost', 'IP Address:127.0.0.1'])
      assert.ok(cert.subjectaltname?.includes(san), `${san} in ${cert.subjectaltname}`)

    const again = captureLog()
    const second = await createCertificateService({
      tls: tlsConfig(),
      hostname: 'mail.example.test',
      dataDir,
      log: again.log,
    })
    track(second)
    assert.equal(second.info().fingerprint256, info.fingerprint256)
    assert.ok(!again.lines.some((l) => l.msg === 'generating a self-signed TLS certificate'))
  })

  it('renews the self-signed certificate within 7 days of expiry', async () => {
    const dataDir = dir()
    const clock = manualClock(Date.now())
    const { log } = captureLog()
    const svc = await createCertificateService({ tls: tlsConfig(), hostname: 'mx.test', dataDir, log, clock })
    track(svc)
    const before = svc.info().fingerprint256
    clock.advance(300 * 86_400_000)
    await svc.reload()
    assert.equal(svc.info().fingerprint256, before, 'still far from expiry: kept')
    clock.advance(60 * 86_400_000)
    await svc.reload()
    assert.notEqual(svc.info().fingerprint256, before)
    assert.equal(svc.info().reload_error, null)
  })

  it('serves the configured certificate files', async () => {
    const d = dir()
    const pair = await makeCert('files.test', keyA)
    writeFileSync(join(d, 'cert.pem'), pair.cert)
    writeFileSync(join(d, 'key.pem'), pair.key)
    const { log } = captureLog()
    const svc = await createCertificateService({
      tls: tlsConfig({ cert_file: join(d, 'cert.pem'), key_file: join(d, 'key.pem') }),
      hostname: 'ignored.test',
      dataDir: d,
      log,
    })
    const { server, port } = await listen(svc)
    track(svc, server)
    const info = svc.info()
    assert.equal(info.source, 'files')
    assert.equal(info.subject, 'CN=files.test')
    assert.equal(info.fingerprint256, fingerprintOf(pair.cert))
    assert.equal((await peer(port)).fingerprint256, fingerprintOf(pair.cert))
    assert.equal((await peer(port, 'anything.test')).fingerprint256, fingerprintOf(pair.cert))
  })

  it('names the files and the problem when they cannot be used', async () => {
    const d = dir()
    const a = await makeCert('a.test', keyA)
    const cert = join(d, 'a.crt')
    writeFileSync(cert, a.cert)
    writeFileSync(join(d, 'b.key'), keyB.privateKey)
    writeFileSync(join(d, 'junk.pem'), 'hello\n')
    const { log } = captureLog()
    const attempt = (cert_file: string, key_file: string) =>
      createCertificateService({ tls: tlsConfig({ cert_file, key_file }), hostname: 'h', dataDir: d, log })

    await assert.rejects(attempt(cert, join(d, 'b.key')), (err: unknown) => {
      assert.ok(err instanceof TlsError)
      assert.match(
        err.message,
        /tls\.key_file .*b\.key does not match the certificate in tls\.cert_file .*a\.crt/,
      )
      return true
    })
    await assert.rejects(
      attempt(cert, join(d, 'missing.key')),
      /tls\.key_file .*missing\.key: cannot read \(ENOENT\)/,
    )
    await assert.rejects(
      attempt(join(d, 'junk.pem'), join(d, 'b.key')),
      /tls\.cert_file .*junk\.pem: not a PEM certificate/,
    )
    await assert.rejects(
      attempt(cert, join(d, 'junk.pem')),
      /tls\.key_file .*junk\.pem: not a PEM private key/,
    )
  })

  it('picks the SNI certificate by server name and falls back to the default', async () => {
    const d = dir()
    const sni = join(d, 'sni')
    mkdirSync(sni)
    const def = await makeCert('default.test', keyA)
    const host = await makeCert('a.test', keyB)
    const wild = await makeCert('*.w.test', keyA)
    writeFileSync(join(d, 'default.crt'), def.cert)
    writeFileSync(join(d, 'default.key'), def.key)
    writeFileSync(join(sni, 'a.test.crt'), host.cert)
    writeFileSync(join(sni, 'a.test.key'), host.key)
    writeFileSync(join(sni, '_wildcard.w.test.crt'), wild.cert)
    writeFileSync(join(sni, '_wildcard.w.test.key'), wild.key)
    writeFileSync(join(sni, 'README'), 'not a certificate')
    const { log } = captureLog()
    const svc = await createCertificateService({
      tls: tlsConfig({ cert_file: join(d, 'default.crt'), key_file: join(d, 'default.key'), sni_dir: sni }),
      hostname: 'default.test',
      dataDir: d,
      log,
    })
    const { server, port } = await listen(svc)
    track(svc, server)
    assert.deepEqual(svc.info().sni_hosts, ['*.w.test', 'a.test'])

    const fp = {
      def: fingerprintOf(def.cert),
      host: fingerprintOf(host.cert),
      wild: fingerprintOf(wild.cert),
    }
    assert.equal((await peer(port, 'a.test')).fingerprint256, fp.host)
    assert.equal((await peer(port, 'A.Test')).fingerprint256, fp.host)
    assert.equal((await peer(port, 'x.w.test')).fingerprint256, fp.wild)
    assert.equal((await peer(port, 'y.x.w.test')).fingerprint256, fp.def, 'a wildcard covers one label only')
    assert.equal((await peer(port, 'w.test')).fingerprint256, fp.def)
    assert.equal((await peer(port, 'unknown.test')).fingerprint256, fp.def)
    assert.equal((await peer(port)).fingerprint256, fp.def)

    // STARTTLS path: a TLSSocket made per connection from serverOptions().
    const plain = createNetServer((raw) => {
      const s = new TLSSocket(raw, { isServer: true, ...svc.serverOptions() })
      s.on('secure', () => s.end())
      s.on('error', () => {})
    })
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => plain.close())
    const plainPort = (plain.address() as { port: number }).port
    assert.equal((await peer(plainPort, 'a.test')).fingerprint256, fp.host)
    assert.equal((await peer(plainPort)).fingerprint256, fp.def)
  })

  it('rejects an SNI folder with a certificate but no key', async () => {
    const d = dir()
    const pair = await makeCert('lonely.test', keyA)
    writeFileSync(join(d, 'lonely.test.crt'), pair.cert)
    const { log } = captureLog()
    await assert.rejects(
      createCertificateService({ tls: tlsConfig({ sni_dir: d }), hostname: 'h.test', dataDir: dir(), log }),
      /lonely\.test\.crt: no lonely\.test\.key next to it/,
    )
  })

  it('picks up changed files on disk and keeps the old certificate when new files are broken', async () => {
    const d = dir()
    const sni = join(d, 'sni')
    mkdirSync(sni)
    const certFile = join(d, 'cert.pem')
    const keyFile = join(d, 'key.pem')
    const v1 = await makeCert('v1.test', keyA)
    writeFileSync(certFile, v1.cert)
    writeFileSync(keyFile, v1.key)
    const { log, lines } = captureLog()
    const svc = await createCertificateService({
      tls: tlsConfig({ cert_file: certFile, key_file: keyFile, sni_dir: sni, watch_interval_ms: 50 }),
      hostname: 'v1.test',
      dataDir: d,
      log,
    })
    const { server, port } = await listen(svc)
    track(svc, server)
    assert.equal((await peer(port)).fingerprint256, fingerprintOf(v1.cert))

    // A new certificate and key (another key pair), written one after the other.
    const v2 = await makeCert('v2.test', keyB)
    put(keyFile, v2.key)
    put(certFile, v2.cert)
    await eventually(async () => (await peer(port)).fingerprint256 === fingerprintOf(v2.cert), 'v2 served')
    assert.equal(svc.info().subject, 'CN=v2.test')
    assert.equal((await peer(port, 'whatever.test')).fingerprint256, fingerprintOf(v2.cert))

    // A per-host pair dropped into the SNI folder.
    const host = await makeCert('new.test', keyA)
    put(join(sni, 'new.test.key'), host.key)
    put(join(sni, 'new.test.crt'), host.cert)
    await eventually(async () => svc.info().sni_hosts.includes('new.test'), 'new SNI host loaded')
    assert.equal((await peer(port, 'new.test')).fingerprint256, fingerprintOf(host.cert))

    // A broken certificate: the watcher's reload fails, v2 stays.
    put(certFile, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n')
    await eventually(async () => svc.info().reload_error !== null, 'reload error reported')
    await svc.reload()
    assert.match(svc.info().reload_error ?? '', /tls\.cert_file .*cert\.pem: certificate 1 is not valid PEM/)
    assert.ok(lines.some((l) => l.level === 'error' && /reload failed/.test(l.msg)))
    assert.equal(svc.info().fingerprint256, fingerprintOf(v2.cert))
    assert.equal((await peer(port)).fingerprint256, fingerprintOf(v2.cert))
    assert.equal((await peer(port, 'new.test')).fingerprint256, fingerprintOf(host.cert))

    // Fixed again: picked up, error cleared.
    const v3 = await makeCert('v3.test', keyB)
    put(certFile, v3.cert)
    await eventually(async () => (await peer(port)).fingerprint256 === fingerprintOf(v3.cert), 'v3 served')
    assert.equal(svc.info().reload_error, null)

    // After close() changes are no longer followed.
    svc.close()
    put(certFile, v2.cert)
    await new Promise((r) => setTimeout(r, 250))
    assert.equal(svc.info().fingerprint256, fingerprintOf(v3.cert))
  })
})
