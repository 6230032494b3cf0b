/**
 * The lab node's package servers (pve-lab-mirror.service): deb.debian.org,
 * security.debian.org, download.proxmox.com and enterprise.proxmox.com, each
 * on a loopback address of the node's own namespace that /etc/hosts gives
 * the name (recipe/apt-world.ts MIRROR_HOSTS), so apt on the node uses the
 * repositories a real node lists and no packet leaves the namespace.
 *
 *   http://<host>/...             files under /srv/pve-lab-repo/<host>/ (GET, HEAD, If-Modified-Since)
 *   https://enterprise.proxmox.com  the same for the enterprise repositories, but only for a request
 *                                 that carries the node's subscription key and server id (apt sends
 *                                 them from /etc/apt/auth.conf.d/pve.conf, which `pvesubscription set`
 *                                 writes); anything else answers 401 Unauthorized, as the real one
 *                                 does for a node without a subscription
 *
 * Each request is one line on standard output (the journal):
 *   GET enterprise.proxmox.com /debian/pve/dists/trixie/InRelease 401
 * A test may slow the downloads (Lab.slowUpgrade): THROTTLE_FILE holds bytes per second, read at each request.
 * Environment (tests): PVE_LAB_MIRROR_ROOT, PVE_LAB_MIRROR_TLS (dir with cert.pem/key.pem),
 * PVE_LAB_MIRROR_READY_FILE (written once every port listens), PVE_LAB_SUBSCRIPTION.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, createReadStream, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join, normalize } from 'node:path';
import { Transform } from 'node:stream';
import { MIRROR_HOSTS, MIRROR_ROOT, THROTTLE_FILE } from '../recipe/apt-world.ts';
import { readSubscription } from './lib/subscription.ts';

const ROOT = process.env.PVE_LAB_MIRROR_ROOT ?? MIRROR_ROOT;
const TLS = process.env.PVE_LAB_MIRROR_TLS ?? '/etc/pve-lab-mirror';
const ENTERPRISE = 'enterprise.proxmox.com';

function log(req: IncomingMessage, host: string, status: number): void {
  process.stdout.write(`${req.method} ${host} ${req.url} ${status}\n`);
}

function plain(res: ServerResponse, status: number, reason: string, headers: Record<string, string> = {}): void {
  const body = `${status} ${reason}\n`;
  res.writeHead(status, reason, { 'Content-Type': 'text/plain', 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

/** Basic credentials as apt sends them from auth.conf: the key as login, the server id as password. */
function authorized(req: IncomingMessage): boolean {
  const sub = readSubscription();
  if (sub?.status !== 'active') return false;
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const [login, ...rest] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
  return login === sub.key && rest.join(':') === sub.serverid;
}

function handle(req: IncomingMessage, res: ServerResponse, tls: boolean): void {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  const done = (status: number) => log(req, host, status);
  if (!(host in MIRROR_HOSTS)) {
    plain(res, 404, 'Not Found');
    return done(404);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    plain(res, 405, 'Method Not Allowed');
    return done(405);
  }
  if (host === ENTERPRISE && (!tls || !authorized(req))) {
    plain(res, 401, 'Unauthorized', { 'WWW-Authenticate': 'Basic realm="Proxmox Enterprise Repository"' });
    return done(401);
  }
  const urlPath = decodeURIComponent((req.url ?? '/').split('?')[0]!);
  const rel = normalize(urlPath);
  if (!rel.startsWith('/') || rel.split('/').includes('..')) {
    plain(res, 400, 'Bad Request');
    return done(400);
  }
  const file = join(ROOT, host, rel);
  let st;
  try {
    st = statSync(file);
  } catch {
    st = undefined;
  }
  if (!st?.isFile()) {
    plain(res, 404, 'Not Found');
    return done(404);
  }
  const mtime = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
  const since = req.headers['if-modified-since'] ? Date.parse(req.headers['if-modified-since']) : NaN;
  if (!Number.isNaN(since) && mtime.getTime() <= since) {
    res.writeHead(304, { 'Last-Modified': mtime.toUTCString() });
    res.end();
    return done(304);
  }
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(st.size), 'Last-Modified': mtime.toUTCString() });
  done(200);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const rate = throttle();
  const body = createReadStream(file).on('error', () => res.destroy());
  (rate ? body.pipe(paced(rate)) : body).pipe(res);
}

function throttle(): number | undefined {
  try {
    const n = Number(readFileSync(THROTTLE_FILE, 'utf8').trim());
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Passes data on at `rate` bytes per second, in tenths of a second. */
function paced(rate: number): Transform {
  const slice = Math.max(1, Math.floor(rate / 10));
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      const parts: Buffer[] = [];
      for (let i = 0; i < chunk.length; i += slice) parts.push(chunk.subarray(i, i + slice));
      const next = () => {
        const part = parts.shift();
        if (!part) return callback();
        this.push(part);
        setTimeout(next, 100);
      };
      next();
    },
  });
}

const listening: Promise<void>[] = [];
function listen(server: ReturnType<typeof createHttpServer>, port: number, address: string): void {
  listening.push(
    new Promise((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolveListen());
    }),
  );
}

const cert = { cert: readFileSync(join(TLS, 'cert.pem')), key: readFileSync(join(TLS, 'key.pem')) };
for (const [name, address] of Object.entries(MIRROR_HOSTS)) {
  // every name answers plain HTTP (apt's http:// sources) and HTTPS (the enterprise repositories)
  listen(createHttpServer((req, res) => handle(req, res, false)), 80, address);
  listen(createHttpsServer(cert, (req, res) => handle(req, res, true)) as unknown as ReturnType<typeof createHttpServer>, 443, address);
  void name;
}

await Promise.all(listening);
if (process.env.PVE_LAB_MIRROR_READY_FILE) writeFileSync(process.env.PVE_LAB_MIRROR_READY_FILE, `${process.pid}\n`);
if (process.env.NOTIFY_SOCKET) {
  // Type=notify: the unit is started only once every port listens, so the boot waits for it
  try {
    execFileSync('systemd-notify', ['--ready', `--pid=${process.pid}`], { stdio: 'ignore' });
  } catch {
    /* not under systemd */
  }
}
process.stdout.write(`listening on ${Object.values(MIRROR_HOSTS).join(', ')} ports 80 and 443\n`);
