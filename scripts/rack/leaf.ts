// The rack's leaf switches: per leaf a network namespace made by the test, FRR (zebra + bgpd from
// Debian's frr package) speaking BGP unnumbered to the machine's lan NIC (RAs, IPv6 link-local,
// remote-as external), lldpd listening on the port, and a DNS resolver on the anycast address
// both leaves announce. Renderers and parsers are pure; the wrappers start the daemons in the
// namespace and query them as a switch operator would (vtysh, lldpcli, ping).
import { chownSync, mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../lib/config.ts';
import { PreconditionError } from '../lib/errors.ts';
import { run, stream, type RunResult, type Streaming } from '../lib/shell.ts';
import { bgpdHead, evpnBgpdConf, evpnSetup, evpnZebraConf, type EvpnLeafPlan } from './evpn.ts';
import { ANYCAST_DNS, RACK_DNS_ANSWER, RACK_DNS_NAME, type LeafPlan } from './plan.ts';

export const FRR_DIR = '/usr/lib/frr';

/** Pure: zebra's configuration: RAs on the machine port (BGP unnumbered needs them). */
export function zebraConf(leaf: LeafPlan, port: string): string {
  return [
    `hostname ${leaf.name}`,
    'log stdout informational',
    '!',
    `interface ${port}`,
    ' ipv6 nd ra-interval 6',
    ' no ipv6 nd suppress-ra',
    '!',
    '',
  ].join('\n');
}

/** Pure: bgpd's configuration: one unnumbered external peer, the leaf's loopback and the anycast resolver announced. */
export function bgpdConf(leaf: LeafPlan, port: string): string {
  return [
    ...bgpdHead(leaf, leaf.loopback, port),
    ' exit-address-family',
    ' !',
    ' address-family ipv6 unicast',
    `  neighbor ${port} activate`,
    ' exit-address-family',
    '!',
    '',
  ].join('\n');
}

export interface PeerState {
  peer: string;
  state: string;
  remoteAs: number | null;
  /** Prefixes received from the peer (IPv4 unicast). */
  pfxRcd: number;
  uptime: string;
}

/** Pure: the IPv4 unicast peers of `show bgp summary json`. */
export function parseBgpSummary(json: string): PeerState[] {
  const doc = JSON.parse(json) as { ipv4Unicast?: { peers?: Record<string, { state?: string; remoteAs?: number; pfxRcd?: number; peerUptime?: string }> } };
  return Object.entries(doc.ipv4Unicast?.peers ?? {}).map(([peer, p]) => ({
    peer,
    state: p.state ?? 'unknown',
    remoteAs: p.remoteAs ?? null,
    pfxRcd: p.pfxRcd ?? 0,
    uptime: p.peerUptime ?? '',
  }));
}

export interface LearnedRoute {
  prefix: string;
  /** AS path as FRR prints it, e.g. "4200003073". */
  path: string;
  /** Interfaces of the next hops. */
  via: string[];
}

/** Pure: the routes of `show bgp ipv4 unicast neighbors <port> routes json`. */
export function parseNeighborRoutes(json: string): LearnedRoute[] {
  const doc = JSON.parse(json) as { routes?: Record<string, { path?: string; nexthops?: { interface?: string; hostname?: string }[] }[]> };
  return Object.entries(doc.routes ?? {}).map(([prefix, paths]) => ({
    prefix,
    path: paths[0]?.path ?? '',
    via: [...new Set(paths.flatMap((p) => (p.nexthops ?? []).map((n) => n.interface ?? '')).filter(Boolean))],
  }));
}

export interface LldpNeighbor {
  port: string;
  systemName: string;
  systemDescription: string;
  chassisId: string;
  portId: string;
  portDescription: string;
}

type LldpIface = Record<string, { chassis?: Record<string, { id?: { value?: string }; descr?: string }>; port?: { id?: { value?: string }; descr?: string } }>;

/** Pure: `lldpcli show neighbors -f json` (one interface is an object, several an array). */
export function parseLldpNeighbors(json: string): LldpNeighbor[] {
  const doc = JSON.parse(json) as { lldp?: { interface?: LldpIface | LldpIface[] } };
  const raw = doc.lldp?.interface;
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const out: LldpNeighbor[] = [];
  for (const item of list) {
    for (const [port, n] of Object.entries(item)) {
      const [systemName, ch] = Object.entries(n.chassis ?? {})[0] ?? ['', {}];
      out.push({
        port,
        systemName: ch.id === undefined && systemName === 'id' ? '' : systemName,
        systemDescription: ch.descr ?? '',
        chassisId: ch.id?.value ?? '',
        portId: n.port?.id?.value ?? '',
        portDescription: n.port?.descr ?? '',
      });
    }
  }
  return out;
}

/** Pure: packets transmitted and received of `ping` output. */
export function parsePing(output: string): { sent: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(output);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0) };
}

export interface Leaf {
  plan: LeafPlan;
  netns: string;
  port: string;
  dir: string;
  vtysh(cmd: string): Promise<RunResult>;
  lldpNeighbors(): Promise<LldpNeighbor[]>;
  /** lldpd on the port, started once the port is in the namespace (per boot: the port comes and goes). */
  startLldp(): Promise<void>;
  stopLldp(): Promise<void>;
  exec(argv: readonly string[], opts?: { timeoutMs?: number }): Promise<RunResult>;
  stop(): Promise<void>;
}

const inNs = (ns: string, argv: readonly string[]): string[] => ['ip', 'netns', 'exec', ns, ...argv];

/**
 * Start a leaf in the (already created) namespace `netns`: loopback addresses, zebra, bgpd,
 * lldpd and the resolver. The machine port `port` is moved in later (it appears once QEMU runs).
 */
export async function startLeaf(plan: LeafPlan, netns: string, port: string, dir: string, evpn?: { plan: EvpnLeafPlan; hostNs: string }): Promise<Leaf> {
  mkdirSync(dir, { recursive: true });
  // FRR runs as its own user: its pid files and configuration live in a directory it owns
  let frrUid = 0;
  let frrGid = 0;
  try {
    frrUid = Number((await run(['id', '-u', 'frr'])).stdout.trim());
    frrGid = Number((await run(['id', '-g', 'frr'])).stdout.trim());
  } catch {
    throw new PreconditionError('the frr user does not exist (Debian\'s frr package is not installed)', 'run make setup (installs frr, lldpd, ovmf, gdisk, dosfstools, socat)');
  }
  chownSync(dir, frrUid, frrGid);
  // a firewall's leaf speaks EVPN and carries a tenant VNI with a host behind it (evpn.ts)
  writeFileSync(join(dir, 'zebra.conf'), evpn ? evpnZebraConf(plan, evpn.plan, port) : zebraConf(plan, port));
  writeFileSync(join(dir, 'bgpd.conf'), evpn ? evpnBgpdConf(plan, evpn.plan, port) : bgpdConf(plan, port));
  for (const f of ['zebra.conf', 'bgpd.conf']) chownSync(join(dir, f), frrUid, frrGid);

  await run(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
  for (const a of [plan.loopback, ANYCAST_DNS]) await run(['ip', '-n', netns, 'address', 'add', `${a}/32`, 'dev', 'lo']);
  if (evpn) for (const argv of evpnSetup(evpn.plan, netns, evpn.hostNs)) await run(argv);

  const procs: { name: string; p: Streaming; fd: number }[] = [];
  const start = (name: string, argv: string[]): void => {
    const fd = openSync(join(dir, `${name}.log`), 'a');
    const p = stream(inNs(netns, argv), { stdout: fd });
    p.done.catch(() => {});
    procs.push({ name, p, fd });
  };
  const stopProc = async ({ p, fd }: { p: Streaming; fd: number }): Promise<void> => {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      const exited = new Promise<void>((r) => p.child.once('exit', () => r()));
      p.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
  };
  start('zebra', [join(FRR_DIR, 'zebra'), '-N', netns, '-F', 'datacenter', '-f', join(dir, 'zebra.conf'), '-i', join(dir, 'zebra.pid'), '--log', 'stdout']);
  await waitForSocket(`/var/run/frr/${netns}/zserv.api`, procs[0]!.p, join(dir, 'zebra.log'));
  start('bgpd', [join(FRR_DIR, 'bgpd'), '-N', netns, '-F', 'datacenter', '-f', join(dir, 'bgpd.conf'), '-i', join(dir, 'bgpd.pid'), '--log', 'stdout']);
  start('dns', [process.execPath, '--import', 'tsx', join(ROOT, 'scripts/rack/dns.ts'), ANYCAST_DNS, RACK_DNS_NAME, RACK_DNS_ANSWER]);

  const leaf: Leaf = {
    plan,
    netns,
    port,
    dir,
    vtysh: (cmd) => run(['vtysh', '-N', netns, '-c', cmd], { nothrow: true, timeoutMs: 20_000 }),
    async lldpNeighbors() {
      const r = await run(['lldpcli', '-u', join(dir, 'lldpd.socket'), 'show', 'neighbors', '-f', 'json'], { nothrow: true, timeoutMs: 20_000 });
      return r.code === 0 ? parseLldpNeighbors(r.stdout) : [];
    },
    exec: (argv, o = {}) => run(inNs(netns, argv), { nothrow: true, timeoutMs: o.timeoutMs ?? 30_000 }),
    async startLldp() {
      await leaf.stopLldp();
      start('lldpd', ['lldpd', '-d', '-u', join(dir, 'lldpd.socket'), '-I', port, '-S', `${plan.name} (metal-images rack test)`]);
    },
    async stopLldp() {
      for (const x of procs.filter((q) => q.name === 'lldpd')) {
        await stopProc(x);
        procs.splice(procs.indexOf(x), 1);
      }
    },
    async stop() {
      for (const x of procs.reverse()) await stopProc(x);
    },
  };
  return leaf;
}

async function waitForSocket(path: string, p: Streaming, log: string): Promise<void> {
  const { existsSync, readFileSync } = await import('node:fs');
  const said = (): string => {
    try {
      return readFileSync(log, 'utf8').trim().split('\n').slice(-1)[0] ?? '';
    } catch {
      return '';
    }
  };
  for (let i = 0; i < 100; i++) {
    if (existsSync(path)) return;
    if (p.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await p.done.catch((e: Error) => {
    throw new PreconditionError(`zebra did not start in the leaf namespace: ${e.message}${said() ? `: ${said()}` : ''}`, 'is Debian\'s frr package installed and /var/run/frr there? (make setup)');
  });
  if (!existsSync(path)) throw new PreconditionError(`zebra did not create ${path} within 10s${said() ? `: ${said()}` : ''}`, 'is Debian\'s frr package installed and /var/run/frr there? (make setup)');
}
