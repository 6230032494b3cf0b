/**
 * pveproxy stand-in (run by pveproxy.service in the lab node): listens on
 * port 8006 like Proxmox's API proxy, so reachability (firewall) checks have
 * something to reach, and logs every request to /var/log/pveproxy/access.log
 * in pveproxy's format (pve-http-server's AnyEvent.pm log_request):
 *   ::ffff:10.77.9.1 - - [03/12/2026:09:14:07 +0000] "GET / HTTP/1.1" 501 58
 * It serves no web UI and no API.
 */
import { appendFileSync, chownSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';

const LOG_DIR = '/var/log/pveproxy';
const LOG = `${LOG_DIR}/access.log`;
const BODY = 'pve-baseline lab: pveproxy stand-in (no web UI, no API)\n';

function ensureLog(): void {
  if (existsSync(LOG)) return;
  mkdirSync(LOG_DIR, { recursive: true, mode: 0o755 });
  appendFileSync(LOG, '', { mode: 0o640 });
  try {
    chownSync(LOG_DIR, 33, 33); // www-data, as Debian's pve-manager leaves it
    chownSync(LOG, 33, 33);
  } catch {
    /* not root: keep ours */
  }
}

const two = (n: number) => String(n).padStart(2, '0');
function timestamp(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  return `${two(d.getDate())}/${two(d.getMonth() + 1)}/${d.getFullYear()}:${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${sign}${two(Math.trunc(Math.abs(off) / 60))}${two(Math.abs(off) % 60)}`;
}

const server = createServer((req, res) => {
  res.writeHead(501, { 'Content-Type': 'text/plain' });
  res.end(BODY);
  try {
    ensureLog();
    appendFileSync(LOG, `${req.socket.remoteAddress ?? '-'} - - [${timestamp(new Date())}] "${req.method} ${req.url} HTTP/${req.httpVersion}" 501 ${Buffer.byteLength(BODY)}\n`);
  } catch {
    /* a full disk must not stop the proxy */
  }
});
server.listen(8006);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
