// Level (a) of the installer tests (issue 8): the in-image installer (scripts/installer) runs with
// the fixtures of tests/fixtures/install in a container of each built image, playing the
// metal-hammer's part: no boot, bootloader skipped (INSTALL_SKIP_BOOTLOADER=1). The test then
// compares the files it wrote, byte for byte. Level (b), the booted VM, is the VM test with
// tests/goss/installed-machine.yaml.
//
// Each image under test gets a thin derived image: the built image plus the working tree's
// installer, staged exactly as scripts/steps/build.ts stages it (installer/ + os.yaml from
// image.yaml) and copied in with the Dockerfile lines every OS's Dockerfile carries. So the test
// always checks the installer of the working tree, on the userland of the real image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT } from '../../scripts/lib/config.ts';
import { DOCKER_ENV, buildArgv, imageExists } from '../../scripts/lib/docker.ts';
import { imageTag, listOsFolders, loadImageDef, type ImageDef } from '../../scripts/lib/image-def.ts';
import { run } from '../../scripts/lib/shell.ts';
import { referenceDir, referenceFile } from '../helpers/reference.ts';

const FIX = join(ROOT, 'tests', 'fixtures', 'install');
const fixture = (name: string): string => readFileSync(join(FIX, name), 'utf8');
const DRIVER = fixture('run-in-image.py');
/** Runs the driver text of the JSON on stdin with the request as REQUEST (keeps the docker argv short). */
const LOADER = 'import json, sys; d = json.load(sys.stdin); exec(compile(d["driver"], "run-in-image.py", "exec"), {"__name__": "driver", "REQUEST": d["request"]})';
const H = '# written by the metal-stack installer from /etc/metal/install.yaml';
const PASSWORD = 'metal-fixture-password';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIKaWn6VLuC9PCOSqivPgj0MeuLDeEPKhrVEl+bzte4U metal-fixture@tests';

/** The lines each OS's Dockerfile carries (after its last package install, before the build metadata). */
export const DOCKERFILE_LINES = [
  'COPY installer/ /etc/metal/installer/',
  'RUN install -m 0755 /etc/metal/installer/install.sh /install.sh \\',
  ' && python3 /etc/metal/installer/install.py --self-check --record-permissions',
];

// ---- images under test -----------------------------------------------------------------------

interface Target {
  def: ImageDef;
  name: string;
  base: string;
  tag: string;
}

/** Every image definition and variant; folders whose image.yaml does not load are reported, not tested. */
function allDefs(unloadable: string[]): ImageDef[] {
  const out: ImageDef[] = [];
  const seen = new Set<string>();
  for (const os of listOsFolders()) {
    let defs: ImageDef[];
    try {
      const base = loadImageDef(os);
      defs = [base, ...Object.keys(base.variants).map((v) => loadImageDef(os, v))];
    } catch (e) {
      unloadable.push(`${os} (${(e as Error).message})`);
      continue;
    }
    for (const def of defs) {
      if (seen.has(imageTag(def))) continue;
      seen.add(imageTag(def));
      out.push(def);
    }
  }
  return out;
}

/** os.yaml as scripts/steps/build.ts stageContext() writes it. */
function osYaml(def: ImageDef): string {
  return stringify({ os: def.os, version: def.version, machine_type: def.machine_type, ...def.contract });
}

/** Build the derived image: base + the working tree's installer. `extra` lines go before the installer's. */
async function derive(def: ImageDef, base: string, tag: string, extra: string[] = []): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), 'installer-it-'));
  try {
    cpSync(join(ROOT, 'scripts', 'installer'), join(ctx, 'installer'), { recursive: true, filter: (src) => !src.includes('__pycache__') });
    writeFileSync(join(ctx, 'installer', 'os.yaml'), osYaml(def));
    writeFileSync(join(ctx, 'Dockerfile'), [`FROM ${base}`, ...extra, ...DOCKERFILE_LINES, ''].join('\n'));
    await run(buildArgv({ tag, dockerfile: join(ctx, 'Dockerfile'), context: ctx, buildArgs: {}, labels: {} }), { env: DOCKER_ENV });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

// ---- one installer run -----------------------------------------------------------------------

interface FileInfo {
  type: 'missing' | 'file' | 'dir' | 'link';
  mode?: string;
  owner?: string;
  group?: string;
  text?: string;
  target?: string;
}
interface Cmd {
  rc: number;
  out: string;
}
interface Result {
  rc: number;
  log: string;
  seconds: number;
  files: Record<string, FileInfo>;
  checks: {
    damaged?: number;
    permissions_recorded: number;
    permissions_mismatches: string[];
    passwd: string;
    id: string;
    sudo?: Cmd;
    sudo_wrong_password?: Cmd;
    vtysh_dryrun?: Cmd;
    boot_files_exist?: Record<string, boolean>;
    kernel_version: string[];
    units: Record<string, string>;
    nft_check?: Cmd;
    nft_load?: Cmd;
    nft_ruleset?: Cmd;
  };
}

/** The units the installer writes for a firewall's add-ons. */
const FIREWALL_UNITS = ['node-exporter.service', 'nftables-exporter.service', 'droptailer.service', 'firewall-controller.service', 'suricata-update.service', 'suricata.service'];

const FILES = [
  '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/etc/systemd/timesyncd.conf', '/etc/chrony/chrony.conf', '/etc/nftables.conf',
  '/etc/frr/frr.conf', '/etc/frr/frr.conf.new', '/etc/metal/boot-info.yaml', '/etc/default/grub', '/etc/machine-id',
  '/var/lib/dbus/machine-id', '/etc/metal/build.yaml', '/etc/metal/build-meta.yaml', '/home/metal', '/home/metal/.ssh',
  '/home/metal/.ssh/authorized_keys', '/etc/metal-userdata-test', '/etc/metal/config.ign', '/var/lib/cloud/seed/nocloud/user-data',
  '/var/lib/cloud/seed/nocloud/meta-data', '/var/tmp', '/root', '/var/log/metal-installer.log', '/.dockerenv',
  '/etc/nftables/rules', '/etc/firewall-controller', '/etc/droptailer-client',
  ...FIREWALL_UNITS.map((u) => `/etc/systemd/system/${u}`),
];

async function install(
  tag: string,
  installYaml: string,
  opts: { userdata?: string; lossyUntar?: boolean; nftFile?: string; nftLoad?: boolean; wrongPassword?: boolean } = {},
): Promise<Result> {
  const request = {
    install_yaml: installYaml,
    userdata: opts.userdata ?? null,
    lossy_untar: opts.lossyUntar ?? false,
    sudo_password: PASSWORD,
    sudo_wrong_password: opts.wrongPassword ?? false,
    files: FILES,
    globs: ['/etc/systemd/network/*'],
    units: ['metal-userdata-test.service', 'frr.service', 'ssh.service', 'chrony@vrf104009.service', ...FIREWALL_UNITS],
    nft_file: opts.nftFile ?? null,
    nft_load: opts.nftLoad ?? false,
  };
  const started = performance.now();
  // NET_ADMIN: `nft --check` asks the kernel (of the container's own network namespace), and the
  // firewall test loads the rules there
  const r = await run(['docker', 'run', '-i', '--rm', '--network', 'none', '--cap-add', 'NET_ADMIN', tag, 'python3', '-c', LOADER], {
    input: JSON.stringify({ driver: DRIVER, request }),
  });
  return { ...(JSON.parse(r.stdout) as Omit<Result, 'seconds'>), seconds: (performance.now() - started) / 1000 };
}

function text(r: Result, path: string): string {
  const f = r.files[path];
  assert.ok(f && f.type === 'file', `${path} is ${f?.type ?? 'not collected'}, expected a file\n${r.log}`);
  return f.text!;
}

function meta(r: Result, path: string): string {
  const f = r.files[path];
  assert.ok(f && f.type !== 'missing', `${path} is missing`);
  return `${f.type} ${f.mode} ${f.owner}:${f.group}`;
}

/** Step names of the "ok" lines, in order. */
function stepsOk(log: string): string[] {
  return [...log.matchAll(/^metal-installer: \[\d+\/\d+\] (\S+) ok /gm)].map((m) => m[1]!);
}

function failure(log: string): string {
  return log.split('\n').filter((l) => l.startsWith('metal-installer: FAILED'))[0] ?? `(no FAILED line)\n${log}`;
}

// ---- expected files of the machine fixture -------------------------------------------------

const MACHINE_STEPS = ['check-input', 'permissions', 'hostname', 'resolv.conf', 'ntp', 'user', 'network', 'frr', 'ssh-keys', 'userdata', 'bootloader', 'services', 'build-meta'];
const FIREWALL_STEPS = [...MACHINE_STEPS.slice(0, 8), 'nftables', 'firewall-units', ...MACHINE_STEPS.slice(8)];

const MACHINE_FILES: Record<string, string> = {
  '/etc/hostname': 'machine-fixture\n',
  '/etc/hosts': `${H}\n127.0.0.1\tlocalhost\n10.0.17.2\tmachine-fixture\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`,
  '/etc/resolv.conf': `${H}\nnameserver 1.1.1.1\nnameserver 1.0.0.1\n`,
  '/etc/systemd/timesyncd.conf': `${H}\n[Time]\nNTP=192.0.2.123 ntp.example.org\n`,
  '/etc/systemd/network/00-lo.network': `${H}\n[Match]\nName=lo\n\n[Address]\nAddress=127.0.0.1/8\n\n[Address]\nAddress=10.0.17.2/32\n\n[Address]\nAddress=185.1.2.3/32\n`,
  '/etc/systemd/network/10-lan0.link': `${H}\n[Match]\nPermanentMACAddress=00:03:00:11:11:01\n\n[Link]\nName=lan0\nNamePolicy=\nMTUBytes=9000\n`,
  '/etc/systemd/network/10-lan0.network': `${H}\n[Match]\nName=lan0\n\n[Network]\nIPv6AcceptRA=no\n`,
  '/etc/systemd/network/11-lan1.link': `${H}\n[Match]\nPermanentMACAddress=00:03:00:11:12:01\n\n[Link]\nName=lan1\nNamePolicy=\nMTUBytes=9000\n`,
  '/etc/systemd/network/11-lan1.network': `${H}\n[Match]\nName=lan1\n\n[Network]\nIPv6AcceptRA=no\n`,
  '/etc/frr/frr.conf': `! ${H.slice(2)}
frr defaults datacenter
hostname machine-fixture
log syslog informational
service integrated-vtysh-config
!
interface lan0
 ipv6 nd ra-interval 6
 no ipv6 nd suppress-ra
!
interface lan1
 ipv6 nd ra-interval 6
 no ipv6 nd suppress-ra
!
router bgp 4200003073
 bgp router-id 10.0.17.2
 bgp bestpath as-path multipath-relax
 neighbor TOR peer-group
 neighbor TOR remote-as external
 neighbor TOR timers 2 8
 neighbor lan0 interface peer-group TOR
 neighbor lan1 interface peer-group TOR
 !
 address-family ipv4 unicast
  redistribute connected
  redistribute kernel
  neighbor TOR route-map only-self-out out
 exit-address-family
 !
 address-family ipv6 unicast
  redistribute connected
  redistribute kernel
  neighbor TOR activate
  neighbor TOR route-map only-self-out out
 exit-address-family
!
bgp as-path access-list SELF permit ^$
!
route-map only-self-out permit 10
 match as-path SELF
!
route-map only-self-out deny 99
!
line vty
!
`,
  '/home/metal/.ssh/authorized_keys': `${KEY}\n`,
  '/etc/machine-id': '',
  '/var/lib/dbus/machine-id': '',
};
const MACHINE_CMDLINE = 'console=ttyS1,115200n8 root=UUID=bbbce17d-e50e-4ce4-a645-2ec36ce41b36 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300';

const FIREWALL_FILES: Record<string, string> = {
  '/etc/hostname': 'firewall-fixture\n',
  '/etc/hosts': `${H}\n127.0.0.1\tlocalhost\n10.0.16.2\tfirewall-fixture\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`,
  '/etc/resolv.conf': `${H}\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n`,
  '/etc/systemd/network/00-lo.network': `${H}\n# networkid: underlay\n[Match]\nName=lo\n\n[Address]\nAddress=127.0.0.1/8\n\n[Address]\nAddress=10.1.0.1/32\n`,
  '/etc/systemd/network/10-lan0.link': `${H}\n[Match]\nPermanentMACAddress=00:03:00:22:11:01\n\n[Link]\nName=lan0\nNamePolicy=\nMTUBytes=9216\n`,
  '/etc/systemd/network/11-lan1.link': `${H}\n[Match]\nPermanentMACAddress=00:03:00:22:12:01\n\n[Link]\nName=lan1\nNamePolicy=\nMTUBytes=9216\n`,
  '/etc/systemd/network/11-lan1.network': `${H}\n[Match]\nName=lan1\n\n[Network]\nIPv6AcceptRA=no\nVXLAN=vni3981\nVXLAN=vni104009\n`,
  '/etc/systemd/network/31-svi-104009.network': `${H}\n# svi (networkid: internet)\n[Match]\nName=vlan104009\n\n[Link]\nMTUBytes=9000\n\n[Network]\nVRF=vrf104009\nAddress=185.1.2.4/32\n`,
  '/home/metal/.ssh/authorized_keys': `${KEY}\n`,
  '/etc/machine-id': '',
};
const FIREWALL_CHRONY = `${H}
# chrony runs in the VRF with the default route (chrony@vrf<id>.service, enabled by the installer)
pool time.cloudflare.com iburst
driftfile /var/lib/chrony/chrony.drift
# step the clock in the first three updates if it is off by more than a second
makestep 1 3
maxupdateskew 100.0
rtcsync
`;
/** The networkd files of the firewall fixture: lo, two lans, the bridge, and VRF/SVI/VXLAN of its two networks. */
const FIREWALL_NETWORKD = [
  '00-lo.network', '10-lan0.link', '10-lan0.network', '11-lan1.link', '11-lan1.network', '20-bridge.netdev', '20-bridge.network',
  ...['30-%-3981', '31-%-104009'].flatMap((f) => ['vrf', 'svi', 'vxlan'].flatMap((k) => [`${f.replace('%', k)}.netdev`, `${f.replace('%', k)}.network`])),
].map((f) => `/etc/systemd/network/${f}`);

/** What every successful run leaves, whatever the role. */
function assertCommon(r: Result, def: ImageDef, cmdline: string, steps: string[]): void {
  assert.is(r.rc, 0, `installer failed: ${failure(r.log)}`);
  assert.equal(stepsOk(r.log), steps, 'steps in order');
  assert.match(r.log, /grub-install, update-grub2|grub-install, \S+, efibootmgr skipped \(INSTALL_SKIP_BOOTLOADER=1\)/);

  // user metal: uid 1000, primary group = the image's sudo group, home, bash; key and modes
  assert.match(r.checks.passwd, new RegExp(`^metal:x:1000:\\d+::/home/metal:/bin/bash\\n$`));
  assert.match(r.checks.id, new RegExp(`^uid=1000\\(metal\\) gid=\\d+\\(${def.contract.sudo_group}\\) groups=\\d+\\(${def.contract.sudo_group}\\)\\n$`));
  assert.is(meta(r, '/home/metal/.ssh'), `dir 0700 metal:${def.contract.sudo_group}`);
  assert.is(meta(r, '/home/metal/.ssh/authorized_keys'), `file 0600 metal:${def.contract.sudo_group}`);
  // sudo asks for the console password and accepts it, and only it
  assert.is(r.checks.sudo?.rc, 0, `sudo with the fixture password: ${r.checks.sudo?.out}`);
  assert.match(r.checks.sudo!.out, /(^|\n)root\n$/);
  if (r.checks.sudo_wrong_password) assert.is.not(r.checks.sudo_wrong_password.rc, 0, 'sudo accepted a wrong password');

  // FRR: written for the frr daemons, and the image's own vtysh accepts it
  assert.is(meta(r, '/etc/frr/frr.conf'), 'file 0640 frr:frr');
  assert.is(r.checks.vtysh_dryrun?.rc, 0, `vtysh --dryrun: ${r.checks.vtysh_dryrun?.out}`);
  assert.is(r.files['/etc/frr/frr.conf.new']?.type, 'missing', 'the candidate config is removed after the check');
  assert.match(r.log, /\$ vtysh --dryrun --inputfile \/etc\/frr\/frr\.conf\.new\n/);

  // boot-info.yaml: the image's one kernel and its initrd (named by the contract), both present
  assert.is(r.checks.kernel_version.length, 1, `one kernel: ${r.checks.kernel_version.join(' ')}`);
  const k = r.checks.kernel_version[0]!;
  const initrd = `/boot/${def.contract.initrd.replace('{k}', k)}`;
  assert.is(text(r, '/etc/metal/boot-info.yaml'), `kernel: /boot/vmlinuz-${k}\ninitrd: ${initrd}\ncmdline: ${cmdline}\nbootloader_id: metal-${def.os}\n`);
  assert.equal(r.checks.boot_files_exist, { kernel: true, initrd: true });
  const grub = text(r, '/etc/default/grub');
  assert.ok(grub.includes(`\nGRUB_CMDLINE_LINUX="${cmdline}"\n`), grub);
  assert.ok(grub.includes(`\nGRUB_DISTRIBUTOR=metal-${def.os}\n`), grub);

  // build-meta.yaml: the image's build.yaml plus the tool versions, upstream's keys in upstream's order
  const build = parse(text(r, '/etc/metal/build.yaml')) as Record<string, string>;
  const bm = text(r, '/etc/metal/build-meta.yaml');
  assert.ok(bm.startsWith('---\n'), bm);
  const parsed = parse(bm) as Record<string, string>;
  assert.equal(Object.keys(parsed), ['buildVersion', 'buildDate', 'buildSHA', 'ignitionVersion', 'frrVersion']);
  assert.equal([parsed.buildVersion, parsed.buildDate, parsed.buildSHA], [build.build_version, build.build_date, build.build_commit]);
  assert.match(parsed.ignitionVersion!, /^(Ignition v\d+\.\d+\.\d+)?$/);
  assert.match(parsed.frrVersion!, /^\d+\.\d+(\.\d+)?$/);

  // identity and leftovers
  assert.is(meta(r, '/var/tmp'), 'dir 1777 root:root');
  assert.is(r.files['/.dockerenv']?.type, 'missing', '/.dockerenv is removed (systemd-detect-virt)');
  assert.is(meta(r, '/var/log/metal-installer.log'), 'file 0600 root:root');
  assert.ok(text(r, '/var/log/metal-installer.log').includes('check-input ok'), 'the log file holds the whole run');
  assert.not.ok(r.log.includes(PASSWORD), 'the password must not be logged');
  assert.equal(r.checks.permissions_mismatches, [], 'recorded owners/modes/capabilities hold after the run');
}

function assertFiles(r: Result, want: Record<string, string>): void {
  for (const [path, content] of Object.entries(want)) assert.fixture(text(r, path), content);
}

function assertMachine(r: Result, def: ImageDef): void {
  assertCommon(r, def, MACHINE_CMDLINE, MACHINE_STEPS);
  assertFiles(r, MACHINE_FILES);
  assert.equal(Object.keys(r.files).filter((p) => p.startsWith('/etc/systemd/network/')), [
    '/etc/systemd/network/00-lo.network', '/etc/systemd/network/10-lan0.link', '/etc/systemd/network/10-lan0.network',
    '/etc/systemd/network/11-lan1.link', '/etc/systemd/network/11-lan1.network',
  ]);
}

// ---- the tests -------------------------------------------------------------------------------

const DEBIAN = loadImageDef('debian');
const targets: Target[] = [];
const notBuilt: string[] = [];
const timings: string[] = [];
let standIn: Target | undefined;
// Derived images are this run's own (the docker daemon is shared: another checkout running this
// file at the same time must neither overwrite them nor remove them under this run).
const DERIVED = `metal-images-test/installer-${process.pid}`;

let setup: Promise<void> | undefined;
/** Find the built images and derive the test images, once; every test awaits it, so a failure shows. */
const ready = (): Promise<void> => (setup ??= prepare());

async function prepare(): Promise<void> {
  const unloadable: string[] = [];
  for (const def of allDefs(unloadable)) {
    const base = imageTag(def);
    const name = def.variant ? `${def.os}-${def.variant}` : def.os;
    if (await imageExists(base)) targets.push({ def, name, base, tag: `${DERIVED}-${name}:${def.version}` });
    else notBuilt.push(`${base} (make ${def.os}${def.variant ? ` BASE=${def.variant}` : ''})`);
  }
  const t0 = performance.now();
  for (const t of targets) await derive(t.def, t.base, t.tag);
  // The firewall role also runs on the Debian userland with chrony added (what the Debian-based
  // firewall variant is) and an nftables.conf that includes the installer's rules: the installer's
  // firewall path is tested whether or not a firewall image is built, and whatever that image ships.
  const debian = targets.find((t) => t.def.os === 'debian' && !t.def.variant);
  if (debian) {
    const def: ImageDef = { ...debian.def, machine_type: 'firewall' };
    standIn = { def, name: 'firewall-on-debian', base: debian.base, tag: `${DERIVED}-firewall-on-debian:12` };
    await derive(def, debian.base, standIn.tag, [
      'RUN apt-get update && apt-get install -y --no-install-recommends chrony \\',
      ' && rm -f /etc/systemd/system/dbus-org.freedesktop.timesync1.service \\',
      ' && apt-get clean && rm -rf /var/lib/apt/lists/* \\',
      // what a firewall image's nftables.conf holds: the installer's rules are included
      ` && printf '%s\\n' '#!/usr/sbin/nft -f' 'flush ruleset' 'include "/etc/nftables/*"' > /etc/nftables.conf`,
    ]);
  }
  timings.push(`derived images: ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  if (notBuilt.length) console.log(`installer level (a): not built here, so not tested: ${notBuilt.join(', ')}`);
  if (standIn) console.log('installer level (a): the firewall fixture also runs on the Debian image with chrony added (firewall-on-debian)');
  if (unloadable.length) console.log(`installer level (a): image.yaml does not load, so not tested: ${unloadable.join('; ')}`);
}

test.after(async () => {
  console.log(`installer level (a) timings: ${timings.join(', ')}`);
  for (const t of [...targets, ...(standIn ? [standIn] : [])]) await run(['docker', 'image', 'rm', '--force', t.tag], { nothrow: true });
});

test('the Debian image is built (the integration suite builds it first)', async () => {
  await ready();
  assert.ok(targets.some((t) => t.def === DEBIAN || (t.def.os === 'debian' && !t.def.variant)), `${imageTag(DEBIAN)} is missing: run make debian`);
});

// Rescans the image and prints the record it would write, then the one it ships.
const RECORD_NOW = 'import sys; sys.path.insert(0, "/etc/metal/installer"); from metal_installer import perms; sys.stdout.write(perms.format_entries(perms.scan("/")))';

test('every built image ships /install.sh, the installer, its own os.yaml and a current permissions record', async () => {
  await ready();
  for (const t of targets) {
    const fix = `add to ${t.def.os}/Dockerfile, after the last package install and before the build-metadata layer:\n${DOCKERFILE_LINES.join('\n')}`;
    const r = await run(['docker', 'run', '--rm', '--network', 'none', t.base, 'sh', '-c',
      'test -x /install.sh && test -f /etc/metal/installer/install.py && test -s /etc/metal/installer/permissions.tsv && cat /etc/metal/installer/os.yaml'], { nothrow: true });
    assert.is(r.code, 0, `${t.base} lacks the installer: ${fix}`);
    assert.is(r.stdout, osYaml(t.def), `${t.base}: /etc/metal/installer/os.yaml is not the one ${t.def.os}/image.yaml gives`);
    const now = await run(['docker', 'run', '--rm', '--network', 'none', t.base, 'python3', '-c', RECORD_NOW]);
    const shipped = await run(['docker', 'run', '--rm', '--network', 'none', t.base, 'cat', '/etc/metal/installer/permissions.tsv']);
    assert.fixture(shipped.stdout, now.stdout, `${t.base}: permissions.tsv is stale (recorded before later layers changed owners or modes): ${fix}`);
  }
});

test('installer unit tests pass with the Debian image\'s own Python, PyYAML, FRR and nft', async () => {
  await ready();
  // the reference data read in place; NET_ADMIN for nft --check in the container's own namespace
  const r = await run(['docker', 'run', '--rm', '--network', 'none', '--cap-add', 'NET_ADMIN', '-v', `${ROOT}:/src:ro`, '-w', '/src',
    '-v', `${referenceDir()}:/reference:ro`, '-e', 'METAL_REFERENCE_DIR=/reference', '-e', 'PYTHONDONTWRITEBYTECODE=1',
    imageTag(DEBIAN), 'python3', '-m', 'unittest', 'discover', '-v', '-s', 'tests/installer'], { nothrow: true });
  assert.is(r.code, 0, r.stderr);
  // only the network-namespace comparison cannot run in a container without CAP_SYS_ADMIN (the host run has it)
  const skipped = r.stderr.split('\n').filter((l) => / \.\.\. skipped /.test(l)).map((l) => l.split(' ')[0]);
  assert.equal(skipped, ['test_ours_and_metal_networkers_load_to_the_same_ruleset'], r.stderr);
  assert.match(r.stderr, /\nOK \(skipped=1\)\n$/);
});

test('machine images: machine fixture + Ignition userdata, after a lossy untar: the exact files', async () => {
  await ready();
  const machines = targets.filter((t) => t.def.machine_type === 'machine');
  assert.ok(machines.length > 0);
  for (const t of machines) {
    const r = await install(t.tag, fixture('machine.yaml'), { userdata: fixture('userdata-ignition.json'), lossyUntar: true, wrongPassword: true });
    timings.push(`${t.name} machine run ${r.seconds.toFixed(1)}s`);
    try {
      assertMachine(r, t.def);
      // the untar damage was repaired: /root private again, frr's files its own
      assert.ok((r.checks.damaged ?? 0) >= 10 && r.checks.permissions_recorded >= 10, JSON.stringify(r.checks));
      assert.match(r.log, /\[2\/13\] permissions ok \(\d+\.\d+s\): [1-9]\d* of \d+ recorded entries restored; \/var\/tmp 1777\n/);
      assert.is(meta(r, '/root'), 'dir 0700 root:root');
      // Ignition ran its files stage; its unit is enabled by the presets
      assert.is(text(r, '/etc/metal-userdata-test'), 'written by ignition\n');
      assert.is(meta(r, '/etc/metal/config.ign'), 'file 0600 root:root');
      assert.is(r.checks.units['metal-userdata-test.service'], 'enabled');
      assert.is(r.checks.units['frr.service'], 'enabled');
      assert.ok(r.checks.sudo_wrong_password, 'the wrong password was tried');
    } catch (e) {
      throw new Error(`${t.name}: ${(e as Error).message}\n--- installer log ---\n${r.log}`);
    }
  }
});

test('Debian: cloud-config userdata passes the schema check and is seeded for cloud-init', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const ud = fixture('userdata-cloud-config.yaml');
  const r = await install(t.tag, fixture('machine.yaml'), { userdata: ud });
  timings.push(`debian cloud-config run ${r.seconds.toFixed(1)}s`);
  assertMachine(r, t.def);
  assert.match(r.log, /\$ cloud-init schema --config-file \/etc\/metal\/userdata\n/);
  assert.is(text(r, '/var/lib/cloud/seed/nocloud/user-data'), ud);
  assert.is(meta(r, '/var/lib/cloud/seed/nocloud/user-data'), 'file 0600 root:root');
  assert.is(text(r, '/var/lib/cloud/seed/nocloud/meta-data'), 'instance-id: 8db04025-af46-47c9-a5c4-2e2d3795e827\nlocal-hostname: machine-fixture\n');
  assert.is(r.files['/etc/metal/config.ign']?.type, 'missing');
});

test('Debian: bad install.yaml fixtures stop in check-input with the named error and change nothing', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const cases: Record<string, string> = {
    'bad-no-hostname.yaml': 'metal-installer: FAILED in step 1 check-input: /etc/metal/install.yaml: field "hostname" is missing',
    'bad-console.yaml': 'metal-installer: FAILED in step 1 check-input: /etc/metal/install.yaml: field "console" is "ttyS1-115200": expected <serial tty>,<baud>[<parity><bits>], e.g. ttyS1,115200n8',
    'bad-no-private-primary.yaml': 'metal-installer: FAILED in step 1 check-input: /etc/metal/install.yaml: no private primary network: one entry of "networks" needs networktype privateprimaryunshared or privateprimaryshared (got: external)',
    'firewall.yaml': 'metal-installer: FAILED in step 1 check-input: /etc/metal/install.yaml: field "role" is "firewall", but this image (debian 12) is built for role "machine"; allocate a firewall with a firewall image',
  };
  for (const [name, want] of Object.entries(cases)) {
    const r = await install(t.tag, fixture(name));
    assert.is(r.rc, 1, `${name}: exit code`);
    assert.is(failure(r.log), want);
    assert.is(r.checks.passwd, '', `${name}: no user was created`);
    assert.is(r.files['/etc/metal/boot-info.yaml']?.type, 'missing', `${name}: no boot-info.yaml`);
    assert.is.not(text(r, '/etc/frr/frr.conf'), MACHINE_FILES['/etc/frr/frr.conf'], `${name}: frr.conf untouched`);
  }
});

test('Debian: invalid cloud-config stops the run in step userdata; nothing after it runs', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const r = await install(t.tag, fixture('machine.yaml'), { userdata: fixture('userdata-bad-cloud-config.yaml') });
  assert.is(r.rc, 1);
  assert.match(failure(r.log), /^metal-installer: FAILED in step 10 userdata: the cloud-config userdata is invalid: cloud-init schema --config-file \/etc\/metal\/userdata failed with exit code 1:/);
  assert.match(r.log, /write_files: '\/etc\/metal-userdata-test' is not of type 'array'/);
  assert.equal(stepsOk(r.log), MACHINE_STEPS.slice(0, 9));
  assert.is(text(r, '/etc/hostname'), 'machine-fixture\n', 'steps before it did their work');
  assert.is(r.files['/etc/metal/boot-info.yaml']?.type, 'missing', 'bootloader did not run');
  assert.is(r.files['/var/lib/cloud/seed/nocloud/user-data']?.type, 'missing', 'an invalid config is not seeded');
});

test('firewall images: firewall fixture: VRFs over EVPN (vtysh --dryrun), nftables loaded, chrony and the add-ons in their VRFs', async () => {
  await ready();
  const firewalls = [...targets.filter((t) => t.def.machine_type === 'firewall'), ...(standIn ? [standIn] : [])];
  assert.ok(firewalls.length > 0);
  await eachFirewall(firewalls, async (t) => {
    const r = await install(t.tag, fixture('firewall.yaml'), { nftFile: t.def.contract.nftables_conf, nftLoad: true });
    timings.push(`${t.name} firewall run ${r.seconds.toFixed(1)}s`);
    try {
      assertCommon(r, t.def, 'console=ttyS0,115200n8 root=UUID=1f6a1d9b-3a5e-4a38-9d5c-6f2b1c0e7a44 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300', FIREWALL_STEPS);
      assertFiles(r, FIREWALL_FILES);
      assert.equal(Object.keys(r.files).filter((p) => p.startsWith('/etc/systemd/network/')).sort(), [...FIREWALL_NETWORKD].sort());
      assert.is(text(r, t.def.contract.chrony_conf), FIREWALL_CHRONY);

      // FRR: the image's own vtysh accepted the EVPN configuration (assertCommon); its objects
      const frr = text(r, '/etc/frr/frr.conf');
      for (const part of [
        '\nvrf vrf3981\n vni 3981\n exit-vrf\n', '\nvrf vrf104009\n vni 104009\n exit-vrf\n',
        '\nrouter bgp 4210000001\n bgp router-id 10.1.0.1\n', ' neighbor lan0 interface peer-group FABRIC\n neighbor lan1 interface peer-group FABRIC\n',
        '  advertise-all-vni\n', '\nrouter bgp 4210000001 vrf vrf3981\n', '  import vrf vrf104009\n  import vrf route-map vrf3981-import-map\n',
        '\nroute-map vrf104009-import-map permit 10\n match source-vrf vrf3981\n match ip address prefix-list vrf104009-import-from-vrf3981-no-export\n set community additive no-export\n',
      ]) assert.ok(frr.includes(part), `frr.conf lacks ${JSON.stringify(part)}\n${frr}`);

      // nftables: the rules in /etc/nftables/rules, loaded through the image's nftables.conf the way
      // nftables.service loads them at boot, and listed back by the kernel
      assert.is(meta(r, '/etc/nftables/rules'), 'file 0600 root:root');
      assert.is(r.checks.nft_check?.rc, 0, `nft --check ${t.def.contract.nftables_conf}: ${r.checks.nft_check?.out}`);
      assert.is(r.checks.nft_load?.rc, 0, `nft -f ${t.def.contract.nftables_conf}: ${r.checks.nft_load?.out}`);
      const ruleset = r.checks.nft_ruleset?.out ?? '';
      for (const part of [
        '\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n',
        '\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n',
        'iifname "lan0" ip saddr 10.0.0.0/8 udp dport 4789 counter packets 0 bytes 0 accept comment "incoming VXLAN lan0"',
        'iifname "vrf3981" tcp dport 9100 counter packets 0 bytes 0 accept comment "node metrics"',
        'limit rate 2/minute counter packets 0 bytes 0 log prefix "nftables-metal-dropped: "',
        'oifname "vlan104009" ip saddr 10.0.16.0/22 counter packets 0 bytes 0 masquerade random comment "snat (networkid: internet)"',
      ]) assert.ok(ruleset.includes(part), `the loaded ruleset lacks ${JSON.stringify(part)}\n${ruleset}`);

      // the add-ons: each unit written, in its VRF; enabled where the image has the program
      const execStart = (u: string): string => text(r, `/etc/systemd/system/${u}`).split('\n').find((l) => l.startsWith('ExecStart='))!;
      assert.is(execStart('suricata-update.service'), 'ExecStart=/bin/ip vrf exec vrf104009 /usr/bin/suricata-update');
      assert.is(execStart('firewall-controller.service'), 'ExecStart=/bin/ip vrf exec vrf104009 /usr/local/bin/firewall-controller');
      assert.is(execStart('droptailer.service'), 'ExecStart=/bin/ip vrf exec vrf3981 /usr/local/bin/droptailer-client');
      assert.is(execStart('suricata.service'), 'ExecStart=/usr/bin/suricata -c /etc/suricata/suricata.yaml --pidfile /run/suricata.pid --af-packet=vlan104009');
      assert.is(meta(r, '/etc/firewall-controller'), 'dir 0750 root:root');
      for (const u of ['droptailer.service', 'firewall-controller.service']) assert.is(r.checks.units[u], 'disabled', `${u} is left to the operator`);
      const services = r.log.split('\n').find((l) => /\] services ok /.test(l)) ?? '';
      for (const u of FIREWALL_UNITS.filter((x) => !['droptailer.service', 'firewall-controller.service'].includes(x))) {
        const program = text(r, `/etc/systemd/system/${u}`).split('\n').find((l) => l.startsWith('ExecStart='))!;
        const lacks = services.includes(`${u} (the image lacks `);
        assert.is(r.checks.units[u], lacks ? 'disabled' : 'enabled', `${u} (${program}): ${services}`);
      }
      // chrony in the VRF with the default route (104009), where the image has the template unit
      if (t !== standIn) assert.is(r.checks.units['chrony@vrf104009.service'], 'enabled');
      else assert.match(services, /not enabled: chrony@vrf104009\.service \(the image has no chrony@\.service template; chrony keeps the image's presets\)/);
      assert.ok(text(r, '/etc/default/grub').includes('\nGRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1"\n'));
    } catch (e) {
      throw new Error(`${t.name}: ${(e as Error).message}\n--- installer log ---\n${r.log}`);
    }
  });
});

test('firewall images: upstream\'s firewall userdata (Ignition) enables the firewall-controller and the droptailer', async () => {
  await ready();
  const firewalls = [...targets.filter((t) => t.def.machine_type === 'firewall'), ...(standIn ? [standIn] : [])];
  assert.ok(firewalls.length > 0);
  await eachFirewall(firewalls, async (t) => {
    const r = await install(t.tag, fixture('firewall.yaml'), { userdata: readFileSync(referenceFile('metal-images-test', 'userdata-firewall.json'), 'utf8') });
    try {
      assert.is(r.rc, 0, `installer failed: ${failure(r.log)}`);
      assert.match(r.log, /userdata ok \(\d+\.\d+s\): Ignition config applied/);
      for (const u of ['firewall-controller.service', 'droptailer.service']) assert.is(r.checks.units[u], 'enabled', u);
    } catch (e) {
      throw new Error(`${t.name}: ${(e as Error).message}\n--- installer log ---\n${r.log}`);
    }
  });
});

/** Runs the check on every firewall target, so one image's failure does not hide another's result. */
async function eachFirewall(firewalls: Target[], check: (t: Target) => Promise<void>): Promise<void> {
  const failed: string[] = [];
  for (const t of firewalls) {
    try {
      await check(t);
    } catch (e) {
      failed.push((e as Error).message);
    }
  }
  assert.equal(failed, [], `${failed.length} of ${firewalls.map((t) => t.name).join(', ')} failed:\n${failed.join('\n\n')}`);
}

test.run();
