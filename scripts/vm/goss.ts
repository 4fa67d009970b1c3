// Pure: goss command lines, its JSON and JUnit output, the vars the specs are rendered with, and
// the one-line-per-failure summary. Running goss (in the VM, over ssh) is in vm.ts.
import { LineCounter, parseDocument, stringify as stringifyYaml } from 'yaml';

/** Where the binary and the rendered specs go in the VM: on the disk copy (/run and /tmp may be noexec). */
export const REMOTE_DIR = '/var/tmp/metal-vmtest';
export const REMOTE_GOSS = `${REMOTE_DIR}/goss`;

export interface RetryOptions {
  /** goss --retry-timeout, e.g. "150s"; "0s" for a single attempt. */
  retryTimeout: string;
  /** goss --sleep between attempts, e.g. "10s". */
  sleep: string;
}

/** Upstream's settings: services take time to come up, under TCG even more so. */
export const DEFAULT_RETRY: RetryOptions = { retryTimeout: '150s', sleep: '10s' };

/** Remote argv of a validate run. JSON runs retry; the JUnit run afterwards is a single pass. */
export function gossValidateArgv(spec: string, format: 'json' | 'junit', retry?: RetryOptions): string[] {
  const argv = [REMOTE_GOSS, '--gossfile', spec, 'validate', '--no-color', '--format', format];
  if (retry && retry.retryTimeout !== '0s') argv.push('--retry-timeout', retry.retryTimeout, '--sleep', retry.sleep);
  return argv;
}

/** Host argv that merges includes and applies the vars: the single file that is copied into the VM. */
export function gossRenderArgv(goss: string, spec: string, varsFile: string): string[] {
  return [goss, '--gossfile', spec, '--vars', varsFile, 'render'];
}

/** Parse a duration like "150s", "2m", "1m30s" into seconds (goss/Go syntax, the subset we accept). */
export function parseDurationSec(d: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(d);
  if (!m || d === '') throw new Error(`"${d}" is not a duration like 150s or 2m30s`);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
}

export interface GossFailure {
  /** e.g. "File", "Service", "Command". */
  type: string;
  /** The spec key, e.g. "/etc/metal/build.yaml". */
  id: string;
  property: string;
  /** goss's compact one-line summary, e.g. "File: /x: exists: Expected false to equal true". */
  line: string;
}

export interface GossReport {
  total: number;
  passed: number;
  failed: number;
  skipped: number;
  /** goss's own duration of the last attempt. */
  durationSec: number;
  /** How many validate attempts the retry loop made. */
  attempts: number;
  /** Sorted by line, so that the summary is stable across goss's concurrent runs. */
  failures: GossFailure[];
  /** The JSON document of the last attempt, as goss printed it. */
  json: string;
}

interface GossResultJson {
  'resource-type'?: string;
  'resource-id'?: string;
  property?: string;
  result?: number;
  skipped?: boolean;
  successful?: boolean;
  'summary-line-compact'?: string;
  'summary-line'?: string;
}

interface GossJson {
  results?: GossResultJson[];
  summary?: { 'test-count'?: number; 'failed-count'?: number; 'skipped-count'?: number; 'total-duration'?: number };
}

export class GossOutputError extends Error {}

/** One line, at most `max` characters. */
export function oneLine(text: string, max = 240): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/**
 * Parse the stdout of `goss validate --format json`. With --retry-timeout goss prints one JSON
 * document per attempt, separated by "Retrying in ..." and "Attempt #n:" lines; the last document
 * is the verdict.
 */
export function parseGossJson(stdout: string): GossReport {
  const lines = stdout.split('\n');
  const docs = lines.filter((l) => l.startsWith('{"results"'));
  const last = docs[docs.length - 1];
  if (last === undefined) throw new GossOutputError(`goss printed no JSON result${stdout.trim() ? `: ${oneLine(stdout, 160)}` : ''}`);
  let doc: GossJson;
  try {
    doc = JSON.parse(last) as GossJson;
  } catch (e) {
    throw new GossOutputError(`goss printed unreadable JSON: ${(e as Error).message}`);
  }
  const results = doc.results ?? [];
  const failures: GossFailure[] = results
    .filter((r) => !r.skipped && r.successful === false)
    .map((r) => ({
      type: r['resource-type'] ?? '?',
      id: r['resource-id'] ?? '?',
      property: r.property ?? '?',
      line: oneLine(r['summary-line-compact'] ?? r['summary-line'] ?? `${r['resource-type']}: ${r['resource-id']}: ${r.property}: failed`),
    }))
    .sort((a, b) => (a.line < b.line ? -1 : a.line > b.line ? 1 : 0));
  const total = doc.summary?.['test-count'] ?? results.length;
  const skipped = doc.summary?.['skipped-count'] ?? results.filter((r) => r.skipped).length;
  const failed = doc.summary?.['failed-count'] ?? failures.length;
  return {
    total,
    failed,
    skipped,
    passed: total - failed - skipped,
    durationSec: (doc.summary?.['total-duration'] ?? 0) / 1e9,
    attempts: docs.length,
    failures,
    json: last,
  };
}

export interface JunitReport {
  tests: number;
  failures: number;
  skipped: number;
  /** Names of the failing test cases, in document order, e.g. "File /x exists". */
  failing: string[];
  /** The last <testsuite> document (goss prints one per attempt when retrying). */
  xml: string;
}

function unescapeXml(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

/** Parse the stdout of `goss validate --format junit` (the last test suite, if it retried). */
export function parseJunit(stdout: string): JunitReport {
  const start = stdout.lastIndexOf('<testsuite ');
  const end = stdout.indexOf('</testsuite>', start);
  if (start < 0 || end < 0) throw new GossOutputError(`goss printed no JUnit test suite${stdout.trim() ? `: ${oneLine(stdout, 160)}` : ''}`);
  const suite = stdout.slice(start, end + '</testsuite>'.length);
  const head = /^<testsuite [^>]*>/.exec(suite)?.[0] ?? '';
  const attr = (name: string): number => Number(new RegExp(`\\s${name}="(\\d+)"`).exec(head)?.[1] ?? NaN);
  const failing: string[] = [];
  for (const m of suite.matchAll(/<testcase name="([^"]*)"[^>]*>([\s\S]*?)<\/testcase>/g)) {
    if (m[2]!.includes('<failure')) failing.push(unescapeXml(m[1]!));
  }
  const xmlDecl = '<?xml version="1.0" encoding="UTF-8"?>\n';
  return { tests: attr('tests'), failures: attr('failures'), skipped: attr('skipped'), failing, xml: `${xmlDecl}${suite}\n` };
}

/** Test-only changes made to the scratch copy of the image (never to the artifact). */
export interface Addition {
  path: string;
  mode: string;
  content: string;
  why: string;
}

export const SLIRP_DNS = '10.0.2.3';

/**
 * The name the DNS check resolves. QEMU's user-mode network answers DNS at 10.0.2.3 by forwarding
 * to the host's resolver; Debian's archive host is a name that resolver must answer on any machine
 * that builds these images (the Dockerfiles' apt sources name it), and there is no other network.
 */
export const DNS_NAME = 'deb.debian.org';

/** Pure: what the scratch copy gets so the harness can reach and log into the VM. */
export function testAdditions(publicKey: string): Addition[] {
  return [
    { path: '/root/.ssh/authorized_keys', mode: '0600', content: `${publicKey.trim()}\n`, why: "this run's ephemeral ssh key for root" },
    {
      // the image lets only metal in (PermitRootLogin no, AllowUsers metal), and an image that
      // was not installed has no metal yet; sshd takes the first value it reads, the drop-in's
      path: '/etc/ssh/sshd_config.d/00-metal-vmtest.conf',
      mode: '0600',
      content: ['# metal-images VM test only: root by key, for the tooling (the image allows only metal)', 'PermitRootLogin prohibit-password', 'AllowUsers metal root', 'AllowGroups sudo wheel root', ''].join('\n'),
      why: 'root may log in by key (the image allows only metal)',
    },
    {
      path: '/etc/systemd/network/90-metal-vmtest.network',
      mode: '0644',
      content: ['# metal-images VM test only: DHCP on the QEMU NIC (the installer writes the real network)', '[Match]', 'Name=en* eth*', '', '[Network]', 'DHCP=ipv4', 'IPv6AcceptRA=no', ''].join('\n'),
      why: 'DHCP on the QEMU NIC (10.0.2.15, gateway 10.0.2.2)',
    },
    {
      path: '/etc/resolv.conf',
      mode: '0644',
      content: `# metal-images VM test only (the installer writes the real one)\nnameserver ${SLIRP_DNS}\n`,
      why: `resolver ${SLIRP_DNS} (QEMU user-net DNS; the installer writes the real one)`,
    },
  ];
}

export interface VarsInput {
  os: string;
  version: string;
  machineType: string;
  sudoGroup: string;
  kernel: string;
  initrd: string;
  /** Effective sysctl settings of the image: key → regexp of the value (see sysctl.ts). */
  sysctl: Record<string, string>;
  /** The machine was installed (the installer ran): checks of the pristine image do not apply. */
  installed?: boolean;
  /** The installed machine has booted its installation (machine-id generated; the rack). */
  rebooted?: boolean;
  /** Overrides DNS_NAME where another resolver answers (the rack's leaves). */
  dnsName?: string;
}

/** Pure: the vars every spec is rendered with ({{.Vars.os}}, {{.Vars.sysctl}}, ...). */
export function gossVars(v: VarsInput): Record<string, unknown> {
  return {
    os: v.os,
    version: v.version,
    machine_type: v.machineType,
    sudo_group: v.sudoGroup,
    kernel: v.kernel,
    initrd: v.initrd,
    dns_name: v.dnsName ?? DNS_NAME,
    sysctl: v.sysctl,
    installed: v.installed ?? false,
    rebooted: v.rebooted ?? false,
  };
}

/** Pure: goss's own one-line cause from its stderr ("2026/11/25 22:13:04 yaml: line 3: ..."). */
export function gossErrorLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1] ?? 'goss failed without a message';
  return oneLine(last.replace(/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} /, ''));
}

export interface SummaryInput {
  label: string;
  report: GossReport;
  gossSeconds: number;
  bootSeconds: number;
  settleSeconds: number;
  systemState: string;
  accel: string;
  additions: readonly Addition[];
  results: readonly string[];
}

/** Pure: the block printed at the end of a VM test. */
export function formatSummary(s: SummaryInput): string {
  const r = s.report;
  const verdict = r.failed === 0 ? 'PASS' : 'FAIL';
  const out = [
    `vm test ${s.label}: ${verdict} — ${r.passed} checks passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`,
    `  boot-to-ssh ${s.bootSeconds.toFixed(1)}s, settle ${s.settleSeconds.toFixed(1)}s (${s.systemState}), goss ${s.gossSeconds.toFixed(1)}s (${r.attempts} attempt${r.attempts === 1 ? '' : 's'}), accelerator ${s.accel}`,
  ];
  for (const f of r.failures) out.push(`  FAIL ${f.line}`);
  out.push(`  test-only additions (scratch copy only): ${s.additions.map((a) => a.path).join(', ')}`);
  if (s.results.length) out.push(`  results: ${s.results.join(', ')}`);
  return out.join('\n');
}

/** Pure: the first YAML syntax error of a (template-free) text, or null. */
export function yamlErrorAt(text: string): { line: number; message: string } | null {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const e = doc.errors[0];
  if (!e) return null;
  return { line: lines.linePos(e.pos[0]).line, message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') };
}

/**
 * Pure: the vars file goss reads. Every string is double-quoted: goss's YAML reader would take an
 * unquoted 2026-12-02T00:45:44Z for a timestamp and render it as "2026-12-02 00:45:44 +0000 UTC".
 */
export function gossVarsYaml(vars: Record<string, unknown>): string {
  return stringifyYaml(vars, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' });
}
