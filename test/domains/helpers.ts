// Shared steps of the management-plane tests: publish a domain's records in the loopback DNS
// server, and create an org with a verified domain.

import assert from 'node:assert/strict'
import type { Api } from '../helpers/api.ts'
import type { DnsServer } from '../helpers/dns-server.ts'

interface Rec {
  type: string
  name: string
  value: string
}

/** Publishes every record the API asked for. */
export function publish(dns: DnsServer, records: Rec[]): void {
  const byName = new Map<string, Rec[]>()
  for (const r of records)
    byName.set(`${r.name} ${r.type}`, [...(byName.get(`${r.name} ${r.type}`) ?? []), r])
  for (const list of byName.values()) {
    const { name, type } = list[0] as Rec
    if (type === 'TXT')
      dns.set(
        name,
        'TXT',
        list.map((r) => [r.value]),
      )
    else if (type === 'MX')
      dns.set(
        name,
        'MX',
        list.map((r) => {
          const [priority, exchange] = r.value.split(' ')
          return { priority: Number(priority), exchange: exchange as string }
        }),
      )
    else if (type === 'CNAME')
      dns.set(
        name,
        'CNAME',
        list.map((r) => r.value),
      )
    else if (type === 'SRV')
      dns.set(
        name,
        'SRV',
        list.map((r) => {
          const [priority, weight, port, target] = r.value.split(' ')
          return {
            priority: Number(priority),
            weight: Number(weight),
            port: Number(port),
            target: target as string,
          }
        }),
      )
  }
}

/** Adds a domain through the API, publishes its records and verifies it. */
export async function verifiedDomain(
  api: Api,
  dns: DnsServer,
  name: string,
): Promise<{ id: string; name: string }> {
  const created = await api.post('/v1/domains', { name })
  assert.equal(created.status, 201, created.text)
  const records = await api.get(`/v1/domains/${created.body.id}/dns-records`)
  publish(dns, records.body.records)
  const v = await api.post(`/v1/domains/${created.body.id}/verify`)
  assert.equal(v.status, 200, v.text)
  return { id: created.body.id, name: created.body.name }
}
