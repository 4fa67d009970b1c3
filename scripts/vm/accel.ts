// Which accelerator the test VM runs with: KVM when it really works, TCG (software emulation)
// otherwise; METAL_ACCEL=auto|kvm|tcg overrides. The decision is pure; the probe is in vm.ts.
import { UsageError } from '../lib/errors.ts';
import type { Accel } from './qemu.ts';

export type AccelSetting = 'auto' | Accel;

export function parseAccelSetting(value: string | undefined): AccelSetting {
  const v = (value ?? 'auto').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'kvm' || v === 'tcg') return v;
  throw new UsageError(`METAL_ACCEL=${value} is not one of auto, kvm, tcg`, 'unset METAL_ACCEL (auto) or set METAL_ACCEL=kvm or METAL_ACCEL=tcg');
}

/** Pure: the hardware virtualisation flag in /proc/cpuinfo (vmx: Intel VT-x, svm: AMD-V), if any. */
export function virtFlag(cpuinfo: string): 'vmx' | 'svm' | null {
  for (const line of cpuinfo.split('\n')) {
    if (!/^flags\s*:/.test(line)) continue;
    const flags = line.slice(line.indexOf(':') + 1).trim().split(/\s+/);
    if (flags.includes('vmx')) return 'vmx';
    if (flags.includes('svm')) return 'svm';
  }
  return null;
}

export type KvmDevice = 'usable' | 'missing' | 'no-access';

export interface AccelChoice {
  accel: Accel;
  /** Why, for the summary: "tcg (the CPU has no vmx/svm flag)". */
  reason: string;
}

/**
 * Pure: what to do before any probe. Returns a final choice, or 'probe' when KVM looks usable and
 * only a test boot can tell (a /dev/kvm can exist and still hang every guest kernel).
 */
export function preProbeDecision(setting: AccelSetting, dev: KvmDevice, flag: 'vmx' | 'svm' | null): AccelChoice | 'probe' {
  if (setting === 'tcg') return { accel: 'tcg', reason: 'METAL_ACCEL=tcg' };
  if (setting === 'kvm') return { accel: 'kvm', reason: 'METAL_ACCEL=kvm, not probed' };
  if (dev === 'missing') return { accel: 'tcg', reason: 'no /dev/kvm' };
  if (dev === 'no-access') return { accel: 'tcg', reason: '/dev/kvm is not read-writable for this user' };
  if (flag === null) return { accel: 'tcg', reason: 'the CPU has no vmx/svm flag' };
  return 'probe';
}

/** Pure: the choice after the probe boot. */
export function postProbeDecision(flag: 'vmx' | 'svm', probe: { ok: boolean; seconds: number; timeoutSec: number; exited: boolean }): AccelChoice {
  if (probe.ok) return { accel: 'kvm', reason: `${flag} flag, the probe kernel ran under KVM in ${probe.seconds.toFixed(1)}s` };
  const why = probe.exited ? 'the probe kernel under KVM failed' : `the probe kernel under KVM did not reach its test panic within ${probe.timeoutSec}s`;
  return { accel: 'tcg', reason: `${flag} flag, but ${why}` };
}
