import type { FirewallReport } from './firewall.ts';
// Pure: the rack's findings, the known image defects, the verdict and provision.json.

export interface Check {
  /** Stable id, e.g. "boot2.grub-cmdline". */
  id: string;
  ok: boolean;
  /** What was seen, one line. */
  detail: string;
}

/**
 * Defects of the image that this test bed finds and that other issues fix. A check listed here
 * that fails is reported as a known defect (loudly, by name); one that passes fails the run, so
 * that the entry is removed once the fix lands.
 */
export const KNOWN_DEFECTS: Record<string, string> = {};

/** Pure: the id without its boot prefix ("boot2.grub-cmdline" → "grub-cmdline"). */
export function baseId(id: string): string {
  return id.replace(/^boot\d\./, '');
}

export interface Verdict {
  failed: Check[];
  knownDefects: (Check & { why: string })[];
  /** Known defects that did not show: their entries are stale. */
  stale: Check[];
}

export function verdict(checks: readonly Check[], known: Record<string, string> = KNOWN_DEFECTS): Verdict {
  const v: Verdict = { failed: [], knownDefects: [], stale: [] };
  for (const c of checks) {
    const why = known[baseId(c.id)];
    if (why !== undefined) {
      if (c.ok) v.stale.push(c);
      else v.knownDefects.push({ ...c, why });
    } else if (!c.ok) v.failed.push(c);
  }
  return v;
}

/** Pure: parameters of a kernel command line that occur more than once, by name (root, console, ...). */
export function duplicateParams(cmdline: string): string[] {
  const seen = new Map<string, number>();
  for (const w of cmdline.trim().split(/\s+/).filter(Boolean)) {
    const k = w.split('=')[0]!;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k]) => k);
}

/** Pure: GRUB's kernel line as the kernel got it, without the BOOT_IMAGE= GRUB prepends. */
export function grubKernelLine(procCmdline: string): string {
  return procCmdline.trim().replace(/^BOOT_IMAGE=\S+\s*/, '');
}

/** Pure: the boot-info.yaml fields (the installer writes flat key: value lines). */
export function parseBootInfo(text: string): { kernel: string; initrd: string; cmdline: string; bootloader_id: string } {
  const get = (k: string): string => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(text)?.[1]?.replace(/^"(.*)"$/, '$1').trim() ?? '';
  return { kernel: get('kernel'), initrd: get('initrd'), cmdline: get('cmdline'), bootloader_id: get('bootloader_id') };
}

export interface GossTotals {
  spec: string;
  total: number;
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

export interface LeafReport {
  name: string;
  asn: number;
  port: string;
  bgp: { peer: string; state: string; remoteAs: number | null; pfxRcd: number }[];
  /** Prefixes learned from the machine (over this leaf's link). */
  prefixes: { prefix: string; path: string; via: string[] }[];
  ping: { target: string; source: string; sent: number; received: number };
  lldp: { systemName: string; systemDescription: string; portId: string } | null;
  showBgpSummary: string;
}

export interface BootReport {
  kind: 'kexec' | 'grub';
  secondsToSsh: number;
  systemState: string;
  cmdline: string;
  goss: GossTotals[];
  leaves: LeafReport[];
  machine: { ecmp: { prefix: string; via: string[] } };
  /** Firewalls: EVPN routes, SNAT, drops, VRFs (scripts/rack/firewall.ts). */
  firewall?: FirewallReport;
  checks: Check[];
}

export interface ProvisionReport {
  image: string;
  accel: string;
  layout: { device: string; partitions: { number: number; label: string; sizeMiB: number; gpttype: string }[] };
  installYaml: string;
  bootInfo: { kernel: string; initrd: string; cmdline: string; bootloader_id: string };
  fstab: string;
  grubKernelLine: string;
  phases: Record<string, number>;
  boots: BootReport[];
  verdict: { ok: boolean; failed: string[]; knownDefects: { id: string; detail: string; why: string }[]; stale: string[] };
}
