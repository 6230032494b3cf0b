/**
 * pvedaemon stand-in (pvedaemon.service in the lab node): the API server
 * that runs as root behind pveproxy, on 127.0.0.1:85 like Proxmox's
 * (pve-manager PVE/Service/pvedaemon.pm), trusting the client address
 * pveproxy passes in the PVEClientIP header (pve-http-server AnyEvent.pm,
 * trusted_env). The work is in lib/http-api.ts.
 *
 * Its syslog() goes to the journal through stderr with sd-daemon priority
 * prefixes ("<3>" = err), under SyslogIdentifier=pvedaemon, so
 * `journalctl -u pvedaemon.service -p err` shows the authentication failures
 * as Proxmox's `syslog('err', "authentication failure; rhost=...")` does.
 */
import { createServer } from 'node:http';
import { handleApi } from './lib/http-api.ts';
import { setSyslog } from './lib/auth.ts';

process.title = 'pvedaemon';

const PRIORITY = { err: 3, warning: 4, info: 6 } as const;
setSyslog((priority, message) => {
  // one journal entry per line; a message never spans lines
  process.stderr.write(`<${PRIORITY[priority]}>${message.replace(/[\r\n]+/g, ' ')}\n`);
});

const PORT = Number(process.env.PVE_LAB_PVEDAEMON_PORT ?? 85);
const MAX_BODY = 64 * 1024;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) {
      res.writeHead(413, 'Request Entity Too Large');
      res.end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const peer = req.socket.remoteAddress ?? '';
    const trusted = peer === '127.0.0.1' || peer === '::1' || peer === '::ffff:127.0.0.1';
    const given = req.headers.pveclientip;
    const clientIp = trusted && typeof given === 'string' && given ? given : peer;
    const m = /^\/api2\/json(\/.*)?$/.exec(url.pathname);
    let out;
    try {
      out = m
        ? handleApi({ method: req.method ?? 'GET', path: m[1] ?? '/', query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks), clientIp })
        : { status: 501, reason: 'no such uri', body: JSON.stringify({ data: null, message: 'no such uri\n' }) };
    } catch (err) {
      process.stderr.write(`<3>${err instanceof Error ? err.message : String(err)}\n`);
      out = { status: 500, reason: 'Internal Server Error', body: JSON.stringify({ data: null }) };
    }
    const send = () => {
      const headers: Record<string, string> = { 'Content-Type': 'application/json;charset=UTF-8', 'Cache-Control': 'max-age=0', Pragma: 'no-cache' };
      if ('userid' in out && out.userid) headers['X-PVE-Lab-Userid'] = out.userid;
      res.writeHead(out.status, out.reason.replace(/[^\x20-\x7e]/g, ' '), headers);
      res.end(out.body);
    };
    const delay = 'delayMs' in out ? out.delayMs : undefined;
    if (delay) setTimeout(send, delay);
    else send();
  });
});
server.listen(PORT, process.env.PVE_LAB_PVEDAEMON_HOST ?? '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
