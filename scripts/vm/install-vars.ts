// Pure: the goss vars of tests/goss/installed-machine.yaml, taken from the install.yaml a machine
// was installed with. The spec checks what that install.yaml asked for (hostname, addresses,
// NICs, ASN, keys, password, root file system), so the VM test (the fixture) and the rack (what
// the hammer wrote) check their machines with the same spec. Values that go into regexps come
// escaped (*_re).
import { parse } from 'yaml';

/** Pure: `s` with the regexp metacharacters escaped (Go RE2 syntax, as goss uses). */
export function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

interface InstallYaml {
  hostname?: string;
  machineuuid?: string;
  timestamp?: string;
  password?: string;
  console?: string;
  sshpublickey?: string;
  root_uuid?: string;
  networks?: { asn?: number; ips?: string[]; private?: boolean; networktype?: string; underlay?: boolean }[];
  nics?: { mac?: string }[];
  dns_servers?: { ip?: string }[] | null;
  ntp_servers?: { address?: string }[] | null;
}

export interface InstallVars {
  hostname_re: string;
  primary_ip: string;
  primary_ip_re: string;
  asn: number;
  /** Every IP of every network, each as a regexp. */
  ips_re: string[];
  dns_re: string[];
  ntp_re: string;
  nics: { index: number; mac: string }[];
  ssh_keys: string[];
  password: string;
  root_uuid_re: string;
  console_re: string;
  /** e.g. ttyS1 (the serial getty the installer logs metal in on). */
  console_tty: string;
  /** '' when install.yaml has none (upstream's fixtures). */
  machineuuid: string;
  timestamp: string;
  serial_unit: string;
  serial_speed: string;
}

/** Pure: the vars for installed-machine.yaml from the text of an install.yaml. */
export function installVars(installYaml: string): InstallVars {
  const y = (parse(installYaml) ?? {}) as InstallYaml;
  const networks = y.networks ?? [];
  const primary = networks.find((n) => n.networktype === 'privateprimaryunshared' || n.networktype === 'privateprimaryshared') ?? networks.find((n) => n.private && !n.underlay);
  const ip = primary?.ips?.[0] ?? '';
  const console = y.console ?? 'ttyS0';
  const m = /^ttyS(\d+)(?:,(\d+))?/.exec(console);
  return {
    hostname_re: reEscape(y.hostname ?? ''),
    primary_ip: ip,
    primary_ip_re: reEscape(ip),
    asn: primary?.asn ?? 0,
    ips_re: networks.flatMap((n) => n.ips ?? []).map(reEscape),
    dns_re: (y.dns_servers ?? []).map((d) => reEscape(d.ip ?? '')),
    ntp_re: reEscape((y.ntp_servers ?? []).map((n) => n.address ?? '').join(' ')),
    nics: (y.nics ?? []).map((n, index) => ({ index, mac: n.mac ?? '' })),
    ssh_keys: (y.sshpublickey ?? '').split('\n').map((k) => k.trim()).filter(Boolean),
    password: y.password ?? '',
    root_uuid_re: reEscape(y.root_uuid ?? ''),
    console_re: reEscape(console),
    console_tty: console.split(',')[0]!,
    machineuuid: y.machineuuid ?? '',
    timestamp: y.timestamp ?? '',
    serial_unit: m?.[1] ?? '0',
    serial_speed: m?.[2] ?? '115200',
  };
}
