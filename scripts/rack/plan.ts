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
  role: 'machine' | 'firewall';
  vpn?: { address: string; auth_key: string; connected: boolean } | null;
  firewall_rules?: { egress: FirewallRule[]; ingress: FirewallRule[] } | null;
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

export interface FirewallRule {
  comment: string;
  ports: number[];
  protocol: string;
  from?: string[];
  to: string[];
}

/** The firewall's addresses and VRFs (from the hammer's reference firewall.yaml). */
export const FIREWALL = {
  hostname: 'firewall', uuid: '0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d', asn: 4200003073,
  tenant: { vrf: 3981, ip: '10.0.16.2', prefix: '10.0.16.0/22' },
  internet: { vrf: 104009, ip: '185.1.2.3', prefixes: ['185.1.2.0/24', '185.27.0.0/22'] },
  underlay: { ip: '10.1.0.1', prefix: '10.0.12.0/22' },
  /** The egress port firewall_rules allows, and one it does not. */
  allowedPort: 443,
  deniedPort: 8080,
} as const;

/**
 * The firewall's allocation: the values of the hammer's reference firewall.yaml (tenant network,
 * internet with nat, underlay, firewall_rules with egress 443), with this run's ssh key and
 * password and NICs cabled to this rack's leaves. Without its `vpn`: with a VPN the firewall admits
 * ssh only through tailscale (its input chain), and the rack reaches the machine by ssh over the
 * management NIC; there is no headscale here to join.
 */
export function firewallPlan(o: { sshPublicKey: string; password: string; userdata: string }): MachinePlan {
  const f = FIREWALL;
  return {
    hostname: f.hostname,
    networks: [
      { asn: f.asn, destinationprefixes: [], ips: [f.tenant.ip], nat: false, networkid: 'bc830818-2df1-4904-8c40-4322296d393d', networktype: 'privateprimaryunshared', prefixes: [f.tenant.prefix], private: true, projectid: 'b5f26a3b-9a4d-48db-a6b3-d1dd4ac4abec', underlay: false, vrf: f.tenant.vrf },
      { asn: f.asn, destinationprefixes: ['0.0.0.0/0'], ips: [f.internet.ip], nat: true, networkid: 'internet', networktype: 'external', prefixes: [...f.internet.prefixes], private: false, projectid: '', underlay: false, vrf: f.internet.vrf },
      { asn: f.asn, destinationprefixes: [], ips: [f.underlay.ip], nat: false, networkid: 'underlay', networktype: 'underlay', prefixes: [f.underlay.prefix], private: false, projectid: '', underlay: true, vrf: 0 },
    ],
    machineuuid: f.uuid,
    sshpubkeys: [o.sshPublicKey.trim()],
    password: o.password,
    nics: LEAVES.map((l) => ({ identifier: '', mac: l.machineNic.mac, name: l.machineNic.name, neighbors: [{ identifier: '', mac: l.port.mac, name: l.port.name, neighbors: [] }] })),
    role: 'firewall',
    vpn: null,
    firewall_rules: {
      egress: [{ comment: 'allow apt update', ports: [f.allowedPort], protocol: 'tcp', to: ['0.0.0.0/0'] }],
      ingress: [{ comment: 'allow incoming https', from: ['0.0.0.0/0'], ports: [443], protocol: 'tcp', to: [`${f.internet.ip}/32`] }],
    },
    // the leaves' resolver (reference: 1.1.1.1 and 8.8.8.8, which the rack cannot reach)
    dns_servers: [{ ip: ANYCAST_DNS }],
    ntp_servers: [{ address: 'time.cloudflare.com' }, { address: '192.0.2.123' }],
    userdata: Buffer.from(o.userdata).toString('base64'),
  };
}

/** The internet host's rules server (scripts/rack/firewall.ts) and the address suricata-update fetches from. */
export const RULES_URL = 'http://203.0.113.10:80/rules.tar.gz';

/**
 * Test-only files of the firewall rack, besides rackAdditions(): the operator's own rule source for
 * suricata-update (there is no internet here: the internet host serves a tarball), and a drop-in
 * that lets suricata-update's first run at boot wait until the internet VRF has its default route
 * (BGP comes up after network-online.target; on a real firewall the daily timer retries instead).
 */
export function firewallRackAdditions(): Addition[] {
  return [
    {
      path: '/etc/suricata/update.yaml',
      mode: '0644',
      content: ['# metal-images rack test only: the rules come from the internet host behind leaf2.', 'sources:', `  - ${RULES_URL}`, ''].join('\n'),
      why: `suricata-update's source: ${RULES_URL} (the internet host)`,
    },
    {
      path: '/etc/systemd/system/suricata-update.service.d/50-metal-rack-wait.conf',
      mode: '0644',
      content: [
        '# metal-images rack test only: the first run at boot waits for the internet VRF\'s default route.',
        '[Service]',
        `ExecStartPre=/bin/sh -c 'for i in $(seq 90); do ip route show vrf vrf${FIREWALL.internet.vrf} default | grep -q . && exit 0; sleep 2; done; exit 0'`,
        '',
      ].join('\n'),
      why: 'suricata-update at boot waits (up to 180 s) for the default route of the internet VRF',
    },
  ];
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
  /** The firewall rack's hosts behind the leaves (evpn.ts). */
  hosts: { tenant: string; internet: string };
}

/** Pure: the host-side names of a run, from the owner pid (taps must fit IFNAMSIZ, 15 bytes). */
export function runNames(pid: number): RunNames {
  const tag = `mrk${pid}`;
  return {
    tag,
    netns: { leaf1: `${tag}-leaf1`, leaf2: `${tag}-leaf2` },
    tap: { leaf1: `${tag}l1`, leaf2: `${tag}l2` },
    hosts: { tenant: `${tag}-tenant`, internet: `${tag}-internet` },
  };
}

/** Pure: the owner pid of a host name made by runNames(), or null for names that are not ours. */
export function ownerOf(name: string): number | null {
  const m = /^mrk(\d+)(?:-leaf[12]|l[12]|-tenant|-internet)$/.exec(name);
  return m ? Number(m[1]) : null;
}
