// The rack's cabling on the host: a network namespace per leaf and a tap per lan NIC. A tap is
// made in the host's namespace (QEMU opens it there by name), and once QEMU holds it, it is moved
// into its leaf's namespace, so nothing of the lan links is ever routed in the host namespace.
// Everything carries the run's tag (plan.ts runNames); sweepRack() removes what a killed run left.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { PreconditionError } from '../lib/errors.ts';
import { processAlive, run } from '../lib/shell.ts';
import { ownerOf } from './plan.ts';

export async function netnsList(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list'], { nothrow: true });
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

/** Can this process make network namespaces? Checked before anything is started. */
export async function checkNetnsPermission(tag: string): Promise<void> {
  const probe = `${tag}-probe`;
  const r = await run(['ip', 'netns', 'add', probe], { nothrow: true });
  if (r.code !== 0) {
    throw new PreconditionError(
      `cannot create network namespaces for the leaves (ip netns add: ${r.stderr.trim().split('\n')[0] || `exited ${r.code}`})`,
      'run as root (the rack needs CAP_SYS_ADMIN and CAP_NET_ADMIN), e.g. sudo make provision-test OS=debian',
    );
  }
  await run(['ip', 'netns', 'delete', probe], { nothrow: true });
}

export async function createNetns(name: string): Promise<void> {
  await run(['ip', 'netns', 'add', name]);
}

/** Kill every process in the namespace (FRR, lldpd, the resolver), then delete it. */
export async function deleteNetns(name: string): Promise<void> {
  const pids = (await run(['ip', 'netns', 'pids', name], { nothrow: true })).stdout.split('\n').map(Number).filter((n) => n > 0);
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    }
    if (sig === 'SIGTERM' && pids.length) await new Promise((r) => setTimeout(r, 1000));
  }
  await run(['ip', 'netns', 'delete', name], { nothrow: true });
  rmSync(`/var/run/frr/${name}`, { recursive: true, force: true });
}

/** A persistent tap in the host namespace with the leaf port's MAC and no addresses. */
export async function createTap(name: string, mac: string): Promise<void> {
  await run(['ip', 'tuntap', 'add', 'dev', name, 'mode', 'tap']);
  await run(['ip', 'link', 'set', name, 'address', mac, 'addrgenmode', 'none']);
  await run(['ip', 'link', 'set', name, 'up']);
}

export async function deleteTap(name: string, netns?: string): Promise<void> {
  await run([...(netns ? ['ip', '-n', netns] : ['ip']), 'link', 'delete', name], { nothrow: true });
}

/** Wait until QEMU holds the tap (its carrier comes up); false when `alive` says QEMU is gone. */
export async function waitTapAttached(name: string, alive: () => boolean, timeoutMs = 30_000): Promise<boolean> {
  const t = Date.now() + timeoutMs;
  while (Date.now() < t) {
    try {
      if (readFileSync(`/sys/class/net/${name}/carrier`, 'utf8').trim() === '1') return true;
    } catch {
      /* not up yet */
    }
    if (!alive()) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Move the tap into the leaf's namespace and bring it up there (MTU of the machine's lan links, link-local address for BGP unnumbered). */
export async function moveTapToLeaf(name: string, netns: string, mtu: number): Promise<void> {
  await run(['ip', 'link', 'set', name, 'netns', netns]);
  await run(['ip', '-n', netns, 'link', 'set', name, 'mtu', String(mtu), 'addrgenmode', 'eui64']);
  await run(['ip', '-n', netns, 'link', 'set', name, 'up']);
}

/** Bring the tap back into the host namespace (for the next QEMU run to open it by name). */
export async function moveTapToHost(name: string, netns: string): Promise<void> {
  await run(['ip', '-n', netns, 'link', 'set', name, 'netns', String(process.pid)]);
  await run(['ip', 'link', 'set', name, 'addrgenmode', 'none']);
  await run(['ip', 'link', 'set', name, 'up']);
}

/** Links of the host namespace. */
async function hostLinks(): Promise<string[]> {
  const r = await run(['ip', '-o', 'link', 'show'], { nothrow: true });
  return r.stdout.split('\n').map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1] ?? '').filter(Boolean);
}

/** Remove the namespaces and taps of runs whose owner process is gone. Returns what was removed. */
export async function sweepRack(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of await netnsList()) {
    const owner = ownerOf(ns);
    if (owner === null || processAlive(owner)) continue;
    await deleteNetns(ns);
    removed.push(`netns ${ns}`);
  }
  for (const l of await hostLinks()) {
    const owner = ownerOf(l);
    if (owner === null || processAlive(owner)) continue;
    await deleteTap(l);
    removed.push(`tap ${l}`);
  }
  return removed;
}

/** Routes of the host namespace that mention a device (for the "nothing routed on the host" check). */
export async function hostRoutesVia(dev: string): Promise<string[]> {
  if (!existsSync(`/sys/class/net/${dev}`)) return [];
  const r = await run(['ip', 'route', 'show', 'dev', dev], { nothrow: true });
  return r.stdout.split('\n').filter(Boolean);
}

