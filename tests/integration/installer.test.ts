// Level (a) of the installer tests: the in-image installer (scripts/installer) runs with
// the fixtures of tests/fixtures/install, and over every machine install.yaml of metal-stack's
// reference data (read in place), in a container of each built image, playing the metal-hammer's
// part: no boot, bootloader skipped (INSTALL_SKIP_BOOTLOADER=1). The test compares the files it
// wrote, byte for byte, and then plays the consumers in the same container (the driver,
// tests/fixtures/install/run-in-image.py): a leaf's LLDP receiver, a BGP speaker on the node,
// GRUB's config generator, cloud-init's generator and boot stages, the console's getty.
// Level (b), the booted VM, is the VM test with tests/goss/installed-machine.yaml.
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
import { parse } from 'yaml';
import { ROOT } from '../../scripts/lib/config.ts';
import { buildArgv, buildEnv, builderName, imageExists, requireBuildKit } from '../../scripts/lib/docker.ts';
import { FINALIZE_DIR, imageTag, listOsFolders, loadImageDef, type ImageDef } from '../../scripts/lib/image-def.ts';
import { osYaml } from '../../scripts/steps/build.ts';
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

/**
 * The finalize stage's installer lines (layers/finalize/Dockerfile, which every image passes
 * through): from `COPY installer/` to the end of the RUN after it, read from that file.
 */
export const DOCKERFILE_LINES = ((): string[] => {
  const lines = readFileSync(join(ROOT, FINALIZE_DIR, 'Dockerfile'), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith('COPY installer/'));
  let end = start + 1;
  while (lines[end]!.endsWith('\\')) end++;
  return lines.slice(start, end + 1);
})();

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


/** Build the derived image: base + the working tree's installer. `extra` lines go before the installer's. */
async function derive(def: ImageDef, base: string, tag: string, extra: string[] = []): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), 'installer-it-'));
  try {
    cpSync(join(ROOT, 'scripts', 'installer'), join(ctx, 'installer'), { recursive: true, filter: (src) => !src.includes('__pycache__') });
    writeFileSync(join(ctx, 'installer', 'os.yaml'), osYaml(def));
    writeFileSync(join(ctx, 'Dockerfile'), [`FROM ${base}`, ...extra, ...DOCKERFILE_LINES, ''].join('\n'));
    await requireBuildKit();
    await run(buildArgv({ tag, dockerfile: join(ctx, 'Dockerfile'), context: ctx, buildArgs: {}, labels: {} }, builderName()), { env: await buildEnv() });
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
    password?: { console_password: boolean; another: boolean };
    vtysh_dryrun?: Cmd;
    boot_files_exist?: Record<string, boolean>;
    kernel_version: string[];
    units: Record<string, string>;
    nft_check?: Cmd;
    nft_load?: Cmd;
    nft_ruleset?: Cmd;
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  after: Record<string, any>;
}

/** The units the installer writes for a firewall's add-ons. */
const FIREWALL_UNITS = ['node-exporter.service', 'nftables-exporter.service', 'droptailer.service', 'firewall-controller.service', 'suricata-update.service', 'suricata.service'];

const FILES = [
  '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/etc/systemd/timesyncd.conf', '/etc/chrony/chrony.conf', '/etc/nftables.conf',
  '/etc/frr/frr.conf', '/etc/frr/frr.conf.new', '/etc/metal/boot-info.yaml', '/etc/default/grub', '/etc/machine-id',
  '/var/lib/dbus/machine-id', '/etc/metal/build.yaml', '/etc/metal/build-meta.yaml', '/home/metal', '/home/metal/.ssh',
  '/home/metal/.ssh/authorized_keys', '/etc/metal-userdata-test', '/etc/metal/config.ign', '/etc/cloud/cloud.cfg.d/99_metal_userdata.cfg',
  '/var/lib/cloud/seed/nocloud/user-data', '/etc/metal/userdata.error', '/etc/motd.d/metal-userdata', '/etc/lldpd.d/metal-phone-home.conf',
  '/etc/systemd/system/serial-getty@ttyS0.service.d/10-metal-autologin.conf', '/etc/systemd/system/serial-getty@ttyS1.service.d/10-metal-autologin.conf',
  '/etc/systemd/system/getty@tty1.service.d/10-metal-autologin.conf', '/etc/metal/install.yaml', '/etc/metal/userdata',
  '/var/tmp', '/root', '/var/log/metal-installer.log', '/.dockerenv',
  '/etc/nftables/rules', '/etc/firewall-controller', '/etc/droptailer-client',
  ...FIREWALL_UNITS.map((u) => `/etc/systemd/system/${u}`),
];

interface InstallOptions {
  userdata?: string;
  lossyUntar?: boolean;
  nftFile?: string;
  /** Load the rules as nftables.service does at boot (in the container's own network namespace). */
  nftLoad?: boolean;
  /** The mode the hammer writes install.yaml and userdata with (default 0644, which happens). */
  deliveredMode?: string;
  /** Consumers the driver plays afterwards, with their parameters (see run-in-image.py). */
  after?: Record<string, unknown>;
  /** install.yaml's password (the fixtures': PASSWORD). */
  password?: string;
}

async function install(tag: string, installYaml: string, opts: InstallOptions = {}): Promise<Result> {
  const request = {
    install_yaml: installYaml,
    userdata: opts.userdata ?? null,
    delivered_mode: opts.deliveredMode ?? '644',
    lossy_untar: opts.lossyUntar ?? false,
    sudo_password: opts.password ?? PASSWORD,
    files: FILES,
    globs: ['/etc/systemd/network/*'],
    units: ['metal-userdata-test.service', 'frr.service', 'ssh.service', 'lldpd.service', 'chrony@vrf104009.service', ...FIREWALL_UNITS],
    nft_file: opts.nftFile ?? null,
    nft_load: opts.nftLoad ?? false,
    after: opts.after ?? {},
  };
  const started = performance.now();
  // NET_ADMIN: `nft --check` asks the kernel (of the container's own network namespace), the
  // firewall test loads the rules there, and the consumers build veth pairs in it; SYS_ADMIN: FRR's
  // daemons run only with it, and the cloud-init boot mounts an empty /var/lib
  const sysAdmin = ['bgp_local', 'cloud_init'].some((k) => k in (opts.after ?? {}));
  const caps = ['--cap-add', 'NET_ADMIN', ...(sysAdmin ? ['--cap-add', 'SYS_ADMIN'] : [])];
  const r = await run(['docker', 'run', '-i', '--rm', '--network', 'none', ...caps, tag, 'python3', '-c', LOADER], {
    input: JSON.stringify({ driver: DRIVER, request }),
    timeoutMs: 300_000,
    nothrow: true,
  });
  if (r.code !== 0) throw new Error(`the installer's driver in ${tag} exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  const out = { ...(JSON.parse(r.stdout) as Omit<Result, 'seconds'>), seconds: (performance.now() - started) / 1000 };
  for (const [name, v] of Object.entries(out.after ?? {})) assert.not.ok(v?.driver_error, `driver step ${name}: ${v?.driver_error}`);
  return out;
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

const MACHINE_STEPS = ['check-input', 'permissions', 'hostname', 'resolv.conf', 'ntp', 'user', 'network', 'frr', 'lldp', 'ssh-keys', 'console', 'userdata', 'bootloader', 'services', 'build-meta'];
const FIREWALL_STEPS = [...MACHINE_STEPS.slice(0, 9), 'nftables', 'firewall-units', 'ssh-keys', ...MACHINE_STEPS.slice(11)];
const UUID = '8db04025-af46-47c9-a5c4-2e2d3795e827';

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
allow-reserved-ranges
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
no zebra nexthop kernel enable
!
router bgp 4200003073
 bgp router-id 10.0.17.2
 bgp bestpath as-path multipath-relax
 neighbor TOR peer-group
 neighbor TOR remote-as external
 neighbor TOR timers 2 8
 neighbor lan0 interface peer-group TOR
 neighbor lan1 interface peer-group TOR
 neighbor LOCAL peer-group
 neighbor LOCAL remote-as internal
 neighbor LOCAL timers 2 8
 neighbor LOCAL route-map local-in in
 bgp listen range 0.0.0.0/0 peer-group LOCAL
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
  neighbor TOR route-map only-self-out out
  neighbor TOR activate
 exit-address-family
!
bgp as-path access-list SELF permit ^$
!
route-map local-in permit 10
 set weight 32768
!
route-map only-self-out permit 10
 match as-path SELF
!
route-map only-self-out deny 99
!
line vty
!
`,
  '/etc/lldpd.d/metal-phone-home.conf': `${H}
# LLDP phone-home as metal-stack's go-lldpd sends it: metal-core on the leaves takes a frame
# whose System Description contains "provisioned" as a sign of life of the machine named by its
# System Name.
configure system hostname ${UUID}
configure system description "provisioned since 2025-11-25T10:00:00Z"
configure system interface pattern lan*
configure lldp portidsubtype ifname
configure lldp tx-interval 2
configure lldp tx-hold 2
`,
  '/etc/systemd/system/serial-getty@ttyS1.service.d/10-metal-autologin.conf': `${H}
# Machines: the console logs user metal in without a password (firewalls keep asking).
[Service]
ExecStart=
ExecStart=-/sbin/agetty -o '-p -f -- \\\\u' --keep-baud 115200,57600,38400,9600 --autologin metal - $TERM
`,
  '/etc/systemd/system/getty@tty1.service.d/10-metal-autologin.conf': `${H}
# Machines: the console logs user metal in without a password (firewalls keep asking).
[Service]
ExecStart=
ExecStart=-/sbin/agetty -o '-p -f -- \\\\u' --noclear --autologin metal - $TERM
`,
  '/home/metal/.ssh/authorized_keys': `${KEY}\n`,
  '/etc/machine-id': '',
  '/var/lib/dbus/machine-id': '',
};
const MACHINE_GRUB_CMDLINE = 'console=ttyS1,115200n8 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300';
/** boot-info.yaml's: GRUB's linux line, which grub-mkconfig starts with root=UUID=<fs> ro. */
const MACHINE_CMDLINE = `root=UUID=bbbce17d-e50e-4ce4-a645-2ec36ce41b36 ro ${MACHINE_GRUB_CMDLINE}`;

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

/** What every successful run leaves, whatever the role. `cmdline` is boot-info.yaml's. */
function assertCommon(r: Result, def: ImageDef, cmdline: string, steps: string[], password = PASSWORD): void {
  assert.is(r.rc, 0, `installer failed: ${failure(r.log)}`);
  assert.equal(stepsOk(r.log), steps, 'steps in order');
  assert.match(r.log, /grub-install, update-grub2|grub-install, \S+, efibootmgr skipped \(INSTALL_SKIP_BOOTLOADER=1\)/);

  // user metal: uid 1000, primary group = the image's sudo group, home, bash; key and modes
  assert.match(r.checks.passwd, new RegExp(`^metal:x:1000:\\d+::/home/metal:/bin/bash\\n$`));
  assert.match(r.checks.id, new RegExp(`^uid=1000\\(metal\\) gid=\\d+\\(${def.contract.sudo_group}\\) groups=\\d+\\(${def.contract.sudo_group}\\)\\n$`));
  assert.is(meta(r, '/home/metal/.ssh'), `dir 0700 metal:${def.contract.sudo_group}`);
  assert.is(meta(r, '/home/metal/.ssh/authorized_keys'), `file 0600 metal:${def.contract.sudo_group}`);
  // the console password of install.yaml is metal's, and only it; sudo works with it (whether or
  // not the image's sudoers asks for it)
  assert.equal(r.checks.password, { console_password: true, another: false });
  assert.is(r.checks.sudo?.rc, 0, `sudo with the fixture password: ${r.checks.sudo?.out}`);
  assert.match(r.checks.sudo!.out, /(^|\n)root\n$/);
  // the hammer's files hold secrets: 0600 whatever mode they arrived with
  assert.is(meta(r, '/etc/metal/install.yaml'), 'file 0600 root:root');
  if (r.files['/etc/metal/userdata']?.type === 'file') assert.is(meta(r, '/etc/metal/userdata'), 'file 0600 root:root');

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
  // GRUB gets the same command line without root= and ro: grub-mkconfig puts them in front
  const grub = text(r, '/etc/default/grub');
  const grubCmdline = cmdline.replace(/^root=UUID=\S+ ro /, '');
  assert.is.not(grubCmdline, cmdline, `boot-info's cmdline starts with root=UUID=<uuid> ro: ${cmdline}`);
  assert.ok(grub.includes(`\nGRUB_CMDLINE_LINUX="${grubCmdline}"\n`), grub);
  assert.not.match(grub, /root=/);
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
  assert.not.ok(r.log.includes(password), 'the password must not be logged');
  assert.equal(r.checks.permissions_mismatches, [], 'recorded owners/modes/capabilities hold after the run');
}

function assertFiles(r: Result, want: Record<string, string>): void {
  for (const [path, content] of Object.entries(want)) assert.fixture(text(r, path), content);
}

function assertMachine(r: Result, def: ImageDef): void {
  assertCommon(r, def, MACHINE_CMDLINE, MACHINE_STEPS);
  assertFiles(r, MACHINE_FILES);
  assert.is(r.checks.units['lldpd.service'], 'enabled', 'lldpd sends the phone-home');
  assert.equal(Object.keys(r.files).filter((p) => p.startsWith('/etc/systemd/network/')), [
    '/etc/systemd/network/00-lo.network', '/etc/systemd/network/10-lan0.link', '/etc/systemd/network/10-lan0.network',
    '/etc/systemd/network/11-lan1.link', '/etc/systemd/network/11-lan1.network',
  ]);
}

// ---- the tests -------------------------------------------------------------------------------

const DEBIAN = loadImageDef('debian');
/** Derived images are this run's own: other worktrees run this file at the same time on the shared daemon. */
const TEST_TAG = `metal-images-test/installer-${process.pid}`;
const targets: Target[] = [];
const notBuilt: string[] = [];
const timings: string[] = [];
let standIn: Target | undefined;
// Derived images are this run's own (the docker daemon is shared: another checkout running this
// file at the same time must neither overwrite them nor remove them under this run).

let setup: Promise<void> | undefined;
/** Find the built images and derive the test images, once; every test awaits it, so a failure shows. */
const ready = (): Promise<void> => (setup ??= prepare());

async function prepare(): Promise<void> {
  const unloadable: string[] = [];
  for (const def of allDefs(unloadable)) {
    const base = imageTag(def);
    const name = def.variant ? `${def.os}-${def.variant}` : def.os;
    if (await imageExists(base)) targets.push({ def, name, base, tag: `${TEST_TAG}-${name}:${def.version}` });
    else notBuilt.push(`${base} (make ${def.os}${def.variant ? ` VARIANT=${def.variant}` : ''})`);
  }
  const t0 = performance.now();
  for (const t of targets) await derive(t.def, t.base, t.tag);
  // The firewall role also runs on the Debian userland with chrony added (what the Debian-based
  // firewall variant is) and an nftables.conf that includes the installer's rules: the installer's
  // firewall path is tested whether or not a firewall image is built, and whatever that image ships.
  const debian = targets.find((t) => t.def.os === 'debian' && !t.def.variant);
  if (debian) {
    const def: ImageDef = { ...debian.def, machine_type: 'firewall' };
    standIn = { def, name: 'firewall-on-debian', base: debian.base, tag: `${TEST_TAG}-firewall-on-debian:12` };
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

test('the Debian image is built', async () => {
  await ready();
  assert.ok(targets.some((t) => t.def === DEBIAN || (t.def.os === 'debian' && !t.def.variant)), `${imageTag(DEBIAN)} is missing: run make debian`);
});

// Rescans the image and prints the record it would write, then the one it ships.
const RECORD_NOW = 'import sys; sys.path.insert(0, "/etc/metal/installer"); from metal_installer import perms; sys.stdout.write(perms.format_entries(perms.scan("/")))';

test('every built image ships /install.sh, the installer, its own os.yaml and a current permissions record', async () => {
  await ready();
  for (const t of targets) {
    const fix = `it must pass through ${FINALIZE_DIR}/Dockerfile (make ${t.def.os}), whose installer lines are:\n${DOCKERFILE_LINES.join('\n')}`;
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
  // the unit tests read metal-stack's reference data too: mounted where METAL_REFERENCE_DIR says;
  // NET_ADMIN for nft --check in the container's own namespace
  const r = await run(['docker', 'run', '--rm', '--network', 'none', '--cap-add', 'NET_ADMIN', '-v', `${ROOT}:/src:ro`, '-w', '/src',
    '-v', `${referenceDir()}:/reference:ro`, '-e', 'METAL_REFERENCE_DIR=/reference', '-e', 'PYTHONDONTWRITEBYTECODE=1',
    imageTag(DEBIAN), 'python3', '-m', 'unittest', 'discover', '-v', '-s', 'tests/installer'], { nothrow: true });
  assert.is(r.code, 0, r.stderr);
  // only the network-namespace comparison cannot run in a container without CAP_SYS_ADMIN (the host run has it)
  const skipped = r.stderr.split('\n').filter((l) => / \.\.\. skipped /.test(l)).map((l) => l.split(' ')[0]);
  assert.equal(skipped, ['test_ours_and_metal_networkers_load_to_the_same_ruleset'], r.stderr);
  assert.match(r.stderr, /\nOK \(skipped=1\)\n$/);
});

test('machine images: machine fixture + Ignition userdata, delivered 0644, after a lossy untar: the exact files', async () => {
  await ready();
  const machines = targets.filter((t) => t.def.machine_type === 'machine');
  assert.ok(machines.length > 0);
  for (const t of machines) {
    const r = await install(t.tag, fixture('machine.yaml'), { userdata: fixture('userdata-ignition.json'), lossyUntar: true, deliveredMode: '644' });
    timings.push(`${t.name} machine run ${r.seconds.toFixed(1)}s`);
    try {
      assertMachine(r, t.def);
      // the untar damage was repaired: /root private again, frr's files its own
      assert.ok((r.checks.damaged ?? 0) >= 10 && r.checks.permissions_recorded >= 10, JSON.stringify(r.checks));
      assert.match(r.log, /\[2\/15\] permissions ok \(\d+\.\d+s\): [1-9]\d* of \d+ recorded entries restored; \/var\/tmp 1777; install\.yaml and userdata 0600\n/);
      assert.is(meta(r, '/root'), 'dir 0700 root:root');
      // Ignition ran its files stage; its unit is enabled by the presets
      assert.is(text(r, '/etc/metal-userdata-test'), 'written by ignition\n');
      assert.is(meta(r, '/etc/metal/config.ign'), 'file 0600 root:root');
      assert.match(r.log, /userdata ok \(\d+\.\d+s\): Ignition config \(spec 2\.3\.0\) applied \(files stage\)/);
      assert.is(r.checks.units['metal-userdata-test.service'], 'enabled');
      assert.is(r.checks.units['frr.service'], 'enabled');
      assert.is(r.files['/etc/metal/userdata.error']?.type, 'missing');
    } catch (e) {
      throw new Error(`${t.name}: ${assertion(e)}\n--- installer log ---\n${r.log}`);
    }
  }
});

// ---- metal-stack's own machine inputs ----------------------------------------------------------

/** Every machine install.yaml of the reference data, as the test feeds it to the installer. */
function referenceMachineInputs(): { name: string; yaml: string }[] {
  const read = (...p: string[]): string => readFileSync(referenceFile(...p), 'utf8');
  // metal-networker's inputs predate "role" and "root_uuid", which every current hammer writes:
  // those two, and only those, are added (as tests/installer/test_reference_inputs.py does)
  const networker = read('metal-networker', 'machine.yaml');
  for (const k of ['role', 'root_uuid']) assert.not.ok(new RegExp(`^${k}:`, 'm').test(networker), `metal-networker/machine.yaml has ${k} now: stop adding it`);
  return [
    { name: 'hammer/machine.yaml', yaml: read('hammer', 'machine.yaml') },
    { name: 'metal-networker/machine.yaml', yaml: `${networker}\nrole: machine\nroot_uuid: 543eb7f8-98d4-d986-e669-824dbebe69e5\n` },
    { name: 'metal-images-test/machine.yaml', yaml: read('metal-images-test', 'machine.yaml') },
  ];
}

interface RefInput {
  hostname: string;
  password: string;
  machineuuid?: string;
  timestamp?: string;
  root_uuid: string;
  networks: { networktype?: string; private?: boolean; asn: number; ips: string[] }[];
  nics: { mac: string }[];
  dns_servers?: { ip: string }[] | null;
  ntp_servers?: { address: string }[] | null;
}

test('Debian: the installer runs over every machine install.yaml of the reference data, and the results are the input\'s', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  for (const input of referenceMachineInputs()) {
    const doc = parse(input.yaml) as RefInput;
    const r = await install(t.tag, input.yaml, { password: doc.password });
    timings.push(`${input.name} ${r.seconds.toFixed(1)}s`);
    try {
      const primary = doc.networks.find((n) => (n.networktype ?? '').startsWith('privateprimary'))!;
      assertCommon(r, t.def, `root=UUID=${doc.root_uuid} ro console=ttyS1,115200n8 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300`, MACHINE_STEPS, doc.password);
      assert.is(text(r, '/etc/hostname'), `${doc.hostname}\n`);
      const frr = text(r, '/etc/frr/frr.conf');
      assert.ok(frr.includes(`\nrouter bgp ${primary.asn}\n bgp router-id ${primary.ips[0]}\n`), frr);
      doc.nics.forEach((n, i) => assert.match(text(r, `/etc/systemd/network/1${i}-lan${i}.link`), new RegExp(`\nPermanentMACAddress=${n.mac.toLowerCase()}\n`)));
      const ntp = (doc.ntp_servers ?? []).map((s) => s.address);
      assert.is(text(r, '/etc/systemd/timesyncd.conf'), `${H}\n[Time]\nNTP=${(ntp.length ? ntp : ['time.cloudflare.com']).join(' ')}\n`);
      const dns = (doc.dns_servers ?? []).map((s) => s.ip);
      assert.is(text(r, '/etc/resolv.conf'), `${H}\n${(dns.length ? dns : ['8.8.8.8', '8.8.4.4']).map((d) => `nameserver ${d}`).join('\n')}\n`);
      const lldp = r.files['/etc/lldpd.d/metal-phone-home.conf'];
      if (doc.machineuuid) {
        assert.match(text(r, '/etc/lldpd.d/metal-phone-home.conf'), new RegExp(`\nconfigure system hostname ${doc.machineuuid}\nconfigure system description "provisioned since ${doc.timestamp}"\n`));
      } else {
        // upstream's own fixture: no phone-home, and the log says so
        assert.is(lldp?.type, 'missing');
        assert.match(r.log, /note: no machineuuid: LLDP sends no phone-home/);
      }
      if (input.name.startsWith('metal-networker/')) {
        // statement for statement metal-networker's frr.conf.machine, but for the listed differences
        const check = await run(['python3', '-B', '-c', FRR_CONFORMANCE], { cwd: ROOT, input: frr, nothrow: true, env: { ...process.env, METAL_REFERENCE_DIR: referenceDir() } });
        assert.is(check.code, 0, `frr.conf against metal-networker/frr.conf.machine:\n${check.stdout}${check.stderr}`);
        console.log(`installer level (a): installed frr.conf vs metal-networker's frr.conf.machine:\n${check.stdout}`);
      }
    } catch (e) {
      throw new Error(`${input.name}: ${(e as Error).message}\n--- installer log ---\n${r.log}`);
    }
  }
});

/** Compares the frr.conf on stdin with metal-networker's, with tests/installer/test_frr_conformance.py's parser and allowances. */
const FRR_CONFORMANCE = `
import sys
sys.path.insert(0, "tests/installer")
from test_frr_conformance import ONLY_OURS, ONLY_UPSTREAM, diff
from reference import reference_file
ours, upstream = diff(sys.stdin.read(), open(reference_file("metal-networker", "frr.conf.machine")).read())
for b, s in ours: print(f"+ {b or '(top)'}: {s}")
for b, s in upstream: print(f"- {b or '(top)'}: {s}")
sys.exit(0 if (set(ours), set(upstream)) == (set(ONLY_OURS), set(ONLY_UPSTREAM)) else 1)
`;
import { ensureDebianImage } from '../helpers/debian.ts';

// the shared Debian fixture, built by its named helper if missing (no dependency on file order)
test.before(async () => {
  await ensureDebianImage();
});

// ---- the consumers --------------------------------------------------------------------------

test('Debian: the leaves see the phone-home: System Name = machine UUID, "provisioned since <timestamp>", TTL 4 s, on lan0 and lan1 only', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const r = await install(t.tag, fixture('machine.yaml'), { after: { lldp: {} } });
  assertMachine(r, t.def);
  const { neighbours: n, machine_config: c } = r.after.lldp as { neighbours: Record<string, string>; machine_config: Record<string, string> };
  console.log(`installer level (a): a leaf's lldpcli sees on leaf0: ${Object.entries(n).filter(([k]) => k.startsWith('lldp.leaf0.') && /chassis\.(name|descr)|port\.(ifname|ttl)/.test(k)).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  for (const [i, leaf] of ['leaf0', 'leaf1'].entries()) {
    assert.is(n[`lldp.${leaf}.chassis.name`], UUID, JSON.stringify(n));
    assert.is(n[`lldp.${leaf}.chassis.descr`], 'provisioned since 2025-11-25T10:00:00Z');
    assert.is(n[`lldp.${leaf}.port.ttl`], '4');
    assert.is(n[`lldp.${leaf}.port.ifname`], `lan${i}`, 'port id = interface name, as go-lldpd');
  }
  assert.equal(Object.keys(n).filter((k) => k.startsWith('lldp.leaf9.')), [], 'eth9 is no lan interface: nothing is sent there');
  assert.equal([c['configuration.config.tx-delay'], c['configuration.config.tx-hold'], c['configuration.config.iface-pattern']], ['2', '2', 'lan*']);
});

test('Debian: a BGP speaker on the node peers with the machine\'s FRR (LOCAL, any address) and its service address gets weight 32768', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  // like MetalLB's speaker: iBGP to the node's address, a LoadBalancer address of the internet
  // network, next hop a pod address
  const params = { node_ip: '10.0.17.2', asn: 4200003073, router_id: '192.0.2.1', prefix: '185.1.2.10/32', next_hop: '10.244.0.7' };
  const r = await install(t.tag, fixture('machine.yaml'), { after: { bgp_local: params } });
  assertMachine(r, t.def);
  const b = r.after.bgp_local as { session: { received?: number[]; notification?: string; error?: string }; route: string; summary: string };
  assert.not.ok(b.session.error ?? b.session.notification, `session: ${JSON.stringify(b.session)}`);
  assert.equal(b.session.received!.slice(0, 2), [1, 4], 'OPEN and KEEPALIVE from FRR');
  const peer = (JSON.parse(b.summary) as { peers: Record<string, { dynamicPeer?: boolean; state: string; pfxRcd: number }> }).peers['10.0.17.2'];
  assert.ok(peer, b.summary);
  assert.equal([peer!.dynamicPeer, peer!.state, peer!.pfxRcd], [true, 'Established', 1]);
  const route = JSON.parse(b.route) as { paths: { weight: number; valid: boolean; aspath: { length: number }; bestpath?: { overall: boolean }; peer: { peerId: string } }[] };
  const path = route.paths?.[0];
  assert.ok(path, `no route ${params.prefix}: ${b.route}`);
  assert.equal([path!.weight, path!.valid, path!.bestpath?.overall, path!.aspath.length, path!.peer.peerId], [32768, true, true, 0, '10.0.17.2']);
  console.log(`installer level (a): FRR took ${params.prefix} from the dynamic LOCAL peer 10.0.17.2: weight ${path!.weight}, best, AS path empty (so only-self-out lets it out to the leaves)`);
});

test('Debian: GRUB\'s real grub-mkconfig writes one root= and the same kernel line as boot-info.yaml', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const r = await install(t.tag, fixture('machine.yaml'), { after: { grub: { root_uuid: 'bbbce17d-e50e-4ce4-a645-2ec36ce41b36' } } });
  assertMachine(r, t.def);
  const g = r.after.grub as { argv: string[]; run: Cmd; linux_lines: string[] };
  assert.is(g.run.rc, 0, g.run.out);
  assert.equal(g.argv, t.def.contract.grub_mkconfig);
  assert.ok(g.linux_lines.length >= 1, g.run.out);
  const first = g.linux_lines[0]!.split(/\s+/);
  const k = r.checks.kernel_version[0]!;
  assert.equal(first.slice(0, 2), ['linux', `/boot/vmlinuz-${k}`]);
  assert.equal(first.slice(2), MACHINE_CMDLINE.split(' '), `GRUB: ${g.linux_lines[0]}\nboot-info: ${MACHINE_CMDLINE}`);
  for (const line of g.linux_lines) assert.is(line.split(/\s+/).filter((a) => a.startsWith('root=')).length, 1, line);
  console.log(`installer level (a): grub-mkconfig's first linux line: ${g.linux_lines[0]}`);
});

test('Debian: Cluster API userdata (Jinja header, #cloud-config on line 2) is found by ds-identify with /var/lib unmounted and applied by cloud-init at first boot', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const ud = fixture('userdata-cluster-api.yaml');
  const files = ['/run/kubeadm/kubeadm-join-config.yaml', '/run/cluster-api/bootstrap-success.complete'];
  const r = await install(t.tag, fixture('machine.yaml'), { userdata: ud, after: { cloud_init: { files } } });
  timings.push(`debian cluster-api userdata run ${r.seconds.toFixed(1)}s`);
  assertMachine(r, t.def);
  assert.match(r.log, /check-input ok .*userdata cloud-config \(Jinja template\)/);
  assert.match(r.log, /\$ cloud-init devel render \S+ --instance-data \S+\n/);
  assert.match(r.log, /userdata ok \(\d+\.\d+s\): cloud-config \(Jinja template, rendered by cloud-init at boot\) valid, handed to cloud-init in \/etc\/cloud\/cloud\.cfg\.d\/99_metal_userdata\.cfg; cloud-init applies it at first boot\n/);
  assert.is(meta(r, '/etc/cloud/cloud.cfg.d/99_metal_userdata.cfg'), 'file 0600 root:root');
  assert.is((parse(text(r, '/etc/cloud/cloud.cfg.d/99_metal_userdata.cfg')) as { datasource: { NoCloud: { 'user-data': string } } }).datasource.NoCloud['user-data'], ud);
  assert.not.ok(r.log.includes('kubeadm.k8s.io'), 'the userdata stays out of the log');
  const c = r.after.cloud_init as Record<string, any>;
  // boot: the generator sees an empty /var/lib, and still enables cloud-init with NoCloud
  assert.equal(c.boot.var_lib, [], 'the generator ran with /var/lib empty');
  assert.equal(c.boot.links, ['early/multi-user.target.wants/cloud-init.target'], c.boot.generator_log);
  assert.match(c.boot.result_cfg, /^datasource_list: \[ NoCloud, None \]$/m);
  assert.ok(c.boot.ds_identify.includes("check for 'NoCloud' returned found"), c.boot.ds_identify.join('\n'));
  console.log(`installer level (a): ds-identify with /var/lib unmounted: ${c.boot.ds_identify.filter((l: string) => /NoCloud|returning/.test(l)).join(' | ')}; generator: ${c.boot.links.join(' ')}`);
  // control: without the installer's datasource config the same boot leaves cloud-init out
  assert.equal(c.control_without_cfg.links, [], 'without the config, cloud-init stays disabled');
  assert.match(c.control_without_cfg.generator_log, /ds-identify rc=1/);
  // first boot: cloud-init renders the template with the datasource's meta-data and runs it
  for (const s of c.stages) assert.is(s.rc, 0, s.out);
  assert.match(c.status, /DataSourceNoCloud \[seed=ds_config\]/);
  const join = c.files['/run/kubeadm/kubeadm-join-config.yaml'];
  assert.is(join.type, 'file', JSON.stringify(c.stages));
  assert.match(join.text, /\n {2}name: 'machine-fixture'\n/);
  assert.match(join.text, new RegExp(`\\n {4}provider-id: 'metal://${UUID}'\\n`));
  assert.is(join.mode, '0640');
  assert.is(c.files['/run/cluster-api/bootstrap-success.complete'].text, 'success\n');
});

test('Debian: plain cloud-config is applied at first boot the same way', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const r = await install(t.tag, fixture('machine.yaml'), { userdata: fixture('userdata-cloud-config.yaml'), after: { cloud_init: { files: ['/etc/metal-userdata-test', '/var/lib/metal-userdata-runcmd'] } } });
  assertMachine(r, t.def);
  assert.match(r.log, /\$ cloud-init schema --config-file \S+\n/);
  assert.is(r.files['/var/lib/cloud/seed/nocloud/user-data']?.type, 'missing', 'nothing in /var/lib, which the generator cannot see');
  const c = r.after.cloud_init as Record<string, any>;
  assert.equal(c.boot.links, ['early/multi-user.target.wants/cloud-init.target']);
  for (const s of c.stages) assert.is(s.rc, 0, s.out);
  assert.is(c.files['/etc/metal-userdata-test'].text, 'written by cloud-init\n');
  assert.is(c.files['/var/lib/metal-userdata-runcmd'].type, 'file');
});

test('Debian: bad install.yaml fixtures stop in check-input with the named error and change nothing', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const cases: Record<string, string> = {
    'bad-no-hostname.yaml': 'metal-installer: FAILED in step 1 check-input: /etc/metal/install.yaml: field "hostname" is empty',
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

test('Debian: broken userdata is reported loudly (log, /etc/metal/userdata.error, login banner) and the installation completes', async () => {
  await ready();
  const t = targets.find((x) => x.def.os === 'debian' && !x.def.variant)!;
  const cases = [
    { ud: fixture('userdata-bad-cloud-config.yaml'), kind: 'cloud-config', applied: 'it was handed to cloud-init in /etc/cloud/cloud.cfg.d/99_metal_userdata.cfg as it is, but cloud-init will report errors', detail: /write_files: '\/etc\/metal-userdata-test' is not of type 'array'/ },
    { ud: fixture('userdata-bad-ignition.json'), kind: 'ignition', applied: 'it was not applied', detail: /Ignition config has "ignition\.version" "3\.4\.0": this image runs Ignition spec 2\.x/ },
    { ud: '#!/bin/sh\necho a shell script is neither cloud-config nor Ignition\n', kind: 'ignition', applied: 'it was not applied', detail: /userdata is neither cloud-config \(no #cloud-config in the first 3 lines\) nor an Ignition JSON config/ },
  ];
  for (const [i, c] of cases.entries()) {
    // the first case also logs in on the console: autologin, and the banner names the problem
    const r = await install(t.tag, fixture('machine.yaml'), { userdata: c.ud, after: i === 0 ? { console: {} } : {} });
    try {
      assertMachine(r, t.def);
      assert.ok(r.log.includes(`\nmetal-installer: WARNING: userdata (${c.kind}): ${c.applied}: `), r.log);
      assert.match(r.log, /\nmetal-installer: WARNING: the installation goes on; details in \/etc\/metal\/userdata\.error, the login banner points there\n/);
      assert.ok(text(r, '/var/log/metal-installer.log').includes(`WARNING: userdata (${c.kind}): ${c.applied}`), 'in the log file too');
      assert.match(r.log, new RegExp(`userdata ok \\(\\d+\\.\\d+s\\): WARNING ${c.kind} userdata: `));
      assert.is(meta(r, '/etc/metal/userdata.error'), 'file 0600 root:root');
      const report = text(r, '/etc/metal/userdata.error');
      assert.ok(report.includes(`The ${c.kind} userdata (/etc/metal/userdata) has a problem: ${c.applied}\n`), report);
      assert.match(report, c.detail);
      assert.is(text(r, '/etc/motd.d/metal-userdata'), "\n  WARNING: this machine's userdata had a problem at installation; see /etc/metal/userdata.error (sudo).\n\n");
      assert.is(r.files['/etc/metal/config.ign']?.type, 'missing', 'no Ignition config was applied');
      assert.is(r.files['/etc/cloud/cloud.cfg.d/99_metal_userdata.cfg']?.type, c.kind === 'cloud-config' ? 'file' : 'missing');
      if (i === 0) {
        const logins = r.after.console as Record<string, { out: string }>;
        for (const p of ['/etc/systemd/system/getty@tty1.service.d/10-metal-autologin.conf', '/etc/systemd/system/serial-getty@ttyS1.service.d/10-metal-autologin.conf']) {
          assert.match(logins[p]!.out, /login: metal \(automatic login\)/, logins[p]!.out);
          assert.match(logins[p]!.out, /WARNING: this machine's userdata had a problem at installation; see \/etc\/metal\/userdata\.error/);
          assert.match(logins[p]!.out, /LOGGED-IN-AS=metal/);
        }
        const control = Object.entries(logins).find(([k]) => k.startsWith('control: '))![1];
        assert.match(control.out, /Password:/, `the unit's own getty asks: ${control.out}`);
        assert.not.match(control.out, /LOGGED-IN-AS/);
      }
    } catch (e) {
      throw new Error(`userdata case ${i + 1} (${c.kind}): ${(e as Error).message}\n--- installer log ---\n${r.log}`);
    }
  }
});

test('firewall images: firewall fixture: VRFs over EVPN (vtysh --dryrun), nftables loaded, chrony and the add-ons in their VRFs', async () => {
  await ready();
  const firewalls = [...targets.filter((t) => t.def.machine_type === 'firewall'), ...(standIn ? [standIn] : [])];
  assert.ok(firewalls.length > 0);
  await eachFirewall(firewalls, async (t) => {
    const r = await install(t.tag, fixture('firewall.yaml'), { nftFile: t.def.contract.nftables_conf, nftLoad: true });
    timings.push(`${t.name} firewall run ${r.seconds.toFixed(1)}s`);
    try {
      assertCommon(r, t.def, 'root=UUID=1f6a1d9b-3a5e-4a38-9d5c-6f2b1c0e7a44 ro console=ttyS0,115200n8 init=/sbin/init net.ifnames=0 biosdevname=0 nvme_core.io_timeout=300', FIREWALL_STEPS);
      assertFiles(r, FIREWALL_FILES);
      assert.equal(Object.keys(r.files).filter((p) => p.startsWith('/etc/systemd/network/')).sort(), [...FIREWALL_NETWORKD].sort());
      // firewalls keep the console password: no autologin
      assert.equal(Object.keys(r.files).filter((p) => p.includes('autologin') && r.files[p]!.type !== 'missing'), []);
      assert.match(text(r, '/etc/lldpd.d/metal-phone-home.conf'), /\nconfigure system hostname 2b6e2a4c-8f0d-4a1e-b7c3-5d9e0f1a2b3c\n/);
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
      throw new Error(`${t.name}: ${assertion(e)}\n--- installer log ---\n${r.log}`);
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
      assert.match(r.log, /userdata ok \(\d+\.\d+s\): Ignition config \(spec \d+\.\d+\.\d+\) applied \(files stage\)/);
      for (const u of ['firewall-controller.service', 'droptailer.service']) assert.is(r.checks.units[u], 'enabled', u);
    } catch (e) {
      throw new Error(`${t.name}: ${assertion(e)}\n--- installer log ---\n${r.log}`);
    }
  });
});

/** An assertion's message with what it compared (uvu keeps actual/expected out of the message). */
function assertion(e: unknown): string {
  const a = e as Error & { actual?: unknown; expects?: unknown; generated?: boolean };
  return a.generated ? `${a.message} actual ${JSON.stringify(a.actual)}, expected ${JSON.stringify(a.expects)}` : a.message;
}

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
