/**
 * pveproxy stand-in (run by pveproxy.service in the lab node): port 8006
 * like Proxmox's API proxy. HTTPS with the node's certificate
 * (/etc/pve/local/pveproxy-ssl.pem if present, else pve-ssl.pem, as
 * pveproxy chooses), /api2/json requests proxied to pvedaemon on
 * 127.0.0.1:85 with the client's address in the PVEClientIP header
 * (pve-http-server AnyEvent.pm proxy_request). No web UI: anything else
 * answers 501, and so does a plain-HTTP request on the same port (the lab
 * keeps that for reachability probes). Every request is logged to
 * /var/log/pveproxy/access.log in pveproxy's format (AnyEvent.pm log_request):
 *   ::ffff:10.77.9.1 - root@pam [03/12/2026:09:14:07 +0000] "GET /api2/json/version HTTP/1.1" 200 97
 */
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';

const LOG_DIR = process.env.PVE_LAB_PVEPROXY_LOG_DIR ?? '/var/log/pveproxy';
const LOG = `${LOG_DIR}/access.log`;
const BODY = 'pve-baseline lab: pveproxy stand-in (no web UI)\n';
const LOCAL = process.env.PVE_LAB_NODE_DIR ?? '/etc/pve/local';
const DAEMON_PORT = Number(process.env.PVE_LAB_PVEDAEMON_PORT ?? 85);

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

function logRequest(req: IncomingMessage, status: number, length: number, userid = '-'): void {
  try {
    ensureLog();
    appendFileSync(LOG, `${req.socket.remoteAddress ?? '-'} - ${userid} [${timestamp(new Date())}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status} ${length}\n`);
  } catch {
    /* a full disk must not stop the proxy */
  }
}

function notImplemented(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(501, { 'Content-Type': 'text/plain' });
  res.end(BODY);
  logRequest(req, 501, Buffer.byteLength(BODY));
}

/** proxy_request: to pvedaemon, the client's address passed along */
function proxy(req: IncomingMessage, res: ServerResponse): void {
  const headers = { ...req.headers };
  delete headers.pveclientip; // only ours counts
  delete headers['x-pve-lab-userid'];
  headers.pveclientip = req.socket.remoteAddress ?? '';
  headers.pvedisableproxy = 'true';
  const up = request({ host: '127.0.0.1', port: DAEMON_PORT, method: req.method, path: req.url, headers }, (ures) => {
    const userid = ures.headers['x-pve-lab-userid'];
    const out = { ...ures.headers };
    // the body is passed on whole, with its length: no chunked encoding, no connection state of the inner hop
    for (const h of ['x-pve-lab-userid', 'transfer-encoding', 'connection', 'keep-alive']) delete out[h];
    const chunks: Buffer[] = [];
    ures.on('data', (c: Buffer) => chunks.push(c));
    ures.on('end', () => {
      const body = Buffer.concat(chunks);
      out['content-length'] = String(body.length);
      res.writeHead(ures.statusCode ?? 500, ures.statusMessage, out);
      res.end(body);
      logRequest(req, ures.statusCode ?? 500, body.length, typeof userid === 'string' ? userid : '-');
    });
  });
  up.on('error', () => {
    const body = JSON.stringify({ data: null, message: 'proxy error\n' });
    res.writeHead(500, 'proxy error', { 'Content-Type': 'application/json;charset=UTF-8' });
    res.end(body);
    logRequest(req, 500, Buffer.byteLength(body));
  });
  req.pipe(up);
}

function certificate(): { cert: Buffer; key: Buffer } {
  for (const base of ['pveproxy-ssl', 'pve-ssl']) {
    try {
      return { cert: readFileSync(`${LOCAL}/${base}.pem`), key: readFileSync(`${LOCAL}/${base}.key`) };
    } catch {
      /* next */
    }
  }
  throw new Error(`no certificate in ${LOCAL}`);
}

const plain = createHttpServer(notImplemented);
const tls = createHttpsServer(certificate(), (req, res) => {
  if (/^\/api2\/json(\/|$|\?)/.test(req.url ?? '')) proxy(req, res);
  else notImplemented(req, res);
});

// one port, both protocols: a TLS handshake starts with 0x16
const server = createNetServer((socket) => {
  socket.once('data', (first: Buffer) => {
    socket.pause();
    socket.unshift(first);
    (first[0] === 0x16 ? tls : plain).emit('connection', socket);
    process.nextTick(() => socket.resume());
  });
  socket.on('error', () => socket.destroy());
});
server.listen(Number(process.env.PVE_LAB_PVEPROXY_PORT ?? 8006));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
