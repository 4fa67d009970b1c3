// `make provision-test OS=<os>`: provision the last export of a machine image as the metal-hammer
// does (hammer VM under OVMF, default disk layout, /install.sh with the bootloader step, kexec),
// boot it again through the firmware and GRUB, and check it from inside (goss) and from its two
// leaves (BGP, routes, ping, LLDP). Writes images/<os>/<version>/provision.json.
// Flags: --ssh-timeout=<s> (wait for ssh per boot), --fail-step=<step> (fault injection: the
// hammer fails that step, e.g. install), --hammer-console=<console> (the console= the hammer
// boots with, which it writes into install.yaml).
import type { Args } from '../cli.ts';
import { UsageError } from '../lib/errors.ts';
import { resolveDefinition } from '../steps/resolve.ts';
import { provision } from '../steps/provision.ts';

const STEPS = ['partition', 'mkfs', 'mount', 'pull', 'burn', 'install', 'fstab', 'umount', 'kexec'];

export async function main(args: Args): Promise<void> {
  const os = args.positional[0];
  if (!os) throw new UsageError('provision-test needs an OS', 'run make provision-test OS=debian');
  const variant = args.flags['variant'];
  const ctx = resolveDefinition(os, typeof variant === 'string' ? variant : '');
  const t = args.flags['ssh-timeout'];
  let sshTimeoutSec: number | undefined;
  if (t !== undefined) {
    sshTimeoutSec = Number(t);
    if (t === true || !Number.isInteger(sshTimeoutSec) || sshTimeoutSec < 5) throw new UsageError(`--ssh-timeout=${String(t)} is not a number of seconds >= 5`, 'e.g. --ssh-timeout=600');
  }
  const fail = args.flags['fail-step'];
  if (fail !== undefined && (fail === true || !STEPS.includes(fail))) throw new UsageError(`--fail-step=${String(fail)} is not one of ${STEPS.join(', ')}`, 'e.g. --fail-step=install');
  const console = args.flags['hammer-console'];
  if (console === true) throw new UsageError('--hammer-console needs a value', 'e.g. --hammer-console=ttyS1,115200n8');
  await provision(ctx, { sshTimeoutSec, failStep: fail === undefined ? undefined : fail, hammerConsole: console });
}
