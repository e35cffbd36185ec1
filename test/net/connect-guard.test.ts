import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import net from 'node:net'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  ConnectRefusedError,
  createConnectGuard,
  isPrivateOrLocal,
  parseCidr,
} from '../../src/net/connect-guard.ts'

const loopbackOnly = ['127.0.0.0/8', '::1/128']

describe('isPrivateOrLocal', () => {
  const cases: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['10.0.0.1', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.1.1', true],
    ['100.64.0.1', true],
    ['100.127.255.255', true],
    ['100.128.0.1', false],
    ['169.254.169.254', true],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['8.8.8.8', false],
    ['192.0.2.1', false],
    ['203.0.113.7', false],
    ['::1', true],
    ['::', true],
    ['fc00::1', true],
    ['fd12:3456::1', true],
    ['fe80::1', true],
    ['fe80::1%eth0', true],
    ['ff02::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:10.1.2.3', true],
    ['::ffff:192.168.0.1', true],
    ['::ffff:8.8.8.8', false],
    ['2001:db8::1', false],
    ['2a00:1450:4001:81a::200e', false],
    ['example.com', true],
    ['', true],
  ]
  for (const [ip, expected] of cases) {
    test(`${ip || "''"} -> ${expected}`, () => assert.equal(isPrivateOrLocal(ip), expected))
  }
})

describe('parseCidr', () => {
  test('accepts CIDRs and bare addresses', () => {
    assert.deepEqual(parseCidr('127.0.0.0/8'), { address: '127.0.0.0', prefix: 8, family: 'ipv4' })
    assert.deepEqual(parseCidr('::1/128'), { address: '::1', prefix: 128, family: 'ipv6' })
    assert.deepEqual(parseCidr('192.0.2.7'), { address: '192.0.2.7', prefix: 32, family: 'ipv4' })
    assert.deepEqual(parseCidr('0.0.0.0/0'), { address: '0.0.0.0', prefix: 0, family: 'ipv4' })
  })
  test('rejects malformed entries', () => {
    for (const bad of [
      '127.0.0.0/33',
      '::/129',
      'localhost/8',
      '10.0.0.0/8/8',
      '10.0.0.0/',
      '10.0.0.0/-1',
      '',
    ]) {
      assert.equal(parseCidr(bad), null, bad)
    }
  })
  test('a bad allow entry is a config error naming the key', () => {
    assert.throws(
      () => createConnectGuard({ allow: ['10.0.0.0/40'] }),
      /net\.connect_allow: '10\.0\.0\.0\/40'/,
    )
  })
})

describe('connect guard', () => {
  const guard = createConnectGuard({ allow: loopbackOnly })
  let server: net.Server
  let port: number

  before(async () => {
    server = net.createServer((socket) => socket.end('220 hello\r\n'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as net.AddressInfo).port
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  test('allows is a CIDR match, IPv4-mapped IPv6 included', () => {
    const cases: [string, boolean][] = [
      ['127.0.0.1', true],
      ['127.9.9.9', true],
      ['::1', true],
      ['::ffff:127.0.0.1', true],
      ['10.0.0.1', false],
      ['192.0.2.1', false],
      ['::2', false],
      ['localhost', false],
    ]
    for (const [ip, expected] of cases) assert.equal(guard.allows(ip), expected, ip)
  })

  test('check throws ConnectRefusedError naming the address and the config key', () => {
    assert.throws(
      () => guard.check('10.0.0.1'),
      (err: unknown) => {
        assert.ok(err instanceof ConnectRefusedError)
        assert.equal(err.address, '10.0.0.1')
        assert.equal(err.code, 'CONNECT_REFUSED')
        assert.match(err.message, /10\.0\.0\.1/)
        assert.match(err.message, /net\.connect_allow/)
        return true
      },
    )
    assert.doesNotThrow(() => guard.check('127.0.0.1'))
  })

  test('refuses host names and addresses outside the list before opening a socket', async (t) => {
    const connect = t.mock.method(net.Socket.prototype, 'connect')
    for (const host of ['example.com', 'localhost', '10.0.0.1', '192.0.2.1', '::ffff:10.0.0.1']) {
      await assert.rejects(guard.connect({ host, port: 25 }), ConnectRefusedError, host)
    }
    await assert.rejects(guard.connect({ host: 'mx.example.com', port: 25 }), /not an IP address/)
    assert.equal(connect.mock.callCount(), 0)
  })

  test('the unspecified addresses are refused even when everything is allowed', () => {
    const open = createConnectGuard({ allow: ['0.0.0.0/0', '::/0'] })
    assert.equal(open.allows('192.0.2.1'), true)
    assert.equal(open.allows('2001:db8::1'), true)
    assert.equal(open.allows('0.0.0.0'), false)
    assert.equal(open.allows('::'), false)
    assert.equal(open.allows('::ffff:0.0.0.0'), false)
  })

  test('allowPublic: public addresses pass, private ones only when listed', () => {
    const prod = createConnectGuard({ allow: ['10.1.0.0/16'], allowPublic: true })
    const cases: [string, boolean][] = [
      ['192.0.2.1', true],
      ['2001:db8::1', true],
      ['::ffff:8.8.8.8', true],
      ['10.1.2.3', true],
      ['10.2.0.1', false],
      ['127.0.0.1', false],
      ['::1', false],
      ['169.254.169.254', false],
      ['::ffff:192.168.0.1', false],
      ['0.0.0.0', false],
      ['example.com', false],
    ]
    for (const [ip, expected] of cases) assert.equal(prod.allows(ip), expected, ip)
    assert.throws(() => prod.check('127.0.0.1'), /private or local address not in net\.connect_allow/)
  })

  test('connects to an allowed address and resolves with the connected socket', async () => {
    const socket = await guard.connect({ host: '127.0.0.1', port, timeoutMs: 2000 })
    try {
      assert.equal(socket.remoteAddress, '127.0.0.1')
      const greeting = await new Promise<string>((resolve) => {
        let data = ''
        socket.setEncoding('utf8')
        socket.on('data', (chunk: string) => {
          data += chunk
        })
        socket.on('end', () => resolve(data))
      })
      assert.equal(greeting, '220 hello\r\n')
    } finally {
      socket.destroy()
    }
  })

  test('a refused connection rejects with the socket error', async () => {
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const closedPort = (closed.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    await assert.rejects(guard.connect({ host: '127.0.0.1', port: closedPort }), { code: 'ECONNREFUSED' })
  })
})

describe('guard preload (in a child process)', () => {
  const preload = fileURLToPath(new URL('../helpers/guard-preload.ts', import.meta.url))
  // Each probe prints the error code it got, or OK.
  const script = `
import net from 'node:net'
import tls from 'node:tls'
import dns from 'node:dns'
import { lookup, Resolver } from 'node:dns/promises'
const out = {}
const probe = async (name, fn) => {
  try { await fn(); out[name] = 'OK' } catch (e) { out[name] = e.cause?.code ?? e.code ?? e.message }
}
const server = net.createServer((s) => s.end()).listen(0, '127.0.0.1')
await new Promise((r) => server.once('listening', r))
const { port } = server.address()
const connected = (s) => new Promise((res, rej) => s.once('connect', () => { s.destroy(); res() }).once('error', rej))
await probe('netPublic', () => net.connect(80, '192.0.2.1'))
await probe('netPrivate', () => net.connect({ host: '10.0.0.1', port: 80 }))
await probe('netName', () => net.connect(80, 'example.com'))
await probe('socketConnect', () => new net.Socket().connect(80, '192.0.2.1'))
await probe('tls', () => tls.connect(443, '192.0.2.1'))
await probe('fetchPublic', () => fetch('http://192.0.2.1/'))
await probe('fetchName', () => fetch('http://example.com/'))
await probe('lookup', () => lookup('example.com'))
await probe('lookupCallback', () => dns.lookup('example.com', () => {}))
await probe('newResolver', () => { const r = new Resolver(); r.setServers(['192.0.2.53']); return r.resolve4('example.com') })
await probe('stubResolver', () => { const r = new Resolver(); r.setServers(['127.0.0.53']); return r.resolve4('example.com') })
await probe('defaultResolver', () => dns.promises.resolveMx('example.com'))
await probe('setServersThenResolve', () => { dns.setServers(['192.0.2.53']); return new Promise((res, rej) => dns.resolve4('example.com', (e) => (e ? rej(e) : res()))) })
await probe('loopback', () => connected(net.connect(port, '127.0.0.1')))
await probe('localhost', () => connected(net.connect(port, 'localhost')))
await probe('fetchLoopback', () => fetch('http://127.0.0.1:' + port + '/').catch((e) => { if (e.cause?.code === 'ERR_TEST_NETWORK_REFUSED') throw e }))
await probe('unixSocket', () => new Promise((res) => { const s = net.connect('/nonexistent/postern.sock'); s.once('error', () => res()) }))
server.close()
console.log(JSON.stringify(out))
`

  test('refuses everything off loopback, allows loopback, localhost and Unix sockets', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', preload, '--input-type=module', '-e', script],
      { timeout: 20_000 },
    )
    const refused = 'ERR_TEST_NETWORK_REFUSED'
    assert.deepEqual(JSON.parse(stdout), {
      netPublic: refused,
      netPrivate: refused,
      netName: refused,
      socketConnect: refused,
      tls: refused,
      fetchPublic: refused,
      fetchName: refused,
      lookup: refused,
      lookupCallback: refused,
      newResolver: refused,
      stubResolver: refused,
      defaultResolver: 'ECONNREFUSED',
      setServersThenResolve: refused,
      loopback: 'OK',
      localhost: 'OK',
      fetchLoopback: 'OK',
      unixSocket: 'OK',
    })
  })
})
