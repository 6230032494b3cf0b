/** `pve-baseline docs [--out FILE]`: write the access-policy document from what the node says now. */
import path from 'node:path';
import { renderAccessPolicy } from '../../report/access-policy.ts';
import { DOC_DIR } from '../../../steps/access-policy.ts';
import { collectPolicyFacts } from '../../report/facts.ts';
import type { AnyStep } from '../../engine/step.ts';
import { FileRefusedError, writePrivateFile } from '../../system/files.ts';
import { EXIT } from '../args.ts';
import type { Runtime } from '../runtime.ts';
import { printable, type Output } from './io.ts';
import { readOnlyJournal } from './runner.ts';

/** The default place of the document: /root/pve-baseline/access-policy-HOST-DATE.md. */
export function defaultDocPath(hostname: string, date: string): string {
  return path.join(DOC_DIR, `access-policy-${hostname}-${date}.md`);
}

/** Mode 0600: the document maps who can do what on the node. */
export async function docsCommand(runtime: Runtime, steps: readonly AnyStep[], options: { out?: string }, io: Output, version: string): Promise<number> {
  if (!runtime.node.isRoot) {
    io.err('pve-baseline: docs reads root-only files (/etc/shadow, /etc/pve/priv); run it as root.');
    return EXIT.notRoot;
  }
  const date = new Date().toISOString().slice(0, 10);
  const journal = readOnlyJournal(runtime);
  const facts = await collectPolicyFacts(runtime, steps, journal.all(), journal.path);
  const text = renderAccessPolicy(facts, { date, version });
  const out = options.out ?? defaultDocPath(runtime.node.hostname, date);
  try {
    // Root writes where the operator says, perhaps /tmp: never through a link someone planted there.
    // The default folder is made if missing; any other place the operator names must exist (a typo makes no directories).
    await writePrivateFile(out, text, { createDirectories: options.out === undefined || path.dirname(path.resolve(out)) === DOC_DIR });
  } catch (error) {
    if (error instanceof FileRefusedError) {
      io.err(`pve-baseline: docs --out: ${printable(error.message)}`);
      return EXIT.usage;
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (!code) throw error;
    if (code === 'ENOENT') {
      io.err(`pve-baseline: docs --out: the directory of ${printable(out)} does not exist; create it first, or give another path. Nothing was written.`);
      return EXIT.usage;
    }
    io.err(`pve-baseline: docs --out: cannot write ${printable(out)}: ${code}; nothing was written.`);
    return ['ENOSPC', 'EIO', 'EDQUOT'].includes(code) ? EXIT.ioError : EXIT.usage;
  }
  io.out(`Wrote ${out} (${text.split('\n').length} lines, mode 0600).`);
  return EXIT.ok;
}
