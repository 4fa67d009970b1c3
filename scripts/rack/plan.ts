// Pure: what the rack provisions, as metal-api would hand it to the metal-hammer: metal-stack's
// default filesystem layout on the VM's virtio disk, the machine's allocation (the hammer's
// reference machine.yaml with this run's ssh key, password and leaves), and the names of what a
// run creates on the host (namespaces, taps), which a later run uses to sweep a killed run's
// leftovers.

/** The leaves: each lan NIC of the machine is cabled to one of them. */
export interface LeafPlan {
  name: 'leaf1' | 'leaf2';
  asn: number;
  /** Router id and loopback of the leaf (announced to the machine). */
  loopback: string;
  /** The machine's NIC on this leaf, as install.yaml names it. */
  machineNic: { name: string; mac: string };
  /** The leaf's port to the machine: its MAC is the neighbour MAC of install.yaml. */
  port: { name: string; mac: string };
}

/** Anycast address both leaves announce: a DNS resolver the machine reaches over both links. */
export const ANYCAST_DNS = '192.0.2.53';
/** The name the leaves' resolver answers (the image spec's DNS check resolves it). */
export const RACK_DNS_NAME = 'images.rack.metal.test';
export const RACK_DNS_ANSWER = '192.0.2.80';

export const LEAVES: readonly LeafPlan[] = [
  { name: 'leaf1', asn: 4200000001, loopback: '192.0.2.1', machineNic: { name: 'lan0', mac: '00:03:00:11:11:01' }, port: { name: 'Ethernet3', mac: '44:38:39:00:00:1a' } },
  { name: 'leaf2', asn: 4200000002, loopback: '192.0.2.2', machineNic: { name: 'lan1', mac: '00:03:00:11:12:01' }, port: { name: 'Ethernet3', mac: '44:38:39:00:00:04' } },
];

/** The management NIC (user network, ssh): its own MAC, matched by the test-only network file. */
export const MGMT_MAC = '52:54:00:6d:67:6d';

export interface LayoutPartition {
  number: number;
  label: string;
  size: number;
  gpttype: string;
}
export interface LayoutFilesystem {
  path: string;
  device: string;
  format: string;
  label: string;
  createoptions: string[];
  mountoptions: string[];
}
export interface Layout {
  disks: { device: string; partitions: LayoutPartition[] }[];
  filesystems: LayoutFilesystem[];
}

/**
 * metal-stack's default filesystem layout (GPT: ESP 500 MiB vfat at /boot/efi, root 5000 MiB
 * ext4, /var/lib ext4 on the rest, a tmpfs on /tmp), for a disk at `device`.
 */
export function defaultLayout(device = '/dev/vda'): Layout {
  const part = (n: number): string => `${device}${/\d$/.test(device) ? 'p' : ''}${n}`;
  return {
    disks: [{
      device,
      partitions: [
        { number: 1, label: 'efi', size: 500, gpttype: 'ef00' },
        { number: 2, label: 'root', size: 5000, gpttype: '8300' },
        { number: 3, label: 'varlib', size: 0, gpttype: '8300' },
      ],
    }],
    filesystems: [
      { path: '/boot/efi', device: part(1), format: 'vfat', label: 'efi', createoptions: ['-F', '32'], mountoptions: [] },
      { path: '/', device: part(2), format: 'ext4', label: 'root', createoptions: [], mountoptions: [] },
      { path: '/var/lib', device: part(3), format: 'ext4', label: 'varlib', createoptions: [], mountoptions: [] },
      { path: '/tmp', device: 'tmpfs', format: 'tmpfs', label: '', createoptions: [], mountoptions: ['defaults', 'noatime', 'nosuid', 'nodev', 'noexec', 'mode=1777', 'size=512M'] },
    ],
  };
}

/** Size of the raw disk: the layout's fixed partitions plus 2 GiB for /var/lib. */
export const DISK_MIB = 500 + 5000 + 2048 + 2;

export interface MachinePlan {
  hostname: string;
  networks: Record<string, unknown>[];
  machineuuid: string;
  sshpubkeys: string[];
  password: string;
  nics: { identifier: string; mac: string; name: string; neighbors: { identifier: string; mac: string; name: string; neighbors: [] }[] }[];
  role: 'machine';
  dns_servers: { ip: string }[];
  ntp_servers: { address: string }[];
  /** base64 of /etc/metal/userdata. */
  userdata: string;
}

/** The machine's private primary address and ASN (from the reference allocation). */
export const MACHINE = { ip: '10.0.17.2', asn: 4200003073, hostname: 'machine', uuid: 'e0ab02d2-27cd-5a5e-8efc-080ba80cf258' } as const;

/**
 * The allocation: the values of the hammer's reference machine.yaml, except this run's ssh key and
 * password, the leaves' resolver as DNS server, and the NICs cabled to this rack's leaves.
 */
export function machinePlan(o: { sshPublicKey: string; password: string; userdata: string }): MachinePlan {
  return {
    hostname: MACHINE.hostname,
    networks: [
      { asn: MACHINE.asn, destinationprefixes: [], ips: [MACHINE.ip], nat: false, networkid: 'bc830818-2df1-4904-8c40-4322296d393d', networktype: 'privateprimaryunshared', prefixes: ['10.0.16.0/22'], private: true, projectid: 'b5f26a3b-9a4d-48db-a6b3-d1dd4ac4abec', underlay: false, vrf: 3981 },
      { asn: MACHINE.asn, destinationprefixes: ['0.0.0.0/0'], ips: ['185.1.2.3'], nat: true, networkid: 'internet', networktype: 'external', prefixes: ['185.1.2.0/24', '185.27.0.0/22'], private: false, projectid: '', underlay: false, vrf: 104009 },
    ],
    machineuuid: MACHINE.uuid,
    sshpubkeys: [o.sshPublicKey.trim()],
    password: o.password,
    nics: LEAVES.map((l) => ({ identifier: '', mac: l.machineNic.mac, name: l.machineNic.name, neighbors: [{ identifier: '', mac: l.port.mac, name: l.port.name, neighbors: [] }] })),
    role: 'machine',
    dns_servers: [{ ip: ANYCAST_DNS }],
    ntp_servers: [{ address: 'time.cloudflare.com' }, { address: '192.0.2.123' }],
    userdata: Buffer.from(o.userdata).toString('base64'),
  };
}

export interface Addition {
  path: string;
  mode: string;
  content: string;
  why: string;
}

/** Test-only: the management NIC, matched by its own MAC, static, no gateway, no DNS. */
export function rackAdditions(): Addition[] {
  return [{
    path: '/etc/systemd/network/00-metal-rack-mgmt.network',
    mode: '0644',
    content: [
      '# metal-images rack test only: the management NIC (QEMU user network, ssh from the test host).',
      '# Matched by its MAC alone; no gateway and no DNS, so the lan NICs carry all routing.',
      '[Match]',
      `MACAddress=${MGMT_MAC}`,
      '',
      '[Network]',
      'Address=10.0.2.15/24',
      'IPv6AcceptRA=no',
      'LinkLocalAddressing=no',
      '',
    ].join('\n'),
    why: `the management NIC ${MGMT_MAC}: 10.0.2.15/24 for ssh, no routes`,
  }];
}

export interface RunNames {
  /** Prefix shared by everything of this run (namespaces, taps). */
  tag: string;
  netns: Record<LeafPlan['name'], string>;
  tap: Record<LeafPlan['name'], string>;
}

/** Pure: the host-side names of a run, from the owner pid (taps must fit IFNAMSIZ, 15 bytes). */
export function runNames(pid: number): RunNames {
  const tag = `mrk${pid}`;
  return {
    tag,
    netns: { leaf1: `${tag}-leaf1`, leaf2: `${tag}-leaf2` },
    tap: { leaf1: `${tag}l1`, leaf2: `${tag}l2` },
  };
}

/** Pure: the owner pid of a host name made by runNames(), or null for names that are not ours. */
export function ownerOf(name: string): number | null {
  const m = /^mrk(\d+)(?:-leaf[12]|l[12])$/.exec(name);
  return m ? Number(m[1]) : null;
}
