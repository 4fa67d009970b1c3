// Boot an exported image in QEMU and talk to it over ssh: the VM-test harness.
//
//   bootVm(def, dir) → Vm { ssh(argv), copyIn(local, remote), settle(), runGoss(spec), stop() }
//
// It starts from what ships, images/<os>/<version>/img.tar.lz4: unpacked into a scratch dir, given
// a few test-only files (listed in the output), turned into an ext4 disk with mke2fs -d (no loop
// mounts), and booted with the image's own kernel and initrd. The artifact is never modified. The
// VM is stopped and the scratch dir removed on every exit path, Ctrl-C included (scripts/lib/cleanup.ts).
import { accessSync, chmodSync, constants as fsConstants, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, relative } from 'node:path';
import { IMAGE_FILE } from '../lib/artifacts.ts';
import { onCleanup } from '../lib/cleanup.ts';
import { config } from '../lib/config.ts';
import { MetalError, PreconditionError, UsageError } from '../lib/errors.ts';
import type { ImageDef } from '../lib/image-def.ts';
import { imageName } from '../lib/image-def.ts';
import { dim, formatBytes, info } from '../lib/log.ts';
import { processAlive, run, stream, type RunResult, type Streaming } from '../lib/shell.ts';
import { requireTools } from '../lib/tools.ts';
import { parseAccelSetting, postProbeDecision, preProbeDecision, virtFlag, type AccelChoice, type AccelSetting, type KvmDevice } from './accel.ts';
import {
  DEFAULT_RETRY, REMOTE_DIR, REMOTE_GOSS, gossErrorLine, gossVarsYaml, yamlErrorAt, gossRenderArgv, gossValidateArgv, gossVars, oneLine, parseDurationSec, parseGossJson, parseJunit, testAdditions,
  GossOutputError, type Addition, type GossReport, type JunitReport, type RetryOptions,
} from './goss.ts';
import { QEMU, consoleTail, diskSizeMiB, findKernel, mke2fsArgv, probeArgv, probeReachedPanic, qemuArgv, unpackArgv, type Accel, type KernelFiles } from './qemu.ts';
import { sshArgv, writeFileRemote, type SshTarget } from './ssh.ts';
import { effectiveSysctl, readSysctlFiles, valuePattern } from './sysctl.ts';


/** Default wait for ssh: the Debian image needs 65-105 s under TCG on a busy 2-core machine. */
export const SSH_TIMEOUT_SEC: Record<Accel, number> = { tcg: 300, kvm: 120 };
/** How long systemctl is-system-running --wait may take after ssh answers. */
export const SETTLE_TIMEOUT_SEC = 300;
const PROBE_TIMEOUT_SEC = 25;

export interface BootOptions {
  /** File that gets the serial console (ttyS0). Default: <dir>/console.log, next to the results. */
  consoleLog?: string;
  /** Give up waiting for ssh after this many seconds (default by accelerator, SSH_TIMEOUT_SEC). */
  sshTimeoutSec?: number;
  /** Specs rendered, and so checked, before the VM starts: a broken spec costs no boot. */
  specs?: string[];
  /** Default: METAL_ACCEL from the environment. */
  accel?: AccelSetting;
  /** More goss vars, merged over gossVars() (e.g. install: installVars(install.yaml)). */
  extraVars?: Record<string, unknown>;
}

export interface GossOutcome {
  spec: string;
  report: GossReport;
  junit: JunitReport;
  /** Wall-clock seconds of the validate run with its retries (the JUnit pass not included). */
  seconds: number;
}

export interface Vm {
  readonly label: string;
  readonly accel: AccelChoice;
  readonly kernel: KernelFiles;
  readonly sshPort: number;
  readonly qemuPid: number;
  /** This run's scratch dir (disk, key, rendered specs); removed by stop(). */
  readonly scratch: string;
  /** From starting QEMU to the first successful ssh login. */
  readonly bootSeconds: number;
  readonly additions: readonly Addition[];
  readonly consoleLog: string;
  /** The vars the specs are rendered with. */
  readonly vars: Record<string, unknown>;
  /** Run argv as root in the VM (quoted for the remote shell); throws on a nonzero exit unless nothrow. */
  ssh(argv: readonly string[], opts?: { input?: string | Buffer; timeoutMs?: number; nothrow?: boolean }): Promise<RunResult>;
  copyIn(local: string, remote: string, mode?: string): Promise<void>;
  /** Wait for systemd to finish booting; returns its state (running, degraded, ...). */
  settle(timeoutSec?: number): Promise<{ state: string; seconds: number }>;
  runGoss(spec: string, retry?: RetryOptions): Promise<GossOutcome>;
  consoleTail(n?: number): string[];
  /** Stop QEMU and remove the scratch dir. Idempotent. */
  stop(): Promise<void>;
}

/** A path for messages: relative inside the repo, absolute elsewhere. */
export const rel = (p: string): string => (p.startsWith(`${config().root}/`) ? relative(config().root, p) : p);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Check before side effects: every tool and input, before anything is unpacked or started. */
export async function checkVmPrerequisites(def: ImageDef, dir: string, specs: readonly string[] = []): Promise<void> {
  await requireTools([QEMU, 'mke2fs', 'ssh', 'ssh-keygen', 'lz4', 'tar'], 'the VM test needs it');
  const goss = gossBinary();
  if (!existsSync(goss)) throw new PreconditionError(`goss is not built (${rel(goss)} is missing)`, 'run make setup (builds the pinned goss into .state/bin)');
  const artifact = join(dir, IMAGE_FILE);
  if (!existsSync(artifact)) throw new PreconditionError(`no artifact to test: ${rel(artifact)} does not exist`, `run make export OS=${def.os}${def.variant ? ` VARIANT=${def.variant}` : ''} (or make ${def.os})`);
  for (const s of specs) {
    if (!existsSync(s)) throw new UsageError(`goss spec ${rel(s)} does not exist`, `create ${rel(s)} (it includes tests/goss/common.yaml)`);
  }
}

export function gossBinary(): string {
  return join(config().binDir, 'goss');
}

function mke2fsBin(): string {
  for (const p of ['/usr/sbin/mke2fs', '/sbin/mke2fs']) if (existsSync(p)) return p;
  return 'mke2fs';
}

/** Free TCP port on 127.0.0.1 (a race with other processes is caught by QEMU failing to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Scratch dirs of runs that died without cleaning up (kill -9, power loss): stop their QEMU if it
 * still runs from that dir, and remove the dir.
 */
export function sweepStale(vmDir: string): string[] {
  if (!existsSync(vmDir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(vmDir)) {
    const d = join(vmDir, name);
    const owner = Number(readIfExists(join(d, 'owner')) ?? 0);
    if (owner > 0 && processAlive(owner)) continue;
    const qpid = Number(readIfExists(join(d, 'qemu.pid')) ?? 0);
    if (qpid > 0 && processAlive(qpid) && (readIfExists(`/proc/${qpid}/cmdline`) ?? '').includes(d)) {
      try {
        process.kill(qpid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    rmSync(d, { recursive: true, force: true });
    removed.push(d);
  }
  return removed;
}

function readIfExists(p: string): string | null {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return null;
  }
}

function kvmDevice(): KvmDevice {
  if (!existsSync('/dev/kvm')) return 'missing';
  try {
    accessSync('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
    return 'usable';
  } catch {
    return 'no-access';
  }
}

/**
 * Boot the kernel alone under `accel` until its deliberate panic (see probeArgv). The probe cannot
 * hang: QEMU is killed with SIGKILL at the timeout (a vCPU stuck in KVM may ignore SIGTERM).
 */
export async function probeBoot(accel: Accel, kernel: string, log: string, timeoutSec: number): Promise<{ ok: boolean; seconds: number; exited: boolean }> {
  const t0 = performance.now();
  const p = stream(probeArgv(accel, kernel, log), { stdout: 'ignore' });
  const exit = new Promise<number | null>((resolve) => {
    p.child.once('exit', (code) => resolve(code));
    p.child.once('error', () => resolve(null));
  });
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutSec * 1000);
  const code = await exit;
  clearTimeout(timer);
  const seconds = (performance.now() - t0) / 1000;
  return { ok: code === 0 && probeReachedPanic(readIfExists(log) ?? ''), seconds, exited: seconds < timeoutSec };
}

/** KVM if it really runs the image's kernel, else TCG; METAL_ACCEL=kvm|tcg skips the guesswork. */
export async function chooseAccel(setting: AccelSetting, kernel: string, scratch: string): Promise<AccelChoice> {
  const flag = virtFlag(readIfExists('/proc/cpuinfo') ?? '');
  const pre = preProbeDecision(setting, kvmDevice(), flag);
  if (pre !== 'probe') return pre;
  const probe = await probeBoot('kvm', kernel, join(scratch, 'kvm-probe.log'), PROBE_TIMEOUT_SEC);
  return postProbeDecision(flag!, { ...probe, timeoutSec: PROBE_TIMEOUT_SEC });
}

/** A harness failure that is not a failing command: exit 1 with a one-line cause. */
export class VmTestError extends MetalError {
  constructor(message: string, hint?: string) {
    super('tool', message, hint);
  }
}

export async function bootVm(def: ImageDef, dir: string, opts: BootOptions = {}): Promise<Vm> {
  const label = imageName(def);
  const specs = opts.specs ?? [];
  const setting = opts.accel ?? parseAccelSetting(config().env.METAL_ACCEL);
  await checkVmPrerequisites(def, dir, specs);
  const artifact = join(dir, IMAGE_FILE);
  const consoleLog = opts.consoleLog ?? join(dir, 'console.log');

  const vmDir = join(config().stateDir, 'vm');
  for (const d of sweepStale(vmDir)) info(dim(`vm: removed the scratch dir of an earlier run that died: ${rel(d)}`));
  const scratch = join(vmDir, `${label}-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(scratch, { recursive: true });
  writeFileSync(join(scratch, 'owner'), `${process.pid}\n`);

  let qemu: Streaming | null = null;
  let qemuExit: { code: number | null; signal: string | null } | null = null;
  const stopQemu = async (): Promise<void> => {
    if (!qemu || qemuExit) return;
    const exited = new Promise<void>((r) => qemu!.child.once('exit', () => r()));
    qemu.child.kill('SIGTERM');
    if (await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) return;
    qemu.child.kill('SIGKILL');
    await Promise.race([exited, sleep(5_000)]);
  };
  const cleanup = onCleanup(`vm test ${label}`, async () => {
    await stopQemu();
    rmSync(scratch, { recursive: true, force: true });
  });

  try {
    // 1. unpack what ships
    const root = join(scratch, 'root');
    mkdirSync(root);
    let t0 = performance.now();
    await run(unpackArgv(artifact, root), { hint: `the artifact may be damaged: re-run make export OS=${def.os}` });
    const used = Number((await run(['du', '-s', '-x', '--block-size=1', root])).stdout.split('\t')[0]);
    info(dim(`vm: unpacked ${rel(artifact)} (${formatBytes(used)}) in ${((performance.now() - t0) / 1000).toFixed(1)}s into ${rel(scratch)}`));

    // 2. the image's kernel and initrd, found by the image contract's names
    const bootDir = join(root, 'boot');
    const found = findKernel(existsSync(bootDir) ? readdirSync(bootDir) : [], def.contract.initrd);
    if ('error' in found) throw new PreconditionError(`${rel(artifact)} ${found.error}`, `install exactly one kernel with its initrd in ${def.os}/Dockerfile and run make ${def.os}`);
    for (const f of [found.kernel, found.initrd]) {
      const st = lstatSync(join(root, f));
      if (!st.isFile() || st.size === 0) throw new PreconditionError(`${rel(artifact)}: /${f} is not a non-empty regular file`, `fix ${def.os}/Dockerfile and run make ${def.os}`);
    }
    const kernel = join(scratch, 'vmlinuz');
    const initrd = join(scratch, 'initrd');
    copyFileSync(join(root, found.kernel), kernel);
    copyFileSync(join(root, found.initrd), initrd);

    // 3. vars for the specs, from the image definition and the image itself; render the specs now
    const sysctl = Object.fromEntries([...effectiveSysctl(readSysctlFiles(root))].map(([k, v]) => [k, valuePattern(v)]));
    const vars = gossVars({
      os: def.os, version: def.version, machineType: def.machine_type, sudoGroup: def.contract.sudo_group,
      kernel: found.version, initrd: basename(found.initrd), sysctl,
    });
    Object.assign(vars, opts.extraVars ?? {});
    const varsFile = join(scratch, 'vars.yaml');
    writeFileSync(varsFile, gossVarsYaml(vars));
    const rendered = new Map<string, string>();
    for (const s of specs) rendered.set(s, await renderSpec(s, varsFile));

    // 4. test-only additions, into the scratch copy only
    const key = join(scratch, 'id_ed25519');
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `metal-vmtest-${label}`, '-f', key]);
    const additions = testAdditions(readFileSync(`${key}.pub`, 'utf8'));
    for (const a of additions) applyAddition(root, a);
    info(dim(`vm: test-only additions (scratch copy, not the artifact): ${additions.map((a) => `${a.path} (${a.why})`).join('; ')}`));

    // 5. the disk: ext4 made from the directory, no loop mount; then the tree is not needed any more
    t0 = performance.now();
    const disk = join(scratch, 'disk.img');
    const sizeMiB = diskSizeMiB(used);
    await run([mke2fsBin(), ...mke2fsArgv(root, disk, sizeMiB).slice(1)], { hint: 'is there enough disk space under .state/? (df -h)' });
    rmSync(root, { recursive: true, force: true });
    info(dim(`vm: ${sizeMiB} MiB ext4 disk made with mke2fs -d in ${((performance.now() - t0) / 1000).toFixed(1)}s`));

    // 6. accelerator
    const accel = await chooseAccel(setting, kernel, scratch);
    info(dim(`vm: accelerator ${accel.accel} (${accel.reason})`));

    // 7. boot, and wait for ssh while watching that QEMU is still alive
    const pidFile = join(scratch, 'qemu.pid');
    mkdirSync(dirname(consoleLog), { recursive: true });
    let port = 0;
    let bootStart = 0;
    let qemuStderr = Promise.resolve('');
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const argv = qemuArgv({ accel: accel.accel, kernel, initrd, disk, sshPort: port, consoleLog, pidFile });
      info(dim(`vm: booting linux ${found.version}, ssh on 127.0.0.1:${port}, console ${rel(consoleLog)}`));
      qemuExit = null;
      bootStart = performance.now();
      const q = stream(argv, { stdout: 'ignore', hint: `see ${rel(consoleLog)}` });
      qemu = q;
      q.child.once('exit', (code, signal) => (qemuExit = { code, signal }));
      qemuStderr = q.done.then(() => '', (e: { stderrTail?: string }) => oneLine(e.stderrTail ?? '', 300));
      await sleep(1500);
      // another process took the port between freePort() and QEMU's bind: try another one
      if (qemuExit && attempt < 3 && /hostfwd|host forwarding|Address already in use/i.test(await qemuStderr)) continue;
      break;
    }
    const target: SshTarget = { key, port };
    const sshTimeout = opts.sshTimeoutSec ?? SSH_TIMEOUT_SEC[accel.accel];
    const deadline = bootStart + sshTimeout * 1000;
    for (;;) {
      if (qemuExit) {
        const e = qemuExit as { code: number | null; signal: string | null };
        const stderr = await qemuStderr;
        printConsoleTail(consoleLog);
        throw new VmTestError(
          `${label}: the VM stopped before ssh answered (qemu ${e.signal ? `killed by ${e.signal}` : `exited ${e.code}`}${stderr ? `: ${stderr}` : ''}); console tail above`,
          `read ${rel(consoleLog)}${accel.accel === 'kvm' ? '; METAL_ACCEL=tcg rules out KVM' : ''}`,
        );
      }
      if (performance.now() > deadline) {
        printConsoleTail(consoleLog);
        throw new VmTestError(`${label}: no ssh login within ${sshTimeout}s of booting (${accel.accel}); console tail above`, `read ${rel(consoleLog)}; a slow machine may need --ssh-timeout=<seconds>`);
      }
      const r = await run(sshArgv(target, ['true']), { nothrow: true, timeoutMs: 30_000 });
      if (r.code === 0) break;
      await sleep(2000);
    }
    const bootSeconds = (performance.now() - bootStart) / 1000;
    info(dim(`vm: ssh answered after ${bootSeconds.toFixed(1)}s`));

    return vmSession({
      label, accel, kernel: found, sshPort: port, qemuPid: qemu!.child.pid ?? 0, scratch, bootSeconds, additions, consoleLog, vars,
      target, varsFile, rendered, stop: cleanup,
    });
  } catch (e) {
    await cleanup();
    throw e;
  }
}

export interface SessionSpec {
  label: string;
  accel: AccelChoice;
  kernel: KernelFiles;
  sshPort: number;
  qemuPid: number;
  scratch: string;
  bootSeconds: number;
  additions: readonly Addition[];
  consoleLog: string;
  vars: Record<string, unknown>;
  /** Who logs in; a user other than root runs commands through sudo (see sudoPassword). */
  target: SshTarget;
  /** The user's password for sudo, when sudo asks for one (install.yaml's console password). */
  sudoPassword?: string;
  varsFile: string;
  /** Specs rendered beforehand (others are rendered on first use). */
  rendered?: Map<string, string>;
  stop: () => Promise<void>;
}

/** Pure: the remote argv and stdin that run `argv` as root for a login of `user`. */
export function asRoot(user: string, sudo: 'nopasswd' | 'password', argv: readonly string[], password = '', input?: string | Buffer): { argv: string[]; input?: string | Buffer } {
  if (user === 'root') return { argv: [...argv], input };
  // -k: never a cached credential, so a password line is always consumed by sudo itself
  if (sudo === 'password') return { argv: ['sudo', '-k', '-S', '-p', '', '--', ...argv], input: Buffer.concat([Buffer.from(`${password}\n`), Buffer.from(input ?? '')]) };
  return { argv: ['sudo', '-n', '--', ...argv], input };
}

/** A logged-in VM: ssh, copy-in, settle and goss as root (directly, or through sudo for another user). */
export function vmSession(s: SessionSpec): Vm {
  const rendered = s.rendered ?? new Map<string, string>();
  const user = s.target.user ?? 'root';
  let sudo: 'nopasswd' | 'password' | null = user === 'root' ? 'nopasswd' : null;
  let gossCopied = false;
  const raw = async (argv: readonly string[], o: { input?: string | Buffer; timeoutMs?: number; nothrow?: boolean } = {}): Promise<RunResult> => {
    const r = await run(sshArgv(s.target, argv), { input: o.input, timeoutMs: o.timeoutMs ?? 120_000, nothrow: true });
    if (r.code === 255 || (r.code !== 0 && !o.nothrow)) {
      const cause = r.code === 255 ? 'ssh to the VM failed' : `exited ${r.code ?? 'without a code (timeout)'}`;
      throw new VmTestError(`in the VM: ${argv.join(' ').slice(0, 120)}: ${cause}${r.stderr.trim() ? `: ${oneLine(r.stderr, 200)}` : ''}`, `read ${rel(s.consoleLog)}`);
    }
    return r;
  };
  const vm: Vm = {
    label: s.label,
    accel: s.accel,
    kernel: s.kernel,
    sshPort: s.sshPort,
    qemuPid: s.qemuPid,
    scratch: s.scratch,
    bootSeconds: s.bootSeconds,
    additions: s.additions,
    consoleLog: s.consoleLog,
    vars: s.vars,
    async ssh(argv, o = {}) {
      if (sudo === null) sudo = (await raw(['sudo', '-n', 'true'], { nothrow: true })).code === 0 ? 'nopasswd' : 'password';
      const cmd = asRoot(user, sudo, argv, s.sudoPassword ?? '', o.input);
      return raw(cmd.argv, { ...o, input: cmd.input });
    },
    async copyIn(local, remote, mode = '0644') {
      await vm.ssh(writeFileRemote(remote, mode), { input: readFileSync(local), timeoutMs: 300_000 });
    },
    async settle(timeoutSec = SETTLE_TIMEOUT_SEC) {
      const t = performance.now();
      const r = await vm.ssh(['systemctl', 'is-system-running', '--wait'], { nothrow: true, timeoutMs: timeoutSec * 1000 });
      const seconds = (performance.now() - t) / 1000;
      const state = r.stdout.trim() || (r.code === null ? `still booting after ${timeoutSec}s` : 'unknown');
      return { state, seconds };
    },
    async runGoss(spec, retry = DEFAULT_RETRY) {
      const text = rendered.get(spec) ?? (await renderSpec(spec, s.varsFile));
      if (!gossCopied) {
        await vm.copyIn(gossBinary(), REMOTE_GOSS, '0755');
        gossCopied = true;
      }
      const remoteSpec = `${REMOTE_DIR}/${rel(spec).replace(/[^A-Za-z0-9._-]+/g, '-')}`;
      const local = join(s.scratch, basename(remoteSpec));
      writeFileSync(local, text);
      await vm.copyIn(local, remoteSpec);
      const t = performance.now();
      const budget = parseDurationSec(retry.retryTimeout) + 180;
      const j = await vm.ssh(gossValidateArgv(remoteSpec, 'json', retry), { nothrow: true, timeoutMs: budget * 1000 });
      const seconds = (performance.now() - t) / 1000;
      const x = await vm.ssh(gossValidateArgv(remoteSpec, 'junit'), { nothrow: true, timeoutMs: 180_000 });
      try {
        return { spec, report: parseGossJson(j.stdout), junit: parseJunit(x.stdout), seconds };
      } catch (e) {
        if (!(e instanceof GossOutputError)) throw e;
        throw new VmTestError(`goss in the VM (${rel(spec)}): ${e.message}${j.stderr.trim() ? ` — ${gossErrorLine(j.stderr)}` : ''}`, `run it by hand: ${gossBinary()} -g ${rel(spec)} validate`);
      }
    },
    consoleTail(n = 50) {
      return consoleTail(readIfExists(s.consoleLog) ?? '', n);
    },
    stop: s.stop,
  };
  return vm;
}

/** Render a spec on the host (includes merged, vars applied): a YAML or template error is a one-line cause here. */
export async function renderSpec(spec: string, varsFile: string): Promise<string> {
  const r = await run(gossRenderArgv(gossBinary(), spec, varsFile), { nothrow: true, cwd: dirname(spec) });
  if (r.code === 0 && r.stdout.trim()) return r.stdout;
  const shown = rel(spec);
  const gossSays = gossErrorLine(r.stderr || r.stdout);
  // goss's YAML line numbers can be off; the yaml parser's are exact. Only for a YAML error in the
  // top file without templates (an included file's error names that file in goss's message).
  const text = readFileSync(spec, 'utf8');
  const pos = /^yaml: /.test(gossSays) && !text.includes('{{') ? yamlErrorAt(text) : null;
  const cause = pos ? `${shown}:${pos.line}: YAML error: ${pos.message}` : `${shown}: ${gossSays}`;
  throw new UsageError(`goss spec ${cause}`, `fix ${shown} (${rel(gossBinary())} -g ${shown} render shows goss's view)`);
}

function applyAddition(root: string, a: Addition): void {
  const p = join(root, a.path);
  mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
  if (a.path.startsWith('/root/.ssh/')) chmodSync(dirname(p), 0o700);
  // a symlink (e.g. resolv.conf → a resolver's stub file) is replaced, never written through
  try {
    if (lstatSync(p).isSymbolicLink() || lstatSync(p).isFile()) unlinkSync(p);
  } catch {
    /* not there yet */
  }
  writeFileSync(p, a.content, { mode: parseInt(a.mode, 8) });
  chmodSync(p, parseInt(a.mode, 8));
}

export function printConsoleTail(consoleLog: string, n = 50): void {
  const lines = consoleTail(readIfExists(consoleLog) ?? '', n);
  console.error(dim(`---- last ${lines.length} lines of ${rel(consoleLog)} ----`));
  for (const l of lines) console.error(dim(`  | ${l}`));
  console.error(dim('---- end of console ----'));
}
