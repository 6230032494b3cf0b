/**
 * The web UI's access log, /var/log/pveproxy/access.log: pveproxy writes one
 * line per request (pve-http-server's AnyEvent.pm log_request), e.g.
 *
 *   ::ffff:10.77.9.1 - root@pam [03/12/2026:09:14:07 +0000] "GET /api2/json/version HTTP/1.1" 200 97
 *
 * A request from the operator's address after the firewall went live proves
 * that the web UI's port still answers them, whoever they log in as.
 */
import type { Exec } from '../system/exec.ts';
import { unmapAddress } from './firewall-rules.ts';

export const PVEPROXY_ACCESS_LOG = '/var/log/pveproxy/access.log';

export interface WebRequest {
  address: string;
  user: string;
  time: Date;
  method: string;
  path: string;
  status: number;
}

// pveproxy's strftime "%d/%m/%Y:%H:%M:%S %z" (day first, month as a number).
const LINE = /^(\S+) - (\S+) \[(\d{2})\/(\d{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "(\S+) (\S+)[^"]*" (\d{3})/;

export function parseAccessLine(line: string): WebRequest | null {
  const m = LINE.exec(line);
  if (!m) return null;
  const [, address, user, dd, mm, yyyy, hh, mi, ss, sign, tzh, tzm, method, path, status] = m as unknown as string[];
  const offset = (sign === '-' ? -1 : 1) * (Number(tzh) * 60 + Number(tzm));
  const utc = Date.UTC(Number(yyyy), Number(mm) - 1, Number(dd), Number(hh), Number(mi), Number(ss)) - offset * 60_000;
  return { address: unmapAddress(address!), user: user!, time: new Date(utc), method: method!, path: path!, status: Number(status) };
}

export interface WebWatchOptions {
  from: string;
  /** Requests at or after this time count (the log has whole seconds: one second of slack). */
  since: Date;
  signal: AbortSignal;
  pollMs?: number;
  log?: string;
}

/** Poll the access log's tail until a request from `from` after `since` appears; null when aborted. */
export async function watchForWebRequest(exec: Exec, opts: WebWatchOptions): Promise<WebRequest | null> {
  const want = unmapAddress(opts.from);
  const cut = opts.since.getTime() - 1000;
  while (!opts.signal.aborted) {
    // The tail only: a busy node's log holds a day of requests.
    const r = await exec.run(['tail', '-n', '2000', '--', opts.log ?? PVEPROXY_ACCESS_LOG], { timeoutMs: 10_000 });
    const seen = r.stdout
      .split('\n')
      .map(parseAccessLine)
      .find((q) => q !== null && q.address === want && q.time.getTime() >= cut);
    if (seen) return seen;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, opts.pollMs ?? 1000);
      opts.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  return null;
}

/** "GET /api2/json/version from 10.77.9.1 (answered 200) at ..." */
export function describeWebRequest(q: WebRequest): string {
  return `${q.method} ${q.path} from ${q.address} (answered ${q.status}${q.user !== '-' ? `, as ${q.user}` : ''}) at ${q.time.toISOString()}`;
}
