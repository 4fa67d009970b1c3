// The firewall rack's checks, from the consumers' side: the leaves' EVPN tables, a tenant host and
// an internet host behind them (network namespaces attached to the leaves' VNI bridges, evpn.ts),
// and on the firewall only what an operator reads: the nft counter, the kernel log droptailer
// tails, the VRF of a process.
//
//   1. EVPN: leaf1 has the firewall's type-5 routes in the tenant VNI (its SVI address and the
//      default route it leaks from the internet VRF), leaf2 in the internet VNI (its public SVI).
//   2. tenant → internet host, the port firewall_rules allows: connects, and the internet host's
//      listener records the firewall's SNAT address as the peer.
//   3. tenant → internet host, a port not allowed: no connection; the forward chain's log rule
//      counts it and the kernel logs it under "nftables-metal-dropped: ".
//   4. internet host → tenant host (with a route to the tenant network through the firewall, which
//      the firewall itself never announces: it marks the prefix no-export): no connection, logged.
//   5. suricata-update fetches its rules from a server on the internet host, in the internet VRF
//      (the only VRF with a route there), with a rule (sid 9900001) that suricata, capturing on the
//      internet SVI, raises for the allowed connection; chrony runs in the internet VRF.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, stream, type Streaming } from '../lib/shell.ts';
import { oneLine } from '../vm/goss.ts';
import type { Vm } from '../vm/vm.ts';
import { dropLogLines, INTERNET_HOST, parseDropCounter, parseEvpnRoutes, TENANT_HOST, type EvpnLeafPlan, type EvpnRoute } from './evpn.ts';
import type { Leaf } from './leaf.ts';
import { FIREWALL } from './plan.ts';
import type { Check } from './report.ts';

export const SURICATA_SID = 9900001;
const RULES_PORT = 80;

export interface FirewallReport {
  evpn: { leaf: string; vni: number; routes: EvpnRoute[]; text: string }[];
  snat: { port: number; connected: boolean; reply: string; peersSeen: string[] };
  denied: { port: number; connected: boolean; counterBefore: number | null; counterAfter: number | null; rule: string; logLines: string[] };
  inbound: { port: number; connected: boolean; logLines: string[]; leaf2Route: string };
  vrf: { chronyd: string; suricataUpdate: { result: string; rulesFetchedBy: string[]; sidInstalled: boolean; journal: string }; suricata: { vrfOrIface: string; alert: string } };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const inNs = (ns: string, argv: readonly string[]): string[] => ['ip', 'netns', 'exec', ns, ...argv];

/** The hosts' servers: a TCP listener on each port that writes the peer address, and the rules server. */
export interface Hosts {
  stop(): Promise<void>;
  peers(port: number): string[];
  rulesRequests(): string[];
}

/** A rules tarball as suricata-update fetches it: one .rules file with the rack's rule. */
async function rulesTarball(dir: string): Promise<void> {
  const src = join(dir, 'src', 'rules');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'metal-rack.rules'), `alert tcp any any -> ${INTERNET_HOST} ${FIREWALL.allowedPort} (msg:"metal-images rack: tenant to the internet host"; sid:${SURICATA_SID}; rev:1;)\n`);
  await run(['tar', '-C', join(dir, 'src'), '-czf', join(dir, 'www', 'rules.tar.gz'), 'rules']);
}

export async function startHosts(names: { tenant: string; internet: string }, dir: string): Promise<Hosts> {
  mkdirSync(join(dir, 'www'), { recursive: true });
  await rulesTarball(dir);
  const procs: Streaming[] = [];
  const listen = (ns: string, port: number, log: string): void => {
    // socat sets SOCAT_PEERADDR for the forked child: the address the connection came from
    const p = stream(inNs(ns, ['socat', `TCP4-LISTEN:${port},fork,reuseaddr`, `SYSTEM:echo "$SOCAT_PEERADDR" >> ${log}; echo "hello $SOCAT_PEERADDR"`]), { stdout: 'ignore' });
    p.done.catch(() => {});
    procs.push(p);
  };
  for (const port of [FIREWALL.allowedPort, FIREWALL.deniedPort]) listen(names.internet, port, join(dir, `internet-${port}.peers`));
  listen(names.tenant, FIREWALL.allowedPort, join(dir, `tenant-${FIREWALL.allowedPort}.peers`));
  const http = stream(inNs(names.internet, ['python3', '-m', 'http.server', String(RULES_PORT), '--bind', INTERNET_HOST, '--directory', join(dir, 'www')]), { stdout: 'ignore' });
  let httpLog = '';
  http.child.stderr?.on('data', (d: Buffer) => { httpLog += d.toString(); });
  http.done.catch(() => {});
  procs.push(http);
  const lines = (f: string): string[] => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  return {
    peers: (port) => lines(join(dir, `internet-${port}.peers`)),
    rulesRequests: () => httpLog.split('\n').filter((l) => /GET \/rules\.tar\.gz/.test(l)),
    async stop() {
      for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      await sleep(300);
    },
  };
}

/** Connect from a namespace; true when the peer answered (socat exits 0 with the reply). */
async function connect(ns: string, host: string, port: number, timeoutSec: number): Promise<{ ok: boolean; out: string }> {
  const r = await run(inNs(ns, ['socat', '-T', String(timeoutSec), '-', `TCP4:${host}:${port},connect-timeout=${timeoutSec}`]), { nothrow: true, input: '', timeoutMs: (timeoutSec + 10) * 1000 });
  return { ok: r.code === 0 && /hello/.test(r.stdout), out: oneLine(r.stdout || r.stderr || `exit ${r.code}`, 200) };
}

async function dropCounter(vm: Vm): Promise<{ packets: number; rule: string } | null> {
  const out = await vm.ssh(['nft', 'list', 'chain', 'inet', 'metal', 'forward'], { nothrow: true });
  return parseDropCounter(out.stdout);
}

async function kernelDrops(vm: Vm): Promise<string> {
  return (await vm.ssh(['journalctl', '-k', '--no-pager', '-o', 'short-iso', '--grep', 'nftables-metal-dropped'], { nothrow: true })).stdout;
}

/** Wait until every wanted type-5 prefix is in the leaf's EVPN table (from the firewall's VTEP). */
async function evpnTable(leaf: Leaf, want: string[], timeoutMs: number): Promise<{ text: string; routes: EvpnRoute[] }> {
  const t = Date.now() + timeoutMs;
  for (;;) {
    const text = (await leaf.vtysh('show bgp l2vpn evpn')).stdout;
    const routes = parseEvpnRoutes(text);
    const have = (p: string): boolean => routes.some((r) => r.type === 5 && r.prefix === p && r.nextHop === FIREWALL.underlay.ip);
    if (want.every(have) || Date.now() > t) return { text, routes };
    await sleep(3000);
  }
}

export async function firewallChecks(o: { vm: Vm; leaves: Leaf[]; evpn: Record<string, EvpnLeafPlan>; hostNs: { tenant: string; internet: string }; hosts: Hosts; logDir: string; pre: string }): Promise<{ checks: Check[]; report: FirewallReport }> {
  const { vm, leaves, hostNs, hosts, pre } = o;
  const checks: Check[] = [];
  const leaf1 = leaves.find((l) => l.plan.name === 'leaf1')!;
  const leaf2 = leaves.find((l) => l.plan.name === 'leaf2')!;

  // ---- 1. EVPN: the firewall's type-5 routes on both leaves
  const want: Record<string, string[]> = {
    leaf1: [`${FIREWALL.tenant.ip}/32`, '0.0.0.0/0'],
    leaf2: [`${FIREWALL.internet.ip}/32`],
  };
  const evpnReport: FirewallReport['evpn'] = [];
  for (const leaf of [leaf1, leaf2]) {
    const { text, routes } = await evpnTable(leaf, want[leaf.plan.name]!, 180_000);
    writeFileSync(join(o.logDir, `${pre}${leaf.plan.name}-show-bgp-l2vpn-evpn.txt`), text);
    evpnReport.push({ leaf: leaf.plan.name, vni: o.evpn[leaf.plan.name]!.vni, routes, text });
    for (const p of want[leaf.plan.name]!) {
      const r = routes.find((x) => x.type === 5 && x.prefix === p && x.nextHop === FIREWALL.underlay.ip);
      checks.push({ id: `${pre}${leaf.plan.name}.evpn-type5 ${p}`, ok: r !== undefined, detail: r ? `${r.route} RD ${r.rd} next hop ${r.nextHop} path ${r.path} ${r.extcommunity}` : `no type-5 ${p} from ${FIREWALL.underlay.ip} (table: ${routes.map((x) => `${x.route} via ${x.nextHop}`).join(', ') || 'empty'})` });
    }
  }

  // ---- 5a. suricata-update in the internet VRF, fetching the rack's rules from the internet host
  // (an operator's own rule source: update.yaml's sources, a test-only addition). Its run at boot
  // (multi-user.target wants it) is the one checked; it runs again only if that one did not fetch.
  const suRun = (start: boolean): Promise<{ stdout: string; stderr: string }> => vm.ssh(['sh', '-c', [
    start ? 'systemctl start suricata-update.service' : 'for i in $(seq 300); do [ "$(systemctl is-active suricata-update.service)" = activating ] || break; sleep 2; done',
    'systemctl show -p Result --value suricata-update.service',
    'journalctl -b -u suricata-update.service --no-pager -o cat | grep -E "Fetching|Writing rules|Done|rror|ailed" | tail -n 8',
  ].join('\n')], { nothrow: true, timeoutMs: 900_000 });
  let su = await suRun(false);
  if (!hosts.rulesRequests().some((l) => l.startsWith(`${FIREWALL.internet.ip} `))) su = await suRun(true);
  const suResult = su.stdout.split('\n')[0]?.trim() ?? '';
  const sid = await vm.ssh(['grep', '-c', `sid:${SURICATA_SID};`, '/var/lib/suricata/rules/suricata.rules'], { nothrow: true });
  const fetchedBy = hosts.rulesRequests();
  writeFileSync(join(o.logDir, `${pre}suricata-update.txt`), `${su.stdout}\n${su.stderr}`);
  checks.push({ id: `${pre}suricata-update-in-internet-vrf`, ok: suResult === 'success' && fetchedBy.some((l) => l.startsWith(`${FIREWALL.internet.ip} `)) && Number(sid.stdout.trim()) > 0, detail: `suricata-update ${suResult || 'did not run'}; the internet host served the rules to: ${fetchedBy.map((l) => l.split(' ')[0]).join(', ') || 'nobody'}; sid ${SURICATA_SID} in suricata.rules: ${sid.stdout.trim() || 'no'}` });

  // ---- 5b. suricata on the internet SVI, with the new rules
  const sur = await vm.ssh(['sh', '-c', [
    // suricata's log says "Engine started." once per start: wait for the restart's line (under TCG
    // rule loading and the af-packet threads take up to a few minutes)
    'log=/var/log/suricata/suricata.log; n=$(grep -ci "engine started" $log 2>/dev/null); n=${n:-0}',
    'systemctl restart suricata.service',
    'for i in $(seq 150); do [ "$(grep -ci "engine started" $log 2>/dev/null)" -gt "$n" ] && break; sleep 2; done',
    'systemctl is-active suricata.service; systemctl show -p ExecStart --value suricata.service | tr -s " " | head -c 300; echo; grep -ci "engine started" $log',
  ].join('\n')], { nothrow: true, timeoutMs: 400_000 });

  // ---- 2. tenant → internet host on the allowed port, SNAT
  const before = await dropCounter(vm);
  let allowed = await connect(hostNs.tenant, INTERNET_HOST, FIREWALL.allowedPort, 10);
  for (let i = 0; i < 5 && !allowed.ok; i++) {
    await sleep(5000);
    allowed = await connect(hostNs.tenant, INTERNET_HOST, FIREWALL.allowedPort, 10);
  }
  const peers = hosts.peers(FIREWALL.allowedPort);
  checks.push({ id: `${pre}tenant-reaches-internet-${FIREWALL.allowedPort}`, ok: allowed.ok, detail: `${TENANT_HOST} → ${INTERNET_HOST}:${FIREWALL.allowedPort}: ${allowed.out}` });
  checks.push({ id: `${pre}internet-sees-snat-address`, ok: peers.length > 0 && peers.every((p) => p === FIREWALL.internet.ip), detail: `the listener on ${INTERNET_HOST}:${FIREWALL.allowedPort} saw ${peers.join(', ') || 'no connection'} (SNAT address ${FIREWALL.internet.ip})` });

  // ---- 3. a port firewall_rules does not allow: dropped, counted, logged
  const denied = await connect(hostNs.tenant, INTERNET_HOST, FIREWALL.deniedPort, 3);
  await sleep(1000);
  const after = await dropCounter(vm);
  let journal = await kernelDrops(vm);
  const deniedLines = dropLogLines(journal, { src: TENANT_HOST, dst: INTERNET_HOST, dport: FIREWALL.deniedPort });
  checks.push({ id: `${pre}tenant-denied-port-dropped`, ok: !denied.ok && hosts.peers(FIREWALL.deniedPort).length === 0, detail: `${TENANT_HOST} → ${INTERNET_HOST}:${FIREWALL.deniedPort}: ${denied.ok ? 'connected' : `no connection (${denied.out})`}` });
  checks.push({ id: `${pre}drop-counted-and-logged`, ok: before !== null && after !== null && after.packets > before.packets && deniedLines.length > 0, detail: `forward chain log rule packets ${before?.packets ?? '?'} → ${after?.packets ?? '?'}; kernel log: ${deniedLines[0] ?? 'no nftables-metal-dropped line for it'}` });

  // ---- 4. the internet host into the tenant network: leaf2 is given a route through the firewall
  // (the firewall announces none: its leaked tenant prefix carries no-export)
  const leaf2Routes = (await leaf2.vtysh('show ip route')).stdout;
  const tenantRoute = leaf2Routes.split('\n').filter((l) => /10\.0\.1[67]\./.test(l)).join('; ');
  await leaf2.exec(['ip', 'route', 'replace', FIREWALL.tenant.prefix, 'via', FIREWALL.underlay.ip, 'dev', `br${o.evpn.leaf2!.vni}`, 'onlink']);
  const inbound = await connect(hostNs.internet, TENANT_HOST, FIREWALL.allowedPort, 3);
  await sleep(1000);
  journal = await kernelDrops(vm);
  const inboundLines = dropLogLines(journal, { src: INTERNET_HOST, dst: TENANT_HOST, dport: FIREWALL.allowedPort });
  checks.push({ id: `${pre}internet-cannot-enter-tenant`, ok: !inbound.ok && inboundLines.length > 0, detail: `${INTERNET_HOST} → ${TENANT_HOST}:${FIREWALL.allowedPort}: ${inbound.ok ? 'connected' : 'no connection'}; kernel log: ${inboundLines[0] ?? 'no nftables-metal-dropped line'}; leaf2's own routes to the tenant network before: ${tenantRoute || 'none'}` });
  writeFileSync(join(o.logDir, `${pre}nftables-metal-dropped.log`), journal);

  // ---- 5c. the VRFs of chronyd and suricata; suricata's alert for the allowed connection
  const chrony = await vm.ssh(['sh', '-c', 'for p in $(pidof chronyd); do ip vrf identify $p; done | sort -u'], { nothrow: true });
  checks.push({ id: `${pre}chrony-in-internet-vrf`, ok: chrony.stdout.trim() === `vrf${FIREWALL.internet.vrf}`, detail: `ip vrf identify <chronyd>: ${oneLine(chrony.stdout || chrony.stderr || 'no chronyd', 120)}` });
  let alert = '';
  for (let i = 0; i < 20 && !alert; i++) {
    alert = (await vm.ssh(['sh', '-c', `grep -h "\\[1:${SURICATA_SID}:" /var/log/suricata/fast.log 2>/dev/null | tail -n 1`], { nothrow: true })).stdout.trim();
    if (!alert) await sleep(3000);
  }
  const surLines = sur.stdout.trim().split('\n');
  checks.push({ id: `${pre}suricata-alert-${SURICATA_SID}`, ok: surLines[0] === 'active' && alert !== '', detail: `suricata ${surLines[0] ?? '?'} (${oneLine(surLines[1] ?? '', 160)}); fast.log: ${alert || `no alert ${SURICATA_SID}`}` });

  return {
    checks,
    report: {
      evpn: evpnReport,
      snat: { port: FIREWALL.allowedPort, connected: allowed.ok, reply: allowed.out, peersSeen: peers },
      denied: { port: FIREWALL.deniedPort, connected: denied.ok, counterBefore: before?.packets ?? null, counterAfter: after?.packets ?? null, rule: after?.rule ?? '', logLines: deniedLines },
      inbound: { port: FIREWALL.allowedPort, connected: inbound.ok, logLines: inboundLines, leaf2Route: tenantRoute },
      vrf: { chronyd: chrony.stdout.trim(), suricataUpdate: { result: suResult, rulesFetchedBy: fetchedBy, sidInstalled: Number(sid.stdout.trim()) > 0, journal: su.stdout }, suricata: { vrfOrIface: surLines[1] ?? '', alert } },
    },
  };
}
