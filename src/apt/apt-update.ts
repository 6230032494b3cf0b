/**
 * What `apt-get update` says about each repository: its output (apt 2.x
 * prefixes `E:`/`W:`/`N:`, apt 3 on trixie `Error:`/`Warning:`/`Notice:`)
 * read into one failure per repository, so a step can say "the enterprise
 * repository refuses this node: it has no subscription" instead of showing
 * apt's lines.
 *
 *   Err:3 https://enterprise.proxmox.com/debian/pve trixie InRelease
 *     401  Unauthorized [IP: 66.70.154.82 443]
 *   E: Failed to fetch https://enterprise.proxmox.com/debian/pve/dists/trixie/InRelease  401  Unauthorized [IP: 66.70.154.82 443]
 *   E: The repository 'https://enterprise.proxmox.com/debian/pve trixie InRelease' is not signed.
 */

export type UpdateProblem =
  /** 401/403: the server refuses this node (the enterprise repositories without a subscription). */
  | 'unauthorized'
  /** 404: no such suite or component there (a wrong release name, `pvetest` on PVE 9). */
  | 'not-found'
  /** Name resolution, connection or time-out. */
  | 'unreachable'
  /** No Release file, or an unsigned one: apt refuses the repository. */
  | 'unsigned'
  /** The key that signs it is not trusted here (NO_PUBKEY, a bad or expired signature). */
  | 'key'
  /** The Release file changed its Origin, Label, Suite or Codename; or is not valid yet / expired. */
  | 'release'
  | 'other';

export interface UpdateFailure {
  uri: string;
  suite: string;
  problem: UpdateProblem;
  /** apt's own words, first seen, shortened to one line. */
  detail: string;
}

const PREFIX = /^(E|W|Err|Error|Warning|N|Notice):\s?(.*)$/;

/** Split "https://host/path/dists/SUITE/InRelease" back into the repository's URI and suite. */
export function splitFetchUrl(url: string): { uri: string; suite: string } | null {
  const m = /^(\S+?)\/dists\/(.+?)\/(?:InRelease|Release(?:\.gpg)?|[^/]+\/binary-[^/]+\/Packages\S*|[^/]+\/source\/Sources\S*|[^/]+\/i18n\/\S+|[^/]+\/Contents-\S+|[^/]+\/dep11\/\S+|[^/]+\/cnf\/\S+|by-hash\/\S+)$/.exec(url);
  if (m) return { uri: m[1]!, suite: m[2]! };
  return null;
}

function problemOf(text: string): UpdateProblem {
  if (/\b40[13]\b|Unauthorized|Forbidden/i.test(text)) return 'unauthorized';
  if (/\b404\b|Not Found|does not have a Release file/i.test(text)) return /does not have a Release file/.test(text) ? 'unsigned' : 'not-found';
  if (/Could not resolve|Temporary failure resolving|Could not connect|Connection (timed out|refused|failed)|Failed to connect|Network is unreachable|No route to host|timed out/i.test(text)) return 'unreachable';
  if (/NO_PUBKEY|EXPKEYSIG|BADSIG|signatures were invalid|signature could(n't| not) be verified|not signed by|Missing key|OpenPGP signature verification failed/i.test(text)) return 'key';
  if (/is not signed|no longer signed/i.test(text)) return 'unsigned';
  if (/changed its '(Origin|Label|Suite|Codename|Version)' value|is not valid yet|is expired/i.test(text)) return 'release';
  return 'other';
}

/** Which problem wins when one repository has several lines: the most specific. */
const RANK: Record<UpdateProblem, number> = { unauthorized: 7, 'not-found': 6, unreachable: 5, key: 4, release: 3, unsigned: 2, other: 1 };

/**
 * Read `apt-get update`'s output (stdout and stderr together) into failures,
 * one per repository (URI and suite); a repository apt only warns about
 * (`W:`) counts as failing too, since apt then does not use its new index.
 */
export function parseAptUpdate(output: string): UpdateFailure[] {
  const byRepo = new Map<string, UpdateFailure>();
  const add = (uri: string, suite: string, text: string) => {
    const key = `${uri.replace(/\/+$/, '')} ${suite}`;
    const problem = problemOf(text);
    const detail = text.replace(/\s+/g, ' ').trim().slice(0, 300);
    const seen = byRepo.get(key);
    if (!seen) byRepo.set(key, { uri: uri.replace(/\/+$/, ''), suite, problem, detail });
    else if (RANK[problem] > RANK[seen.problem]) byRepo.set(key, { ...seen, problem, detail });
  };
  const lines = output.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    // Err:3 URI SUITE [COMPONENT ARCH] WHAT, then the reason indented on the next line(s)
    const err = /^Err:\d+\s+(\S+)\s+(\S+)\s+(.*)$/.exec(line);
    if (err) {
      const reasons: string[] = [];
      while (i + 1 < lines.length && /^\s+\S/.test(lines[i + 1]!)) reasons.push(lines[++i]!.trim());
      add(err[1]!, err[2]!, reasons.join(' ') || err[3]!);
      continue;
    }
    const prefixed = PREFIX.exec(line);
    if (!prefixed || prefixed[1] === 'N' || prefixed[1] === 'Notice') continue;
    const text = prefixed[2]!;
    const fetch = /Failed to fetch (\S+)\s+(.*)$/.exec(text);
    if (fetch) {
      const repo = splitFetchUrl(fetch[1]!);
      if (repo) add(repo.uri, repo.suite, fetch[2]!);
      continue;
    }
    // The repository 'URI SUITE InRelease' is not signed. / ... does not have a Release file.
    const named = /repository '(\S+) (\S+)(?: [^']*)?'/.exec(text);
    if (named) {
      add(named[1]!, named[2]!, text);
      continue;
    }
    // GPG error: URI SUITE InRelease: The following signatures couldn't be verified ... NO_PUBKEY ...
    const gpg = /GPG error: (\S+) (\S+)(?: \S+)?: (.*)$/.exec(text);
    if (gpg) add(gpg[1]!, gpg[2]!, gpg[3]!);
  }
  return [...byRepo.values()];
}

/** The failure of a repository, matched by URI (trailing slashes ignored) and suite. */
export function failureFor(failures: readonly UpdateFailure[], uri: string, suite: string): UpdateFailure | undefined {
  const u = uri.replace(/\/+$/, '');
  return failures.find((f) => f.uri === u && f.suite === suite);
}

/** In the operator's terms: what the failure means for this repository. */
export function explainFailure(f: UpdateFailure): string {
  const where = `${f.uri} ${f.suite}`;
  switch (f.problem) {
    case 'unauthorized':
      return /enterprise\.proxmox\.com/.test(f.uri)
        ? `the enterprise repository ${where} refuses this node: it has no active subscription (${f.detail})`
        : `${where} refuses this node (${f.detail})`;
    case 'not-found':
      return `${where} has no such suite or component (${f.detail})`;
    case 'unreachable':
      return `${where} cannot be reached from this node (${f.detail})`;
    case 'unsigned':
      return `${where} is not signed or has no Release file, so apt will not use it (${f.detail})`;
    case 'key':
      return `${where} is signed by a key this node does not trust (${f.detail})`;
    case 'release':
      return `${where} has a Release file apt does not accept as it is (${f.detail})`;
    default:
      return `${where}: ${f.detail}`;
  }
}
