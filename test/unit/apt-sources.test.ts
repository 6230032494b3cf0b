/**
 * APT's source files: proxmox-apt's parsers and writer against Proxmox's own
 * test files (proxmox-rs proxmox-apt/tests/sources.list.d and
 * sources.list.d.expected, copied here: parse then write must give the
 * expected file, and writing that again must not change it), its suite
 * checks (tests/repositories.rs), the standard repositories and the API's
 * writes; the byte-preserving editor (src/apt/sources.ts) and its
 * classification; and `apt-get update`'s failures (src/apt/apt-update.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addRepositoryHandle,
  changeRepository,
  checkSuites,
  commonDigest,
  fileTypeOf,
  listRepositories,
  MODIFIED,
  parseRepoFile,
  readRepositories,
  releaseFilename,
  renderRepoFile,
  standardEntries,
  type AptTree,
  type RepoFile,
} from '../../src/apt/repositories.ts';
import { classifySource, parseSourcesDocument, setEntryEnabled } from '../../src/apt/sources.ts';
import { explainFailure, parseAptUpdate } from '../../src/apt/apt-update.ts';
import { DEBIAN_SOURCES, PVE_ENTERPRISE } from '../fixtures/apt-sources.ts';

/** proxmox-apt/tests: [input, expected after parse and write]. */
const PROXMOX_FIXTURES: Record<string, [string, string]> = {
  "absolute_suite.list": [
    "# From Debian Administrator's Handbook\ndeb http://packages.falcot.com/ updates/\n\ndeb http://user.name@packages.falcot.com:80/ internal/\n",
    "# From Debian Administrator's Handbook\ndeb http://packages.falcot.com/ updates/ \n\ndeb http://user.name@packages.falcot.com:80/ internal/ \n",
  ],
  "absolute_suite.sources": [
    "# From Debian Administrator's Handbook\nTypes: deb\nURIs: http://packages.falcot.com/\nSuites: updates/ internal/\n",
    "# From Debian Administrator's Handbook\nTypes: deb\nURIs: http://packages.falcot.com/\nSuites: updates/ internal/\n",
  ],
  "bad-security.list": [
    "deb http://security.debian.org/debian-security/ bullseye/updates main contrib\n\ndeb https://security.debian.org bullseye/updates main contrib\n",
    "deb http://security.debian.org/debian-security/ bullseye/updates main contrib\n\ndeb https://security.debian.org bullseye/updates main contrib\n",
  ],
  "bad.sources": [
    "Types: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: sid\nComponents: main contrib\n\nTypes: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: lenny-backports\nComponents: contrib\n\nTypes: deb\nURIs: http://security.debian.org:80\nSuites: stretch/updates\nComponents: main contrib\n\nSuites: stable\nURIs: http://ftp.at.debian.org:80/debian\nComponents: main\nTypes: deb\n\nSuites: bookworm\nURIs: http://ftp.at.debian.org/debian\nComponents: main\nTypes: deb\n\nSuites: testing\nURIs: http://ftp.at.debian.org/debian\nComponents: main\nTypes: deb\n",
    "Types: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: sid\nComponents: main contrib\n\nTypes: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: lenny-backports\nComponents: contrib\n\nTypes: deb\nURIs: http://security.debian.org:80\nSuites: stretch/updates\nComponents: main contrib\n\nTypes: deb\nURIs: http://ftp.at.debian.org:80/debian\nSuites: stable\nComponents: main\n\nTypes: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: testing\nComponents: main\n",
  ],
  "case.sources": [
    "tYpeS: deb deb-src\nuRis: http://ftp.at.debian.org/debian\nsuiTes: bullseye-updates\n# comment in here\nCompOnentS: main contrib\nlanguages: it\n de\n\tfr\nEnabled: off\nlanguages-Add: ja\nlanguages-Remove: de\n\ntypes: deb deb-src\nUris: http://ftp.at.debian.org/debian\nsuites: bullseye\n# comment in here\ncomponents: main contrib\n",
    "# comment in here\nTypes: deb deb-src\nURIs: http://ftp.at.debian.org/debian\nSuites: bullseye-updates\nComponents: main contrib\nlanguages: it de fr\nEnabled: false\nlanguages-Add: ja\nlanguages-Remove: de\n\n# comment in here\nTypes: deb deb-src\nURIs: http://ftp.at.debian.org/debian\nSuites: bullseye\nComponents: main contrib\n",
  ],
  "cdroms.list": [
    "#deb [trusted=yes] cdrom:[Proxmox VE 5.1]/ stretch pve\n#deb [trusted=yes] cdrom:[Proxmox VE 5.1]/proxmox/packages/ /\n\ndeb [trusted=yes] cdrom:[Proxmox VE 7.0 BETA]/ bullseye pve\ndeb cdrom:[Proxmox VE 7.0 BETA]/proxmox/packages/ /\n\ndeb [ \"trusted=yes\" ] cdrom:[Debian GNU/Linux 10.6.0 _Buster_ - Official amd64 NETINST 20200926-10:16]/ buster main\n",
    "# deb [ trusted=yes ] cdrom:[Proxmox VE 5.1]/ stretch pve\n\n# deb [ trusted=yes ] cdrom:[Proxmox VE 5.1]/proxmox/packages/ / \n\ndeb [ trusted=yes ] cdrom:[Proxmox VE 7.0 BETA]/ bullseye pve\n\ndeb cdrom:[Proxmox VE 7.0 BETA]/proxmox/packages/ / \n\ndeb [ trusted=yes ] cdrom:[Debian GNU/Linux 10.6.0 _Buster_ - Official amd64 NETINST 20200926-10:16]/ buster main\n",
  ],
  "ceph-squid-enterprise-trixie.list": [
    "deb https://enterprise.proxmox.com/debian/ceph-squid trixie enterprise\n",
    "deb https://enterprise.proxmox.com/debian/ceph-squid trixie enterprise\n",
  ],
  "ceph-squid-nosub-trixie.list": [
    "deb http://download.proxmox.com/debian/ceph-squid trixie no-subscription\n",
    "deb http://download.proxmox.com/debian/ceph-squid trixie no-subscription\n",
  ],
  "ceph-squid-trixie.list": [
    "deb https://enterprise.proxmox.com/debian/ceph-squid trixie enterprise\ndeb http://download.proxmox.com/debian/ceph-squid trixie no-subscription\ndeb http://download.proxmox.com/debian/ceph-squid trixie test\n",
    "deb https://enterprise.proxmox.com/debian/ceph-squid trixie enterprise\n\ndeb http://download.proxmox.com/debian/ceph-squid trixie no-subscription\n\ndeb http://download.proxmox.com/debian/ceph-squid trixie test\n",
  ],
  "files.list": [
    "deb [trusted=yes] \"file:///some/spacey/mount point/\" bullseye pve\ndeb [lang=\"it\"] file:///some/spacey/\"mount point\"/proxmox/packages/ /\n",
    "deb [ trusted=yes ] \"file:///some/spacey/mount point/\" bullseye pve\n\ndeb [ lang=it ] \"file:///some/spacey/mount point/proxmox/packages/\" / \n",
  ],
  "multiline.sources": [
    "Types: deb deb-src\nURIs: http://ftp.at.debian.org/debian\nSuites: bullseye bullseye-updates\n# comment in here\nComponents: main contrib\nLanguages: it\n de\n\tfr\nEnabled: off\nLanguages-Add: ja\nLanguages-Remove: de\n",
    "# comment in here\nTypes: deb deb-src\nURIs: http://ftp.at.debian.org/debian\nSuites: bullseye bullseye-updates\nComponents: main contrib\nLanguages: it de fr\nEnabled: false\nLanguages-Add: ja\nLanguages-Remove: de\n",
  ],
  "options_comment.list": [
    "deb [ lang=it,de arch=amd64 ] http://ftp.at.debian.org/debian bullseye main contrib # comment\ndeb [ lang=it,de arch=amd64 lang+=fr lang-=de ] http://ftp.at.debian.org/debian bullseye non-free # non-free :(\n",
    "# comment\ndeb [ lang=it,de arch=amd64 ] http://ftp.at.debian.org/debian bullseye main contrib\n\n# non-free :(\ndeb [ lang=it,de arch=amd64 lang+=fr lang-=de ] http://ftp.at.debian.org/debian bullseye non-free\n",
  ],
  "pbs-enterprise.list": [
    "deb https://enterprise.proxmox.com/debian/pbs bullseye pbs-enterprise\n",
    "deb https://enterprise.proxmox.com/debian/pbs bullseye pbs-enterprise\n",
  ],
  "pve-alt.list": [
    "deb https://enterprise.proxmox.com/debian bullseye pve-enterprise\n\ndeb http://download.proxmox.com/debian/ bullseye pve-no-subscription\n\n# deb http://download.proxmox.com/debian bullseye pvetest\ndeb-src http://download.proxmox.com/debian bullseye pvetest\n",
    "deb https://enterprise.proxmox.com/debian bullseye pve-enterprise\n\ndeb http://download.proxmox.com/debian/ bullseye pve-no-subscription\n\n# deb http://download.proxmox.com/debian bullseye pvetest\n\ndeb-src http://download.proxmox.com/debian bullseye pvetest\n",
  ],
  "pve.list": [
    "deb http://ftp.debian.org/debian bullseye main contrib\ndeb http://ftp.debian.org/debian bullseye-updates main contrib\n\n# PVE pve-no-subscription repository provided by proxmox.com,\n# NOT recommended for production use\ndeb http://download.proxmox.com/debian/pve bullseye pve-no-subscription\n# deb https://enterprise.proxmox.com/debian/pve bullseye pve-enterprise\n\ndeb-src https://enterprise.proxmox.com/debian/pve buster pve-enterprise\n\n# security updates\ndeb http://security.debian.org/debian-security bullseye-security main contrib\n",
    "deb http://ftp.debian.org/debian bullseye main contrib\n\ndeb http://ftp.debian.org/debian bullseye-updates main contrib\n\n# PVE pve-no-subscription repository provided by proxmox.com,\n# NOT recommended for production use\ndeb http://download.proxmox.com/debian/pve bullseye pve-no-subscription\n\n# deb https://enterprise.proxmox.com/debian/pve bullseye pve-enterprise\n\ndeb-src https://enterprise.proxmox.com/debian/pve buster pve-enterprise\n\n# security updates\ndeb http://security.debian.org/debian-security bullseye-security main contrib\n",
  ],
  "standard.list": [
    "deb http://ftp.at.debian.org/debian bullseye main contrib\n\ndeb http://ftp.at.debian.org/debian bullseye-updates main contrib\n\n# security updates\ndeb http://security.debian.org bullseye-security main contrib\n",
    "deb http://ftp.at.debian.org/debian bullseye main contrib\n\ndeb http://ftp.at.debian.org/debian bullseye-updates main contrib\n\n# security updates\ndeb http://security.debian.org bullseye-security main contrib\n",
  ],
  "standard.sources": [
    "Types: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: bullseye bullseye-updates\nComponents: main contrib\n\n# security updates\nTypes: deb\nURIs: http://security.debian.org\nSuites: bullseye-security\nComponents: main contrib\n",
    "Types: deb\nURIs: http://ftp.at.debian.org/debian\nSuites: bullseye bullseye-updates\nComponents: main contrib\n\n# security updates\nTypes: deb\nURIs: http://security.debian.org\nSuites: bullseye-security\nComponents: main contrib\n",
  ],
};

const typeOf = (name: string) => (name.endsWith('.list') ? 'list' : 'sources');
const parsed = (name: string, text: string): RepoFile => {
  const p = parseRepoFile(`/etc/apt/sources.list.d/${name}`, typeOf(name), text);
  assert.ok(!('error' in p), `${name}: ${'error' in p ? p.error : ''}`);
  return p as RepoFile;
};

test("proxmox-apt's own files: parse and write give its expected files, and writing again changes nothing", () => {
  assert.equal(Object.keys(PROXMOX_FIXTURES).length, 17);
  for (const [name, [input, expected]] of Object.entries(PROXMOX_FIXTURES)) {
    assert.equal(renderRepoFile(parsed(name, input).repositories), expected, name);
    assert.equal(renderRepoFile(parsed(name, expected).repositories), expected, `${name} (idempotent)`);
  }
});

test("proxmox-apt's suite checks (tests/repositories.rs): bad.sources and bad-security.list on bullseye", () => {
  const infos = (name: string) =>
    checkSuites(parsed(name, PROXMOX_FIXTURES[name]![0]), 'bullseye')
      .map((i) => `${i.index} ${i.kind} ${i.message}`)
      .sort();
  assert.deepEqual(infos('bad.sources'), [
    "0 warning suite 'sid' should not be used in production!",
    "1 warning old suite 'lenny' configured!",
    "2 warning old suite 'stretch' configured!",
    "3 warning use the name of the stable distribution instead of 'stable'!",
    "4 ignore-pre-upgrade-warning suite 'bookworm' should not be used in production!",
    "5 warning suite 'testing' should not be used in production!",
  ]);
  assert.deepEqual(infos('bad-security.list'), ["0 warning expected suite 'bullseye-security'", "1 warning expected suite 'bullseye-security'"]);
});

test('malformed files are refused as proxmox-apt refuses them, naming the stanza or line', () => {
  const bad = (name: string, text: string) => {
    const p = parseRepoFile(name, typeOf(name), text);
    return 'error' in p ? p.error : 'parsed';
  };
  assert.equal(bad('x.sources', 'Types: deb\nURIs: http://a/\nSuites: trixie\nComponents: main\n\nTypes: rpm\n'), "malformed entry in stanza 2 - unknown variant `rpm`, expected `deb` or `deb-src`");
  assert.equal(bad('x.sources', 'Types: deb\nURIs.example\n'), 'malformed entry in stanza 1 - got invalid line - \'"URIs.example"\'');
  // "URIs http://a/": the key "URIs http" is not a deb822 key, so APT and proxmox-apt ignore the line
  assert.equal(bad('x.sources', 'Types: deb\nURIs http://a/\nSuites: trixie\nComponents: main\n'), 'check for repository 1 - missing URI(s)');
  assert.equal(bad('x.sources', 'Types: deb\nURIs: http://a/\nSuites: trixie\n'), 'check for repository 1 - missing component(s)');
  assert.equal(bad('x.list', 'deb http://a/ trixie main\ndeb [arch=amd64 http://a/ trixie main\n'), "malformed entry on line 2 - got invalid option - 'http://a/'");
  assert.equal(bad('x.list', 'deb "http://a/ trixie main\n'), 'malformed entry on line 1 - missing terminating \'"\'');
  assert.equal(bad('x.list', 'deb http://a/\n'), 'malformed entry on line 1 - missing suite');
  assert.equal(fileTypeOf('/etc/apt/sources.list.d/a.list.dpkg-old'), 'skip');
  assert.equal(fileTypeOf('/etc/apt/sources.list.d/.hidden.list'), 'skip');
  assert.deepEqual(fileTypeOf('/etc/apt/sources.list.d/notes.txt'), { error: 'invalid extension' });
  assert.deepEqual(fileTypeOf('/etc/apt/sources.list.d/a b.list'), { error: 'invalid characters in file name' });
});


const tree = (files: Record<string, string>): AptTree => ({ files: new Map(Object.entries(files)), listDir: 'dir' });

test('the API on PVE 9: the no-subscription handle writes proxmox.sources; disabling writes Enabled: false; the digest guards both', () => {
  const t = tree({ '/etc/apt/sources.list.d/debian.sources': DEBIAN_SOURCES, '/etc/apt/sources.list.d/pve-enterprise.sources': PVE_ENTERPRISE });
  const { digest } = readRepositories(t);
  const list = listRepositories(t, 'trixie', () => null);
  assert.equal(list.digest, digest);
  assert.deepEqual(
    list['standard-repos'].filter((s) => s.status !== undefined).map((s) => [s.handle, s.status]),
    [['enterprise', true]],
  );
  assert.deepEqual(list['standard-repos'].map((s) => s.handle), ['enterprise', 'no-subscription', 'test', 'ceph-squid-enterprise', 'ceph-squid-no-subscription', 'ceph-squid-test', 'ceph-tentacle-enterprise', 'ceph-tentacle-no-subscription', 'ceph-tentacle-test']);
  assert.deepEqual(list.infos.filter((i) => i.kind === 'origin').map((i) => i.message), ['Debian', 'Debian', 'Proxmox']);

  const [add] = addRepositoryHandle(t, 'trixie', 'no-subscription', digest);
  assert.deepEqual(add, {
    path: '/etc/apt/sources.list.d/proxmox.sources',
    before: null,
    after: 'Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-no-subscription\nSigned-By: /usr/share/keyrings/proxmox-archive-keyring.gpg\n',
  });
  const [off] = changeRepository(t, '/etc/apt/sources.list.d/pve-enterprise.sources', 0, false, digest);
  assert.equal(off!.after, `${PVE_ENTERPRISE}Enabled: false\n`);
  assert.throws(() => changeRepository(t, '/etc/apt/sources.list.d/pve-enterprise.sources', 0, false, '0'.repeat(64)), { message: MODIFIED });
  assert.throws(() => changeRepository(t, '/etc/apt/sources.list.d/pve-enterprise.sources', 1, false), { message: 'invalid index - 1' });
  assert.throws(() => changeRepository(t, '/etc/apt/sources.list.d/nope.sources', 0, false), { message: 'invalid path - /etc/apt/sources.list.d/nope.sources' });
  assert.throws(() => addRepositoryHandle(t, 'trixie', 'ceph-quincy-enterprise'), { message: "no standard repository for handle 'ceph-quincy-enterprise' on host product 'pve' and suite 'trixie'" });
  assert.throws(() => addRepositoryHandle(t, 'trixie', 'No Sub'), { message: "invalid APT repository handle: 'No Sub'" });
  // a disabled one is enabled again, keeping its Enabled option (set_enabled), and pvetest becomes pve-test
  const t2 = tree({ '/etc/apt/sources.list.d/proxmox.sources': 'Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\nComponents: pvetest\nEnabled: no\n' });
  assert.equal(addRepositoryHandle(t2, 'trixie', 'test')[0]!.after, 'Types: deb\nURIs: http://download.proxmox.com/debian/pve\nSuites: trixie\nComponents: pve-test\nEnabled: true\n');
  // the digest does not depend on the order files are listed in
  const files = readRepositories(t).files;
  assert.equal(commonDigest([...files].reverse()), digest);
});

test('the API on PVE 8: one-line files; no-subscription goes to /etc/apt/sources.list, a disabled line is commented out', () => {
  const t = tree({
    '/etc/apt/sources.list': 'deb http://ftp.debian.org/debian bookworm main contrib\n\ndeb http://ftp.debian.org/debian bookworm-updates main contrib\n\n# security updates\ndeb http://security.debian.org bookworm-security main contrib\n',
    '/etc/apt/sources.list.d/pve-enterprise.list': 'deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n',
  });
  assert.equal(
    addRepositoryHandle(t, 'bookworm', 'no-subscription')[0]!.after,
    'deb http://ftp.debian.org/debian bookworm main contrib\n\ndeb http://ftp.debian.org/debian bookworm-updates main contrib\n\n# security updates\ndeb http://security.debian.org bookworm-security main contrib\n\ndeb http://download.proxmox.com/debian/pve bookworm pve-no-subscription\n',
  );
  assert.equal(changeRepository(t, '/etc/apt/sources.list.d/pve-enterprise.list', 0, false)[0]!.after, '# deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n');
  assert.deepEqual(standardEntries('bookworm').map((e) => e.handle).filter((h) => h.startsWith('ceph-')).length, 9);
  assert.equal(standardEntries('bookworm').find((e) => e.handle === 'test')!.component, 'pvetest');
});

test('the byte-preserving editor: only the entry changes, comments and spacing stay', () => {
  const text = `# Debian, as the installer wrote it
Types: deb
URIs: http://deb.debian.org/debian/
Suites: trixie trixie-updates
Components: main non-free-firmware
# a note inside
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

#Types: deb
#URIs: http://old.example/


Types:   deb
URIs: https://enterprise.proxmox.com/debian/pve
Suites: trixie
Components: pve-enterprise
Enabled:   yes
# trailing comment`;
  const doc = parseSourcesDocument(text, 'deb822');
  assert.deepEqual(doc.problems, []);
  assert.equal(doc.entries.length, 2);
  assert.equal(doc.entries.map((e) => e.firstLine).join(','), '0,12');
  const off = setEntryEnabled(doc, 1, false);
  assert.equal(off, text.replace('Enabled:   yes', 'Enabled: no'));
  const on = setEntryEnabled(parseSourcesDocument(off, 'deb822'), 1, true);
  assert.equal(on, text.replace('Enabled:   yes', 'Enabled: yes'));
  const first = setEntryEnabled(doc, 0, false);
  assert.equal(first, text.replace('# a note inside\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n', '# a note inside\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\nEnabled: no\n'));
  assert.equal(parseSourcesDocument(first, 'deb822').entries[0]!.enabled, false);
  // the untouched round trip is the file itself
  assert.equal(parseSourcesDocument(text, 'deb822').lines.join(''), text);

  const list = '  deb http://ftp.debian.org/debian bookworm main contrib # mirror\n#deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n';
  const ldoc = parseSourcesDocument(list, 'one-line');
  assert.deepEqual(ldoc.entries.map((e) => [e.index, e.enabled]), [[0, true], [1, false]]);
  assert.equal(setEntryEnabled(ldoc, 0, false), `  # deb http://ftp.debian.org/debian bookworm main contrib # mirror\n#deb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n`);
  assert.equal(setEntryEnabled(ldoc, 1, true), '  deb http://ftp.debian.org/debian bookworm main contrib # mirror\ndeb https://enterprise.proxmox.com/debian/pve bookworm pve-enterprise\n');
  assert.equal(setEntryEnabled(ldoc, 1, false), list, 'already disabled: unchanged');
  assert.throws(() => setEntryEnabled(ldoc, 2, false), /no entry 2/);
});

test('classification: Debian main, updates, security; PVE and Ceph channels; other', () => {
  const c = (uris: string, suites: string, components: string) => classifySource({ uris: uris.split(' '), suites: suites.split(' '), components: components.split(' ') });
  assert.deepEqual(c('http://deb.debian.org/debian/', 'trixie trixie-updates', 'main non-free-firmware'), { kind: 'debian', parts: ['main', 'updates'] });
  assert.deepEqual(c('http://security.debian.org/debian-security/', 'trixie-security', 'main'), { kind: 'debian', parts: ['security'] });
  assert.deepEqual(c('http://security.debian.org/debian-security', 'buster/updates', 'main'), { kind: 'debian', parts: ['security'] });
  assert.deepEqual(c('https://enterprise.proxmox.com/debian/pve', 'trixie', 'pve-enterprise'), { kind: 'pve', channel: 'enterprise' });
  assert.deepEqual(c('http://download.proxmox.com/debian/pve', 'trixie', 'pve-test'), { kind: 'pve', channel: 'test' });
  assert.deepEqual(c('http://download.proxmox.com/debian/pve', 'bookworm', 'pvetest'), { kind: 'pve', channel: 'test' });
  assert.deepEqual(c('http://download.proxmox.com/debian', 'bookworm', 'pve-no-subscription'), { kind: 'pve', channel: 'no-subscription' });
  assert.deepEqual(c('https://enterprise.proxmox.com/debian/ceph-squid', 'trixie', 'enterprise'), { kind: 'ceph', release: 'squid', channel: 'enterprise' });
  assert.deepEqual(c('http://download.proxmox.com/debian/ceph-quincy', 'bookworm', 'no-subscription'), { kind: 'ceph', release: 'quincy', channel: 'no-subscription' });
  assert.deepEqual(c('https://packages.example.com/apt', 'stable', 'main'), { kind: 'other' });
});

test("apt-get update's failures, apt 2 and apt 3 wording, one per repository", () => {
  const apt2 = `Hit:1 http://deb.debian.org/debian bookworm InRelease
Get:2 http://security.debian.org bookworm-security InRelease [48.0 kB]
Err:3 https://enterprise.proxmox.com/debian/pve bookworm InRelease
  401  Unauthorized [IP: 66.70.154.82 443]
Err:4 http://download.proxmox.com/debian/pve bookworm/pvetestx amd64 Packages
  404  Not Found [IP: 1.2.3.4 80]
Reading package lists...
E: Failed to fetch https://enterprise.proxmox.com/debian/pve/dists/bookworm/InRelease  401  Unauthorized [IP: 66.70.154.82 443]
E: The repository 'https://enterprise.proxmox.com/debian/pve bookworm InRelease' is not signed.
N: Updating from such a repository can't be done securely, and is therefore disabled by default.
W: GPG error: http://mirror.example/debian bookworm InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 0123456789ABCDEF
`;
  const f = parseAptUpdate(apt2);
  assert.deepEqual(
    f.map((x) => [x.uri, x.suite, x.problem]),
    [
      ['https://enterprise.proxmox.com/debian/pve', 'bookworm', 'unauthorized'],
      ['http://download.proxmox.com/debian/pve', 'bookworm/pvetestx', 'not-found'],
      ['http://mirror.example/debian', 'bookworm', 'key'],
    ],
  );
  assert.match(explainFailure(f[0]!), /^the enterprise repository https:\/\/enterprise\.proxmox\.com\/debian\/pve bookworm refuses this node: it has no active subscription/);
  const apt3 = `Err:3 https://enterprise.proxmox.com/debian/ceph-squid trixie InRelease
  401  Unauthorized [IP: 66.70.154.82 443]
Error: Failed to fetch https://enterprise.proxmox.com/debian/ceph-squid/dists/trixie/InRelease  401  Unauthorized [IP: 66.70.154.82 443]
Error: The repository 'https://enterprise.proxmox.com/debian/ceph-squid trixie InRelease' is not signed.
Notice: Updating from such a repository can't be done securely, and is therefore disabled by default.
Warning: Failed to fetch http://unreachable.example/debian/dists/trixie/InRelease  Could not resolve 'unreachable.example'
`;
  assert.deepEqual(
    parseAptUpdate(apt3).map((x) => [x.uri, x.suite, x.problem]),
    [
      ['https://enterprise.proxmox.com/debian/ceph-squid', 'trixie', 'unauthorized'],
      ['http://unreachable.example/debian', 'trixie', 'unreachable'],
    ],
  );
  assert.deepEqual(parseAptUpdate('Hit:1 http://deb.debian.org/debian trixie InRelease\nReading package lists...\n'), []);
  assert.equal(releaseFilename('https://enterprise.proxmox.com/debian/pve', 'trixie', false), '/var/lib/apt/lists/enterprise.proxmox.com_debian_pve_dists_trixie_InRelease');
});
