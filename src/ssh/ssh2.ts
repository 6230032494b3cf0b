/**
 * ssh2, loaded on first use only: it is large and slow to evaluate (about
 * 90 ms), and most runs never need it. Always through import(), so the
 * bundle keeps it off the start-up path (test/cli/bundle.test.ts checks).
 */
type Ssh2 = typeof import('ssh2');

let loading: Promise<Ssh2> | undefined;

export function loadSsh2(): Promise<Ssh2> {
  // ssh2 is CommonJS: Node's ESM loader offers it as `default`, a bundler as the namespace.
  loading ??= import('ssh2').then((mod) => ((mod as { default?: Ssh2 }).default ?? mod) as Ssh2);
  return loading;
}
