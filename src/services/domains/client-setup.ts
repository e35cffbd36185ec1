// Mail-client set-up documents for hosted domains: Thunderbird's autoconfig (config-v1.1.xml)
// and Outlook's autodiscover (POX) response, pointing at this server's host name and ports,
// implicit TLS first. Pure text builders; the HTTP routes serve them for verified domains.

export interface ClientSetupInput {
  domain: string
  mailHost: string
  ports: { submission: number; submissions: number; imap: number; imaps: number }
}

const esc = (s: string) =>
  s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;')

/** Thunderbird autoconfig: https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat */
export function autoconfigXml(i: ClientSetupInput): string {
  const server = (
    tag: 'incomingServer' | 'outgoingServer',
    type: string,
    port: number,
    socket: 'SSL' | 'STARTTLS',
  ) =>
    `    <${tag} type="${type}">
      <hostname>${esc(i.mailHost)}</hostname>
      <port>${port}</port>
      <socketType>${socket}</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </${tag}>`
  return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="${esc(i.domain)}">
    <domain>${esc(i.domain)}</domain>
    <displayName>${esc(i.domain)}</displayName>
    <displayShortName>${esc(i.domain)}</displayShortName>
${server('incomingServer', 'imap', i.ports.imaps, 'SSL')}
${server('incomingServer', 'imap', i.ports.imap, 'STARTTLS')}
${server('outgoingServer', 'smtp', i.ports.submissions, 'SSL')}
${server('outgoingServer', 'smtp', i.ports.submission, 'STARTTLS')}
  </emailProvider>
</clientConfig>
`
}

/** The address an Outlook autodiscover request asks about (<EMailAddress>), or null. */
export function autodiscoverRequestAddress(body: string): string | null {
  const m = /<EMailAddress>\s*([^<\s]{3,320})\s*<\/EMailAddress>/i.exec(body)
  return m ? (m[1] as string) : null
}

/** Outlook autodiscover (POX) response for IMAP and SMTP. */
export function autodiscoverXml(i: ClientSetupInput & { email: string }): string {
  const protocol = (type: 'IMAP' | 'SMTP', port: number) => `      <Protocol>
        <Type>${type}</Type>
        <Server>${esc(i.mailHost)}</Server>
        <Port>${port}</Port>
        <DomainRequired>off</DomainRequired>
        <LoginName>${esc(i.email)}</LoginName>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>${type === 'SMTP' ? '\n        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>' : ''}
      </Protocol>`
  return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
${protocol('IMAP', i.ports.imaps)}
${protocol('SMTP', i.ports.submissions)}
    </Account>
  </Response>
</Autodiscover>
`
}
