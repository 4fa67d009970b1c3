// `make vmtest OS=<os> [VARIANT=<v>]`: boot the last export of an image in QEMU and check it
// with goss (the pipeline's VM-test step: the verdict goes into build.json). Flags: --spec=<file> runs another spec instead of <os>/goss.yaml; --ssh-timeout=<s>
// bounds the wait for the first ssh login; --retry-timeout=<dur> (default 150s, 0s = one attempt).
import { resolve } from 'node:path';
import type { Args } from '../cli.ts';
import { UsageError } from '../lib/errors.ts';
import { DEFAULT_RETRY, parseDurationSec } from '../vm/goss.ts';
import { resolveDefinition } from '../steps/resolve.ts';
import { vmtest } from '../steps/vmtest.ts';

function stringFlag(args: Args, name: string): string | undefined {
  const v = args.flags[name];
  if (v === true) throw new UsageError(`--${name} needs a value`, `write --${name}=<value>`);
  return v;
}

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('vmtest needs an OS', 'run make vmtest OS=debian');
  const ctx = resolveDefinition(os, stringFlag(args, 'variant') ?? '');
  const spec = stringFlag(args, 'spec');
  const sshTimeout = stringFlag(args, 'ssh-timeout');
  let sshTimeoutSec: number | undefined;
  if (sshTimeout !== undefined) {
    sshTimeoutSec = Number(sshTimeout);
    if (!Number.isInteger(sshTimeoutSec) || sshTimeoutSec < 5) throw new UsageError(`--ssh-timeout=${sshTimeout} is not a number of seconds >= 5`, 'e.g. --ssh-timeout=600');
  }
  const retryTimeout = stringFlag(args, 'retry-timeout') ?? DEFAULT_RETRY.retryTimeout;
  try {
    parseDurationSec(retryTimeout);
  } catch {
    throw new UsageError(`--retry-timeout=${retryTimeout} is not a duration like 150s or 2m`, 'e.g. --retry-timeout=150s (0s: a single attempt)');
  }
  await vmtest(ctx, {
    spec: spec === undefined ? undefined : resolve(process.cwd(), spec),
    sshTimeoutSec,
    retry: { retryTimeout, sleep: DEFAULT_RETRY.sleep },
  });
}
