// The rack test: provision the image as the metal-hammer does and check the machine from inside
// and from its two leaves, after the hammer's kexec and after a cold boot through OVMF and GRUB.
//
//   hammer VM (OVMF + rack-hammer initramfs) → partition, mkfs, mount, pull, burn, install.yaml +
//   userdata, /install.sh in the chroot, fstab, kexec → boot 1 (kexec) → checks → poweroff →
//   boot 2 (OVMF → \EFI\BOOT\BOOTX64.EFI → GRUB → kernel) → checks → provision.json
//
// Everything a run creates (QEMU, namespaces, taps, daemons, the scratch dir) is registered with
// scripts/lib/cleanup.ts and carries the run's pid; a later run sweeps what a killed one left.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IMAGE_FILE } from '../lib/artifacts.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { config } from '../lib/config.ts';
import { PreconditionError, UsageError } from '../lib/errors.ts';
import type { ImageDef } from '../lib/image-def.ts';
import { imageName } from '../lib/image-def.ts';
import { dim, info } from '../lib/log.ts';
import { run, stream, type Streaming } from '../lib/shell.ts';
import { requireTools } from '../lib/tools.ts';
import { parseAccelSetting } from '../vm/accel.ts';
import { gossVars, gossVarsYaml, oneLine, type RetryOptions } from '../vm/goss.ts';
import { installVars } from '../vm/install-vars.ts';
import { consoleTail } from '../vm/qemu.ts';
import { effectiveSysctl, readSysctlFiles, valuePattern } from '../vm/sysctl.ts';
import { chooseAccel, freePort, gossBinary, rel, renderSpec, sweepStale, VmTestError, vmSession, type Vm } from '../vm/vm.ts';
import { sshArgv } from '../vm/ssh.ts';
import { buildRackHammer } from './build.ts';
import { buildInitramfs, FIREWALL_HAMMER_MODULES } from './initramfs.ts';
import { parseBgpSummary, parseLldpNeighbors, parseNeighborRoutes, parsePing, startLeaf, type Leaf, type LldpNeighbor } from './leaf.ts';
import { checkNetnsPermission, createNetns, createTap, deleteNetns, deleteTap, hostRoutesVia, moveTapToHost, moveTapToLeaf, sweepRack, waitTapAttached } from './net.ts';
import { defaultLayout, DISK_MIB, FIREWALL, firewallPlan, firewallRackAdditions, LEAVES, machinePlan, MACHINE, MGMT_MAC, rackAdditions, RACK_DNS_NAME, ANYCAST_DNS, runNames } from './plan.ts';
import { evpnLeaves } from './evpn.ts';
import { firewallChecks, startHosts, type Hosts } from './firewall.ts';
import { hammerCmdline, HOST_SERVICE, OVMF_DIR, ovmfFiles, rackQemuArgv } from './qemu.ts';
import { duplicateParams, grubKernelLine, parseBootInfo, verdict, type BootReport, type Check, type GossTotals, type LeafReport, type ProvisionReport } from './report.ts';
import { startServer, type HammerEvent, type ProvisionServer } from './server.ts';

export const REPORT_FILE = 'provision.json';
/** The on-node speaker (test-only, copied into the machine) and what it announces. */
const SPEAKER = join(dirname(fileURLToPath(import.meta.url)), 'bgp-speaker.py');
const SERVICE_PREFIX = '10.0.17.200/32';
const POD_IF = 'metalrackpod0';
const POD_NET = '10.244.7.1/24';
const POD_NEXT_HOP = '10.244.7.2';
export const LOG_DIR = 'provision';

export interface ProvisionOptions {
  /** Seconds to wait for ssh after the kexec or the power-on (default by accelerator). */
  sshTimeoutSec?: number;
  /** Seconds the hammer may take from power-on to its kexec (default 1200 under TCG). */
  installTimeoutSec?: number;
  /** Fault injection: the hammer fails this step (partition, mkfs, mount, pull, burn, install, ...). */
  failStep?: string;
  /** console= of the hammer's kernel command line, which becomes install.yaml's console (faults). */
  hammerConsole?: string;
  retry?: RetryOptions;
  /** Boots to check: 2 (kexec, then GRUB; the default for machines) or 1 (the kexec boot only; the default for firewalls). */
  boots?: 1 | 2;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A timer for Promise.race that does not keep the process alive once the race is decided. */
const deadline = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
const secs = (t0: number): number => Math.round((performance.now() - t0) / 100) / 10;

export class ProvisionError extends VmTestError {}

export function hammerBinary(): string {
  return join(config().binDir, 'rack-hammer');
}

/** Check before side effects: tools, firmware, the hammer binary, the artifact, namespaces. */
export async function checkProvisionPrerequisites(def: ImageDef, dir: string, tag: string): Promise<void> {
  await requireTools(['qemu-system-x86_64', 'ssh', 'ssh-keygen', 'lz4', 'tar', 'ip', 'socat', 'vtysh', 'lldpd', 'lldpcli', 'ping'], 'the rack test needs it');
  const fw = ovmfFiles(config().env.METAL_OVMF_DIR ?? OVMF_DIR);
  for (const f of [fw.code, fw.vars]) {
    if (!existsSync(f)) throw new PreconditionError(`no OVMF firmware: ${f} is missing (QEMU's EFI firmware, Debian's ovmf package)`, 'run make setup (installs ovmf), or apt-get install ovmf; METAL_OVMF_DIR names another directory');
  }
  for (const d of ['zebra', 'bgpd']) {
    if (!existsSync(`/usr/lib/frr/${d}`)) throw new PreconditionError(`FRR's ${d} is missing (/usr/lib/frr/${d})`, 'run make setup (installs frr), or apt-get install frr');
  }
  if (!existsSync(gossBinary())) throw new PreconditionError(`goss is not built (${rel(gossBinary())} is missing)`, 'run make setup');
  if (!existsSync(hammerBinary())) throw new PreconditionError(`the rack's hammer is not built (${rel(hammerBinary())} is missing)`, 'run make setup (builds scripts/rack/hammer)');
  const artifact = join(dir, IMAGE_FILE);
  if (!existsSync(artifact) || !existsSync(`${artifact}.md5`)) throw new PreconditionError(`no artifact to provision: ${rel(artifact)} (and its .md5) must exist`, `run make export OS=${def.os} (or make ${def.os})`);
  if (def.machine_type !== 'machine' && def.machine_type !== 'firewall') throw new UsageError(`the rack provisions machine and firewall images; ${imageName(def)} is a ${def.machine_type}`, 'run it for a machine or firewall image, e.g. make provision-test OS=debian');
  await checkNetnsPermission(tag);
}

/** Sweep what killed runs left: scratch dirs (and their QEMU), namespaces with their daemons, taps. */
export async function sweepStaleRuns(rackDir: string): Promise<string[]> {
  const removed = sweepStale(rackDir).map((d) => `scratch ${rel(d)}`);
  removed.push(...(await sweepRack()));
  return removed;
}

interface QemuRun {
  q: Streaming;
  exited: () => boolean;
  exit: Promise<{ code: number | null; signal: string | null }>;
  stderr: () => Promise<string>;
  stop(): Promise<void>;
}

function startQemu(argv: string[]): QemuRun {
  const q = stream(argv, { stdout: 'ignore' });
  let done = false;
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    q.child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    q.child.once('error', () => {
      done = true;
      resolve({ code: null, signal: null });
    });
  });
  const stderr = (): Promise<string> => q.done.then(() => '', (e: { stderrTail?: string }) => oneLine(e.stderrTail ?? '', 300));
  return {
    q,
    exit,
    exited: () => done,
    stderr,
    async stop() {
      if (done) return;
      q.child.kill('SIGTERM');
      if (await Promise.race([exit.then(() => true), deadline(10_000).then(() => false)])) return;
      q.child.kill('SIGKILL');
      await Promise.race([exit, deadline(5000)]);
    },
  };
}

/** The leaf's LLDP neighbour on its port (up to 30 s for the first frame), and its `show bgp summary`, also saved to `file`. */
async function leafLldpAndSummary(leaf: Leaf, file: string): Promise<{ lldp: LldpNeighbor | null; summaryText: string }> {
  let lldp = (await leaf.lldpNeighbors()).find((x) => x.port === leaf.port) ?? null;
  for (let i = 0; i < 15 && !lldp; i++) {
    await sleep(2000);
    lldp = (await leaf.lldpNeighbors()).find((x) => x.port === leaf.port) ?? null;
  }
  const summaryText = (await leaf.vtysh('show bgp summary')).stdout;
  writeFileSync(file, summaryText);
  return { lldp, summaryText };
}

function tailOf(path: string, n = 40): string[] {
  try {
    return consoleTail(readFileSync(path, 'utf8'), n);
  } catch {
    return [];
  }
}

function printTail(path: string, n = 40): void {
  const lines = tailOf(path, n);
  console.error(dim(`---- last ${lines.length} lines of ${rel(path)} ----`));
  for (const l of lines) console.error(dim(`  | ${l}`));
  console.error(dim('---- end ----'));
}

/** Run the rack test for the artifact in `dir`; writes <dir>/provision.json and <dir>/provision/. */
export async function runProvisionTest(def: ImageDef, dir: string, o: ProvisionOptions = {}): Promise<ProvisionReport & { note: string }> {
  const label = imageName(def);
  const names = runNames(process.pid);
  // the hammer binary of this tree (rebuilt when scripts/rack/hammer changed; a no-op otherwise)
  const built = await buildRackHammer();
  if (built) info(dim(`rack: ${built}`));
  await checkProvisionPrerequisites(def, dir, names.tag);
  const image = join(config().imagesDir, def.os, def.version);
  // a firewall: the image's spec (written for the provisioned firewall) and the traffic checks (firewall.ts)
  const isFirewall = def.machine_type === 'firewall';
  const nBoots = o.boots ?? (isFirewall ? 1 : 2);
  const additions = [...rackAdditions(), ...(isFirewall ? firewallRackAdditions() : [])];
  const specs = isFirewall ? [join(def.dir, 'goss.yaml')] : [join(def.dir, 'goss.yaml'), join(config().root, 'tests/goss/installed-machine.yaml')];
  for (const s of specs) if (!existsSync(s)) throw new UsageError(`goss spec ${rel(s)} does not exist`, `create ${rel(s)}`);

  const rackDir = join(config().stateDir, 'rack');
  for (const r of await sweepStaleRuns(rackDir)) info(dim(`rack: removed what an earlier run left: ${r}`));
  // results of an earlier run must not pass for this one's
  const reportPath = join(dir, REPORT_FILE);
  const logDir = join(dir, LOG_DIR);
  rmSync(reportPath, { force: true });
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  mkdirSync(rackDir, { recursive: true });
  const scratch = mkdtempSync(join(rackDir, `${label}-${process.pid}-`));
  chmodSync(scratch, 0o755); // the leaves' FRR runs as user frr and reads its files below it
  writeFileSync(join(scratch, 'owner'), `${process.pid}\n`);

  const phases: Record<string, number> = {};
  let qemu: QemuRun | null = null;
  let server: ProvisionServer | null = null;
  const leaves: Leaf[] = [];
  let hosts: Hosts | null = null;
  const evpn = evpnLeaves({ asn: FIREWALL.asn, tenantVni: FIREWALL.tenant.vrf, internetVni: FIREWALL.internet.vrf });
  const hostNs = { tenant: names.hosts.tenant, internet: names.hosts.internet };
  const tapHome: Record<string, string | undefined> = {};
  const cleanup = onCleanup(`rack ${label}`, async () => {
    await qemu?.stop();
    for (const l of leaves) await l.stop();
    await hosts?.stop();
    if (isFirewall) for (const ns of Object.values(hostNs)) await deleteNetns(ns);
    for (const leaf of LEAVES) {
      await deleteTap(names.tap[leaf.name], tapHome[leaf.name]);
      await deleteNetns(names.netns[leaf.name]);
    }
    await server?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  try {
    // ---- the hammer VM's boot files and what the specs are rendered with
    let t0 = performance.now();
    const hb = await buildInitramfs(join(dir, IMAGE_FILE), hammerBinary(), scratch, isFirewall ? FIREWALL_HAMMER_MODULES : []);
    phases['hammer initramfs'] = secs(t0);
    const sysRoot = join(scratch, 'sysctl-root');
    mkdirSync(sysRoot);
    await run(['tar', '--extract', '--use-compress-program=lz4', '--file', join(dir, IMAGE_FILE), '--directory', sysRoot, '--wildcards', '*sysctl.d/*', 'etc/sysctl.conf'], { nothrow: true });
    const sysctl = Object.fromEntries([...effectiveSysctl(readSysctlFiles(sysRoot))].map(([k, v]) => [k, valuePattern(v)]));
    const initrdName = def.contract.initrd.replaceAll('{k}', hb.kernelVersion);
    const baseVars = gossVars({ os: def.os, version: def.version, machineType: def.machine_type, sudoGroup: def.contract.sudo_group, kernel: hb.kernelVersion, initrd: initrdName, sysctl, installed: true, rebooted: true, dnsName: RACK_DNS_NAME });

    // ---- the allocation and the provisioning server
    const key = join(scratch, 'id_ed25519');
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `metal-rack-${label}`, '-f', key]);
    const password = randomBytes(12).toString('base64url');
    const userdata = readFileSync(join(config().root, 'tests/fixtures/install/userdata-cloud-config.yaml'), 'utf8');
    const layout = defaultLayout('/dev/vda');
    const job = {
      image: `http://${HOST_SERVICE.ip}/images/${IMAGE_FILE}`,
      events: `http://${HOST_SERVICE.ip}/events`,
      upload: `http://${HOST_SERVICE.ip}/files/`,
      layout,
      machine: (isFirewall ? firewallPlan : machinePlan)({ sshPublicKey: readFileSync(`${key}.pub`, 'utf8'), password, userdata }),
      additions: additions.map(({ why: _why, ...a }) => a),
      fail: o.failStep ?? '',
    };
    const hostAt = new Map<string, number>();
    server = await startServer(job, dir, (e: HammerEvent) => {
      hostAt.set(`${e.step} ${e.status}`, performance.now());
      if (e.status === 'start') return;
      info(dim(`hammer: ${e.step} ${e.status}${e.seconds !== undefined ? ` ${e.seconds.toFixed(1)}s` : ''}${e.detail ? `: ${oneLine(e.detail, 200)}` : ''}`));
    });

    // ---- the leaves and the cables
    // a firewall's leaves speak EVPN, each with a host behind its VNI (evpn.ts)
    if (isFirewall) for (const ns of Object.values(hostNs)) await createNetns(ns);
    for (const leaf of LEAVES) {
      await createNetns(names.netns[leaf.name]);
      const e = isFirewall ? { plan: evpn[leaf.name], hostNs: hostNs[evpn[leaf.name].host.role] } : undefined;
      leaves.push(await startLeaf(leaf, names.netns[leaf.name], names.tap[leaf.name], join(scratch, leaf.name), e));
      await createTap(names.tap[leaf.name], leaf.port.mac);
    }
    if (isFirewall) hosts = await startHosts(hostNs, join(scratch, 'hosts'));

    // ---- the machine's firmware store and disk
    const fw = ovmfFiles(config().env.METAL_OVMF_DIR ?? OVMF_DIR);
    const vars = join(scratch, 'OVMF_VARS.fd');
    copyFileSync(fw.vars, vars);
    const disk = join(scratch, 'disk.img');
    await run(['truncate', '-s', `${DISK_MIB}M`, disk]);
    const accel = await chooseAccel(parseAccelSetting(config().env.METAL_ACCEL), hb.kernel, scratch);
    info(dim(`rack: accelerator ${accel.accel} (${accel.reason})`));
    const sshTimeout = o.sshTimeoutSec ?? (accel.accel === 'kvm' ? 180 : 420);
    const installTimeout = o.installTimeoutSec ?? (accel.accel === 'kvm' ? 600 : 1500);
    const sshPort = await freePort();

    const boot = async (n: 1 | 2): Promise<{ serial: [string, string]; t: number }> => {
      const serial: [string, string] = [join(logDir, `boot${n}-ttyS0.log`), join(logDir, `boot${n}-ttyS1.log`)];
      const argv = rackQemuArgv({
        accel: accel.accel, ovmfCode: fw.code, ovmfVars: vars, disk,
        kernel: n === 1 ? { kernel: hb.kernel, initrd: hb.initramfs, append: hammerCmdline(MGMT_MAC, o.hammerConsole) } : undefined,
        mgmtMac: MGMT_MAC, sshPort, serverPort: server!.port,
        // suricata (Debian's, DPDK-linked) needs SSE4.2, which QEMU's default TCG CPU lacks
        cpu: isFirewall && accel.accel !== 'kvm' ? 'max' : undefined,
        lan: LEAVES.map((l) => ({ mac: l.machineNic.mac, tap: names.tap[l.name] })),
        serial, pidFile: join(scratch, 'qemu.pid'),
      });
      info(dim(`rack: ${n === 1 ? 'powering on the hammer VM (OVMF, direct kernel boot)' : 'cold boot: OVMF and the disk only'}; ssh on 127.0.0.1:${sshPort}; consoles ${rel(serial[0])}, ${rel(serial[1])}`));
      const t = performance.now();
      qemu = startQemu(argv);
      for (const leaf of LEAVES) {
        const tap = names.tap[leaf.name];
        if (!(await waitTapAttached(tap, () => !qemu!.exited()))) {
          const err = await qemu.stderr();
          throw new ProvisionError(`QEMU did not attach the tap ${tap}${err ? `: ${err}` : ''}`, 'see the QEMU message above; is /dev/net/tun there?');
        }
        await moveTapToLeaf(tap, names.netns[leaf.name], 9000);
        tapHome[leaf.name] = names.netns[leaf.name];
        await leaves.find((l) => l.plan.name === leaf.name)!.startLldp();
        const routes = await hostRoutesVia(tap);
        if (routes.length) throw new ProvisionError(`the host namespace routes via ${tap}: ${routes.join('; ')}`, 'the lan links must only exist in the leaves');
      }
      return { serial, t };
    };

    // ---- power on: the hammer provisions the disk and kexecs
    const b1 = await boot(1);
    const hammerDone = server.waitFor((e) => (e.step === 'kexec' && e.status !== 'start') || e.status === 'failed', qemu!.exit.then(() => 'qemu-exit'));
    const installTimer = deadline(installTimeout * 1000).then(() => 'timeout' as const);
    const outcome = await Promise.race([hammerDone.then((e) => e, (r: unknown) => r as string), installTimer]);
    for (const f of ['install.yaml', 'boot-info.yaml', 'fstab', 'lvmlocal.conf', 'installer.log'] as const) {
      const b = server.files.get(f);
      if (b) writeFileSync(join(logDir, f), b);
    }
    if (outcome === 'timeout' || outcome === 'qemu-exit' || (typeof outcome === 'object' && outcome.status === 'failed')) {
      printTail(b1.serial[1]);
      if (typeof outcome === 'object') {
        const installerLine = /metal-installer: FAILED.*/.exec(outcome.output ?? '')?.[0];
        throw new ProvisionError(
          `the hammer failed in step ${outcome.step}: ${installerLine ?? oneLine(outcome.detail ?? '', 300)}`,
          `see ${rel(b1.serial[1])}${outcome.step === 'install' ? ` and ${rel(join(logDir, 'installer.log'))}` : ''}`,
        );
      }
      if (outcome === 'timeout') throw new ProvisionError(`the hammer did not reach its kexec within ${installTimeout}s`, `read ${rel(b1.serial[1])}`);
      const err = await qemu!.stderr();
      throw new ProvisionError(`the hammer VM stopped before its kexec${err ? ` (qemu: ${err})` : ''}; console tail above`, `read ${rel(b1.serial[1])}`);
    }
    const ev = (step: string): number => server!.events.find((e) => e.step === step && e.status === 'ok')?.seconds ?? 0;
    const kexecAt = performance.now();
    phases['hammer VM boot (OVMF + kernel)'] = Math.round(((hostAt.get('hammer ok') ?? b1.t) - b1.t) / 100) / 10;
    phases['partition+mkfs+mount'] = Math.round((ev('partition') + ev('mkfs') + ev('mount')) * 10) / 10;
    phases['image pull (GET + md5)'] = Math.round(ev('pull') * 10) / 10;
    phases['image burn (lz4 + untar)'] = Math.round(ev('burn') * 10) / 10;
    phases['install (/install.sh)'] = Math.round(ev('install') * 10) / 10;
    phases['fstab+umount+kexec load'] = Math.round((ev('fstab') + ev('umount') + ev('kexec')) * 10) / 10;
    phases['power-on to kexec'] = secs(b1.t);

    const installYaml = server.files.get('install.yaml')?.toString() ?? '';
    const bootInfo = parseBootInfo(server.files.get('boot-info.yaml')?.toString() ?? '');
    const vmVars = { ...baseVars, install: installVars(installYaml) };
    const varsFile = join(scratch, 'vars.yaml');
    writeFileSync(varsFile, gossVarsYaml(vmVars));
    const rendered = new Map<string, string>();
    for (const s of specs) rendered.set(s, await renderSpec(s, varsFile));

    const boots: BootReport[] = [];
    const check = async (n: 1 | 2, kind: 'kexec' | 'grub', since: number, serial: string): Promise<BootReport> => {
      // ssh as metal with the key install.yaml carried, like an operator
      const target = { key, port: sshPort, user: 'metal' };
      const deadline = since + sshTimeout * 1000;
      for (;;) {
        if (qemu!.exited()) {
          printTail(serial);
          throw new ProvisionError(`boot ${n} (${kind}): the machine stopped before ssh answered; console tail above`, `read ${rel(serial)}`);
        }
        if (performance.now() > deadline) {
          printTail(serial);
          throw new ProvisionError(`boot ${n} (${kind}): no ssh login as metal within ${sshTimeout}s; console tail above`, `read ${rel(serial)}; a slow machine may need --ssh-timeout=<seconds>`);
        }
        if ((await run(sshArgv(target, ['true']), { nothrow: true, timeoutMs: 30_000 })).code === 0) break;
        await sleep(2000);
      }
      const secondsToSsh = secs(since);
      phases[`boot ${n} (${kind}) to ssh`] = secondsToSsh;
      info(dim(`rack: boot ${n} (${kind}): ssh as metal answered after ${secondsToSsh}s`));
      const vm: Vm = vmSession({
        label, accel, kernel: { version: hb.kernelVersion, kernel: bootInfo.kernel, initrd: bootInfo.initrd }, sshPort, qemuPid: qemu!.q.child.pid ?? 0,
        scratch, bootSeconds: secondsToSsh, additions, consoleLog: serial, vars: vmVars, target, sudoPassword: password, varsFile, rendered,
        stop: async () => {},
      });
      const tc = performance.now();
      const settled = await vm.settle();
      const checks: Check[] = [];
      const pre = `boot${n}.`;
      const cmdline = (await vm.ssh(['cat', '/proc/cmdline'])).stdout.trim();
      if (kind === 'kexec') {
        checks.push({ id: `${pre}kexec-cmdline`, ok: cmdline === bootInfo.cmdline, detail: `/proc/cmdline ${JSON.stringify(cmdline)}; boot-info.yaml cmdline ${JSON.stringify(bootInfo.cmdline)}` });
      } else {
        const line = grubKernelLine(cmdline);
        const dups = duplicateParams(line);
        checks.push({ id: `${pre}grub-cmdline`, ok: line === bootInfo.cmdline, detail: `GRUB booted ${JSON.stringify(line)}${dups.length ? ` (twice: ${dups.join(', ')})` : ''}; boot-info.yaml cmdline ${JSON.stringify(bootInfo.cmdline)}` });
      }
      // cloud-init applies the cloud-config userdata (the fixture writes /etc/metal-userdata-test)
      const ci = await vm.ssh(['sh', '-c', 'cloud-init status 2>&1; test -f /etc/metal-userdata-test && echo userdata-applied || echo userdata-not-applied'], { nothrow: true, timeoutMs: 120_000 });
      checks.push({ id: `${pre}userdata-applied`, ok: /userdata-applied/.test(ci.stdout), detail: oneLine(ci.stdout, 200) });

      const goss: GossTotals[] = [];
      for (const s of specs) {
        const out = await vm.runGoss(s, o.retry ?? { retryTimeout: '60s', sleep: '10s' });
        const r = out.report;
        writeFileSync(join(logDir, `boot${n}-goss-${s.endsWith('installed-machine.yaml') ? 'installed-machine' : def.os}.json`), `${JSON.stringify(JSON.parse(r.json), null, 2)}\n`);
        goss.push({ spec: rel(s), total: r.total, passed: r.passed, failed: r.failed, skipped: r.skipped, failures: r.failures.map((f) => f.line) });
        checks.push({ id: `${pre}goss ${rel(s)}`, ok: r.failed === 0 && r.total > 0, detail: `${r.passed}/${r.total} passed${r.failures.length ? `; ${r.failures.map((f) => f.line).join('; ')}` : ''}` });
      }
      phases[`boot ${n} goss`] = secs(tc);
      if (isFirewall) {
        // the leaves see the firewall (BGP, LLDP phone-home); then traffic through it (firewall.ts)
        const tl = performance.now();
        const leafReports: LeafReport[] = [];
        const phoneHome = installVars(installYaml);
        for (const leaf of leaves) {
          let peers = parseBgpSummary((await leaf.vtysh('show bgp summary json')).stdout || '{}');
          for (let i = 0; i < 60 && !(peers[0]?.state === 'Established' && peers[0].pfxRcd > 0); i++) {
            await sleep(2000);
            peers = parseBgpSummary((await leaf.vtysh('show bgp summary json')).stdout || '{}');
          }
          const routes = parseNeighborRoutes((await leaf.vtysh(`show bgp ipv4 unicast neighbors ${leaf.port} routes json`)).stdout || '{}');
          const { lldp, summaryText } = await leafLldpAndSummary(leaf, join(logDir, `boot${n}-${leaf.plan.name}-show-bgp-summary.txt`));
          const p = peers.find((x) => x.peer === leaf.port);
          const lp = `${pre}${leaf.plan.name}.`;
          checks.push({ id: `${lp}bgp-established`, ok: p?.state === 'Established', detail: `${leaf.port}: ${p?.state ?? 'no peer'}` });
          const own = routes.find((r) => r.prefix === `${FIREWALL.underlay.ip}/32`);
          checks.push({ id: `${lp}firewall-vtep-prefix`, ok: own !== undefined, detail: own ? `${own.prefix} from ${leaf.port} (AS path ${own.path})` : `${FIREWALL.underlay.ip}/32 not learned (got ${routes.map((r) => r.prefix).join(', ') || 'nothing'})` });
          checks.push({
            id: `${lp}lldp-phone-home`,
            ok: lldp !== null && lldp.systemName === phoneHome.machineuuid && lldp.systemDescription === `provisioned since ${phoneHome.timestamp}`,
            detail: lldp ? `seen System Name ${JSON.stringify(lldp.systemName)}, System Description ${JSON.stringify(lldp.systemDescription)}` : 'no LLDP frame',
          });
          leafReports.push({
            name: leaf.plan.name, asn: leaf.plan.asn, port: leaf.port,
            bgp: peers.map((x) => ({ peer: x.peer, state: x.state, remoteAs: x.remoteAs, pfxRcd: x.pfxRcd })),
            prefixes: routes, ping: { target: '', source: '', sent: 0, received: 0 },
            lldp: lldp ? { systemName: lldp.systemName, systemDescription: lldp.systemDescription, portId: lldp.portId } : null,
            showBgpSummary: summaryText,
          });
        }
        phases[`boot ${n} leaf checks`] = secs(tl);
        const tt = performance.now();
        const fw = await firewallChecks({ vm, leaves, evpn, hostNs, hosts: hosts!, logDir, pre: `boot${n}.` });
        checks.push(...fw.checks);
        phases[`boot ${n} traffic checks`] = secs(tt);
        return { kind, secondsToSsh, systemState: settled.state, cmdline, goss, leaves: leafReports, machine: { ecmp: { prefix: '', via: [] } }, firewall: fw.report, checks };
      }

      // a BGP speaker on the node (as MetalLB's or kube-vip's) announces a service address through
      // the machine's FRR (peer group LOCAL); the leaves must learn it from the machine
      await vm.copyIn(SPEAKER, '/tmp/metal-rack-bgp-speaker.py', '0755');
      const speaker = await vm.ssh(['sh', '-c', [
        `ip link add ${POD_IF} type dummy 2>/dev/null; ip addr replace ${POD_NET} dev ${POD_IF}; ip link set ${POD_IF} up`,
        `nohup python3 /tmp/metal-rack-bgp-speaker.py ${MACHINE.ip} ${MACHINE.asn} ${SERVICE_PREFIX} ${POD_NEXT_HOP} ${POD_NEXT_HOP} >/tmp/metal-rack-bgp-speaker.log 2>&1 &`,
        'for i in $(seq 60); do grep -q . /tmp/metal-rack-bgp-speaker.log && break; sleep 1; done; cat /tmp/metal-rack-bgp-speaker.log',
      ].join('\n')], { nothrow: true, timeoutMs: 120_000 });
      checks.push({ id: `${pre}onnode-speaker-session`, ok: /established/.test(speaker.stdout), detail: `speaker on ${MACHINE.ip} (LOCAL, AS ${MACHINE.asn}, router id ${POD_NEXT_HOP}) announcing ${SERVICE_PREFIX} via ${POD_NEXT_HOP}: ${oneLine(speaker.stdout || speaker.stderr, 160)}` });
      const phoneHome = installVars(installYaml);

      // the leaves' view: sessions, routes, a ping over the BGP route, the LLDP neighbour
      const tl = performance.now();
      const leafReports: LeafReport[] = [];
      for (const leaf of leaves) {
        let peers = parseBgpSummary((await leaf.vtysh('show bgp summary json')).stdout || '{}');
        for (let i = 0; i < 60 && !(peers[0]?.state === 'Established' && peers[0].pfxRcd > 0); i++) {
          await sleep(2000);
          peers = parseBgpSummary((await leaf.vtysh('show bgp summary json')).stdout || '{}');
        }
        const routes = parseNeighborRoutes((await leaf.vtysh(`show bgp ipv4 unicast neighbors ${leaf.port} routes json`)).stdout || '{}');
        const pingOut = await leaf.exec(['ping', '-c', '3', '-W', '2', '-I', leaf.plan.loopback, MACHINE.ip]);
        const ping = parsePing(pingOut.stdout);
        // the leaf's kernel route to the machine: over the port, to the machine's link-local address
        let kernelRoute = { dev: '', via: '' };
        try {
          const rg = JSON.parse((await leaf.exec(['ip', '-j', 'route', 'get', MACHINE.ip])).stdout || '[]') as { dev?: string; via?: { host?: string }; gateway?: string }[];
          kernelRoute = { dev: rg[0]?.dev ?? '', via: rg[0]?.via?.host ?? rg[0]?.gateway ?? '' };
        } catch {
          /* reported below */
        }
        const { lldp, summaryText } = await leafLldpAndSummary(leaf, join(logDir, `boot${n}-${leaf.plan.name}-show-bgp-summary.txt`));
        const p = peers.find((x) => x.peer === leaf.port);
        const lp = `${pre}${leaf.plan.name}.`;
        checks.push({ id: `${lp}bgp-established`, ok: p?.state === 'Established', detail: `${leaf.port}: ${p?.state ?? 'no peer'}` });
        const own = routes.find((r) => r.prefix === `${MACHINE.ip}/32`);
        for (const r of routes) if (r.via.length === 0) r.via = [leaf.port];
        checks.push({ id: `${lp}machine-prefix`, ok: own !== undefined && kernelRoute.dev === leaf.port, detail: own ? `${own.prefix} from ${leaf.port} (AS path ${own.path}); kernel route dev ${kernelRoute.dev || 'none'} via ${kernelRoute.via || 'none'}` : `${MACHINE.ip}/32 not learned (got ${routes.map((r) => r.prefix).join(', ') || 'nothing'})` });
        checks.push({ id: `${lp}ping`, ok: ping.received > 0, detail: ping.sent ? `ping ${MACHINE.ip} from ${leaf.plan.loopback}: ${ping.received}/${ping.sent} answered` : `ping did not run: ${oneLine(pingOut.stderr || pingOut.stdout || `exit ${pingOut.code}`, 160)}` });
        checks.push({ id: `${lp}lldp-neighbour`, ok: lldp !== null, detail: lldp ? `System Name ${JSON.stringify(lldp.systemName)}, System Description ${JSON.stringify(lldp.systemDescription)}` : 'no LLDP neighbour on the machine port' });
        // metal-core's phone-home: System Name = the machine UUID, System Description holds "provisioned"
        checks.push({
          id: `${lp}lldp-phone-home`,
          ok: lldp !== null && lldp.systemName === phoneHome.machineuuid && lldp.systemDescription === `provisioned since ${phoneHome.timestamp}`,
          detail: lldp ? `seen System Name ${JSON.stringify(lldp.systemName)}, System Description ${JSON.stringify(lldp.systemDescription)}; metal-core needs ${JSON.stringify(phoneHome.machineuuid)} and "provisioned since ${phoneHome.timestamp}"` : 'no LLDP frame',
        });
        // the on-node speaker's service address, learned from the machine
        let service = routes.find((r) => r.prefix === SERVICE_PREFIX);
        for (let i = 0; i < 20 && !service; i++) {
          await sleep(2000);
          service = parseNeighborRoutes((await leaf.vtysh(`show bgp ipv4 unicast neighbors ${leaf.port} routes json`)).stdout || '{}').find((r) => r.prefix === SERVICE_PREFIX);
        }
        if (service && !routes.includes(service)) routes.push(service);
        checks.push({ id: `${lp}onnode-speaker-prefix`, ok: service !== undefined, detail: service ? `${SERVICE_PREFIX} from ${leaf.port} (AS path ${service.path})` : `${SERVICE_PREFIX} not learned from the machine` });
        leafReports.push({
          name: leaf.plan.name, asn: leaf.plan.asn, port: leaf.port,
          bgp: peers.map((x) => ({ peer: x.peer, state: x.state, remoteAs: x.remoteAs, pfxRcd: x.pfxRcd })),
          prefixes: routes, ping: { target: MACHINE.ip, source: leaf.plan.loopback, ...ping },
          lldp: lldp ? { systemName: lldp.systemName, systemDescription: lldp.systemDescription, portId: lldp.portId } : null,
          showBgpSummary: summaryText,
        });
      }
      // the machine's view: the anycast resolver both leaves announce, over both lan links (ECMP)
      const ecmpOut = await vm.ssh(['ip', '-j', 'route', 'show', `${ANYCAST_DNS}/32`], { nothrow: true });
      let via: string[] = [];
      try {
        const rs = JSON.parse(ecmpOut.stdout || '[]') as { dev?: string; nexthops?: { dev?: string }[] }[];
        via = rs.flatMap((r) => (r.nexthops ? r.nexthops.map((h) => h.dev ?? '') : [r.dev ?? ''])).filter(Boolean).sort();
      } catch {
        /* reported below */
      }
      checks.push({ id: `${pre}machine-ecmp`, ok: via.includes('lan0') && via.includes('lan1'), detail: `${ANYCAST_DNS}/32 via ${via.join(', ') || 'nothing'}` });
      phases[`boot ${n} leaf checks`] = secs(tl);
      return { kind, secondsToSsh, systemState: settled.state, cmdline, goss, leaves: leafReports, machine: { ecmp: { prefix: `${ANYCAST_DNS}/32`, via } }, checks };
    };

    boots.push(await check(1, 'kexec', kexecAt, b1.serial[1]));
    if (nBoots === 2) {

    // ---- power off, then the cold boot through the firmware and GRUB
    const vm1 = qemu!;
    await run(sshArgv({ key, port: sshPort, user: 'metal' }, ['sudo', '-k', '-S', '-p', '', 'systemctl', 'poweroff']), { input: `${password}\n`, nothrow: true, timeoutMs: 30_000 });
    if (!(await Promise.race([vm1.exit.then(() => true), deadline(120_000).then(() => false)]))) await vm1.stop();
    for (const leaf of LEAVES) {
      await leaves.find((l) => l.plan.name === leaf.name)!.stopLldp();
      await moveTapToHost(names.tap[leaf.name], names.netns[leaf.name]);
      tapHome[leaf.name] = undefined;
    }
    const b2 = await boot(2);
    boots.push(await check(2, 'grub', b2.t, b2.serial[1]));
    }
    const grubLine = boots[1] ? grubKernelLine(boots[1].cmdline) : '';
    await run(sshArgv({ key, port: sshPort, user: 'metal' }, ['sudo', '-k', '-S', '-p', '', 'systemctl', 'poweroff']), { input: `${password}\n`, nothrow: true, timeoutMs: 30_000 });
    await Promise.race([qemu!.exit, deadline(60_000)]);

    const v = verdict(boots.flatMap((b) => b.checks));
    const report: ProvisionReport = {
      image: label,
      accel: `${accel.accel} (${accel.reason})`,
      layout: { device: layout.disks[0]!.device, partitions: layout.disks[0]!.partitions.map((p) => ({ number: p.number, label: p.label, sizeMiB: p.size, gpttype: p.gpttype })) },
      installYaml,
      bootInfo,
      fstab: server.files.get('fstab')?.toString() ?? '',
      grubKernelLine: grubLine,
      phases,
      boots,
      verdict: {
        ok: v.failed.length === 0 && v.stale.length === 0,
        failed: v.failed.map((c) => `${c.id}: ${c.detail}`),
        knownDefects: v.knownDefects.map((c) => ({ id: c.id, detail: c.detail, why: c.why })),
        stale: v.stale.map((c) => c.id),
      },
    };
    writeFileSync(`${reportPath}.partial`, `${JSON.stringify(report, null, 2)}\n`);
    renameSync(`${reportPath}.partial`, reportPath);
    printSummary(report, reportPath);
    if (!report.verdict.ok) {
      const first = v.failed[0] ?? v.stale[0]!;
      throw new ProvisionError(
        `rack ${label}: ${v.failed.length} check(s) failed${v.stale.length ? `, ${v.stale.length} known defect(s) no longer show (remove them from KNOWN_DEFECTS)` : ''}; first: ${first.id}: ${first.detail}`,
        `see ${rel(reportPath)} and ${rel(logDir)}/`,
      );
    }
    // one line for the pipeline's summary table (the step returns { note })
    const fwNote = boots[0]!.firewall ? `; EVPN type-5 on both leaves, SNAT ${boots[0]!.firewall.snat.peersSeen[0] ?? '?'}, drop counter ${boots[0]!.firewall.denied.counterBefore}→${boots[0]!.firewall.denied.counterAfter}` : '';
    const note = `rack: kexec ${boots[0]!.secondsToSsh}s${boots[1] ? `, grub ${boots[1].secondsToSsh}s` : ''} to ssh, both leaves Established${fwNote}${v.knownDefects.length ? `, ${v.knownDefects.length} known image defect(s)` : ''}`;
    return { ...report, note };
  } finally {
    await cleanup();
  }
}

export function printSummary(r: ProvisionReport, path: string): void {
  const out = [`rack ${r.image}: ${r.verdict.ok ? 'PASS' : 'FAIL'}${r.verdict.knownDefects.length ? ` (${r.verdict.knownDefects.length} known image defect(s))` : ''} — ${rel(path)}`];
  for (const [k, s] of Object.entries(r.phases)) out.push(`  ${k.padEnd(28)} ${s.toFixed(1)}s`);
  for (const b of r.boots) {
    out.push(`  boot ${b.kind}: ssh after ${b.secondsToSsh}s, systemd ${b.systemState}; ${b.goss.map((g) => `${g.spec} ${g.passed}/${g.total}`).join(', ')}`);
    for (const l of b.leaves) out.push(`    ${l.name}: BGP ${l.bgp.map((p) => `${p.peer} ${p.state}`).join(', ')}; learned ${l.prefixes.map((p) => p.prefix).join(', ')}; ping ${l.ping.received}/${l.ping.sent}; LLDP ${l.lldp ? `"${l.lldp.systemName}" / "${l.lldp.systemDescription}"` : 'none'}`);
    if (b.firewall) {
      const f = b.firewall;
      for (const e of f.evpn) out.push(`    ${e.leaf} EVPN (VNI ${e.vni}) from the firewall: ${e.routes.filter((x) => x.nextHop === FIREWALL.underlay.ip).map((x) => x.route).join(', ') || 'nothing'}`);
      out.push(`    SNAT: the internet host saw ${f.snat.peersSeen.join(', ') || 'no connection'}; drop counter ${f.denied.counterBefore} → ${f.denied.counterAfter}; chronyd in ${f.vrf.chronyd || '?'}`);
    } else out.push(`    machine: ${b.machine.ecmp.prefix} via ${b.machine.ecmp.via.join(', ')}`);
  }
  if (r.grubKernelLine) out.push(`  GRUB kernel line: ${r.grubKernelLine}`);
  for (const k of r.verdict.knownDefects) out.push(`  KNOWN DEFECT ${k.id}: ${k.detail}\n    (${k.why})`);
  for (const f of r.verdict.failed) out.push(`  FAIL ${f}`);
  for (const s of r.verdict.stale) out.push(`  STALE known defect ${s}: it passes now; remove it from scripts/rack/report.ts KNOWN_DEFECTS`);
  console.log(out.join('\n'));
}

