// Pure parts of `make bench`: candidate selection, the upstream recipe's argv, /proc parsing, the
// summary arithmetic and the goal verdicts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CANDIDATES, parseCandidates, parseRuns, recipeArgv, threadFlag, exportChildArgv, UPSTREAM_RECIPE } from '../../scripts/bench/candidates.ts';
import { dscVersion, hasThreads, parseLz4Version, privateAptOptions } from '../../scripts/export/lz4-mt.ts';
import { parseCpuBusyTicks, parseStatmRss, parseStatTicks, processTree } from '../../scripts/bench/proc.ts';
import { goals, goalLines, median, pairedRatio, summarize, summaryRows, type RunSample } from '../../scripts/bench/report.ts';
import { benchTag, roundOrder } from '../../scripts/bench/run.ts';
import { UsageError } from '../../scripts/lib/errors.ts';
import { run } from '../../scripts/lib/shell.ts';

const cand = (id: string) => CANDIDATES.find((c) => c.id === id)!;

test('candidates: default set, explicit lists keep the baselines and the subject, unknown names fail', () => {
  assert.equal(parseCandidates(undefined).map((c) => c.id), ['upstream', 'upstream-mt', 'export', 'export-docker', 'export-9', 'export-1w']);
  assert.equal(parseCandidates('').map((c) => c.id), ['upstream', 'upstream-mt', 'export', 'export-docker', 'export-9', 'export-1w']);
  assert.equal(parseCandidates('upstream-t0, export-9').map((c) => c.id), ['upstream', 'upstream-mt', 'upstream-t0', 'export', 'export-9']);
  assert.throws(() => parseCandidates('export,fast'), (e: Error) => e instanceof UsageError && /unknown bench candidate fast/.test(e.message));
  assert.is(parseRuns(undefined), 5);
  assert.is(parseRuns('5'), 5);
  assert.throws(() => parseRuns('0'), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseRuns('2.5'), (e: Error) => e instanceof UsageError && e.message === 'bench runs "2.5" is not a count 1..50');
});

test('the upstream recipe gets every value as an argument; thread flags per candidate', () => {
  const argv = recipeArgv(cand('upstream-mt'), { dir: '/s/b', image: 'metal-images/bench:debian-12', container: 'c1', lz4Path: '/x/lz4-1.10', cores: 2, packagesCommand: ['dpkg', '-l'] });
  assert.equal(argv, ['sh', '-c', UPSTREAM_RECIPE, 'upstream-recipe', '/s/b', 'metal-images/bench:debian-12', 'c1', '/x/lz4-1.10', '-T2', 'dpkg', '-l']);
  assert.is(threadFlag(cand('upstream'), 8), '');
  assert.is(threadFlag(cand('upstream-t0'), 8), '-T0');
  assert.is(threadFlag(cand('upstream-mt'), 8), '-T8');
  for (const step of ['docker export "$name" > img.tar', '"$lz4" -q -f -9 ${threads:+"$threads"} img.tar img.tar.lz4', 'rm img.tar', 'md5sum img.tar.lz4 > img.tar.lz4.md5']) {
    assert.ok(UPSTREAM_RECIPE.includes(step), step);
  }
  assert.equal(exportChildArgv('debian', '', 'img:1', '/o'), ['node', '--import', 'tsx', 'scripts/cli.ts', 'bench', 'debian', '--child-export', '--image=img:1', '--out=/o']);
  assert.equal(exportChildArgv('firewall', 'debian', 'img:1', '/o').slice(5, 7), ['firewall', '--variant=debian']);
});

test('the recipe really runs as sh: arguments with spaces stay whole, -T only when given', async () => {
  // a fake docker/lz4/md5sum on PATH record their argv; nothing real runs
  const { mkdtempSync, writeFileSync, chmodSync, readFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const d = mkdtempSync(join(tmpdir(), 'recipe-'));
  try {
    for (const tool of ['docker', 'lz4', 'md5sum']) {
      writeFileSync(join(d, tool), `#!/bin/sh\nprintf '%s|' ${tool} "$@" >> "${d}/log"\necho >> "${d}/log"\n[ ${tool} != lz4 ] || : > img.tar.lz4\n`);
      chmodSync(join(d, tool), 0o755);
    }
    const work = join(d, 'work dir');
    await run(['mkdir', work]);
    const argv = recipeArgv(cand('upstream'), { dir: work, image: 'img:1', container: 'c 1', lz4Path: join(d, 'lz4'), cores: 2, packagesCommand: ['rpm', '-qa'] });
    await run(argv, { env: { PATH: `${d}:/usr/bin:/bin` } });
    assert.equal(readFileSync(join(d, 'log'), 'utf8').trim().split('\n'), [
      'docker|create|--network|host|--name|c 1|img:1|',
      'docker|export|c 1|',
      'docker|rm|c 1|',
      'docker|run|--rm|--network|host|--entrypoint|rpm|img:1|-qa|',
      'lz4|-q|-f|-9|img.tar|img.tar.lz4|',
      'md5sum|img.tar.lz4|',
    ]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('lz4 1.10 helpers: private apt options, dsc versions, version banners', () => {
  const o = privateAptOptions('/r/.state/apt-trixie');
  assert.ok(o.includes('Dir::Etc::SourceList=/r/.state/apt-trixie/sources.list'));
  assert.ok(o.includes('Dir::Etc::SourceParts=/dev/null'));
  assert.ok(o.includes('Dir::State::Lists=/r/.state/apt-trixie/lists'));
  assert.ok(o.includes('Dir::Cache=/r/.state/apt-trixie/cache'));
  assert.is(o.length % 2, 0);
  assert.is(dscVersion('lz4_1.10.0-4.dsc'), '1.10.0-4');
  assert.is(dscVersion('lz4_1.10.0.orig.tar.gz'), null);
  assert.is(dscVersion('xz_1.10.0-4.dsc'), null);
  assert.equal(parseLz4Version('*** lz4 v1.10.0 64-bit multithread, by Yann Collet ***'), { version: '1.10.0', multithread: true });
  assert.equal(parseLz4Version('*** LZ4 command line interface 64-bits v1.9.4, by Yann Collet ***'), null);
  assert.equal(parseLz4Version('*** lz4 v1.10.0 64-bit single-thread, by Yann Collet ***'), { version: '1.10.0', multithread: false });
  assert.ok(hasThreads('1.10.0-4'));
  assert.ok(hasThreads('2.0'));
  assert.not.ok(hasThreads('1.9.4-1'));
});

test('/proc parsing: statm pages to bytes, utime+stime after a command name with spaces', () => {
  assert.is(parseStatmRss('12345 678 90 1 0 2 0\n', 4096), 678 * 4096);
  const stat = '4242 (lz4 -9 (x)) S 1 4242 4242 0 -1 4194304 100 0 0 0 1500 250 0 0 20 0 1 0 1000 10000 500';
  assert.is(parseStatTicks(stat), 1750);
  assert.throws(() => parseStatmRss('', 4096));
  assert.is(parseCpuBusyTicks('cpu  412181 4654 91321 150943 4388 0 1762 507 2 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n'), 412181 + 4654 + 91321 + 0 + 1762 + 507);
  assert.throws(() => parseCpuBusyTicks('intr 1 2 3'));
});

test('processTree finds a process, its children and grandchildren', async () => {
  const { stream } = await import('../../scripts/lib/shell.ts');
  // sh ─┬─ sleep
  //     └─ sh (subshell) ── sleep
  const p = stream(['sh', '-c', 'sleep 5 & (sleep 5; true) & wait']);
  let tree: number[] = [];
  for (let i = 0; i < 60 && tree.length < 4; i++) {
    await new Promise((r) => setTimeout(r, 50));
    tree = processTree(p.child.pid!);
  }
  assert.is(tree[0], p.child.pid);
  assert.is(tree.length, 4);
  for (const pid of tree.reverse()) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // the root may exit on its own once its children are gone
    }
  }
  await p.done.catch(() => {});
  assert.equal(processTree(p.child.pid!), []);
});

const sample = (candidate: RunSample['candidate'], seconds: number, lz4Bytes: number, round = 0): RunSample => ({ candidate, round, seconds, lz4Bytes, md5: '0'.repeat(32), peakTreeRss: 1e6 * seconds, peakProcessRss: 5e5, cpuSeconds: seconds, dockerSeconds: 1.5, otherCores: round / 10 });

test('summary: medians, MB/s of tar bytes, ratios vs both baselines, size vs lz4 -9', () => {
  assert.is(median([3, 1, 2]), 2);
  assert.is(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]));
  const cs = parseCandidates('upstream,upstream-mt,export');
  const samples = [
    sample('upstream', 32, 400e6), sample('upstream', 30, 400e6, 1), sample('upstream', 34, 400e6, 2),
    sample('upstream-mt', 20, 400e6), sample('upstream-mt', 19, 400e6, 1), sample('upstream-mt', 21, 400e6, 2),
    sample('export', 12, 402e6), sample('export', 11, 402e6, 1), sample('export', 13, 402e6, 2),
  ];
  const s = summarize(cs, samples, 960e6);
  assert.equal(s.map((x) => [x.id, x.median]), [['upstream', 32], ['upstream-mt', 20], ['export', 12]]);
  const e = s[2]!;
  assert.is(e.mbPerSecond, 80);
  assert.is(e.vsUpstream, 32 / 12);
  assert.is(e.vsUpstreamMt, 20 / 12);
  assert.is(e.sizeVsLz4_9Pct.toFixed(6), '0.500000');
  assert.is(e.peakTreeRss, 13e6);
  assert.is(e.best, 11);
  assert.is(e.bestVsUpstream, 30 / 11);
  assert.is(e.bestVsUpstreamMt, 19 / 11);
  assert.equal(summaryRows(s)[3], ['export', '12.00', '11.00', '12.0 11.0 13.0', '80', '2.67x', '1.67x', '402.0 MB', '+0.50%', '13.0 MB', '0.5 MB', '12.0', '1.5', '0.10']);
  const g = goals(s);
  assert.equal(g.map((x) => x.pass), [true, true, true]);
  assert.equal(goalLines(g), [
    'PASS  speed vs upstream recipe (distro lz4 -9): 2.67x (goal >= 2.5x); ratio of medians 2.67x, best runs 2.73x',
    'PASS  speed vs same recipe, multithreaded lz4 1.10: 1.67x (goal >= 1.3x); ratio of medians 1.67x, best runs 1.73x',
    'PASS  compressed size vs lz4 -9: +0.50% (goal <= +1%)',
  ]);
  // slower than 2.5x, and 1.2% larger: two FAILs
  const slow = summarize(cs, [sample('upstream', 30, 400e6), sample('upstream-mt', 15, 400e6), sample('export', 12.5, 404.8e6)], 960e6);
  assert.equal(goalLines(goals(slow)), [
    'FAIL  speed vs upstream recipe (distro lz4 -9): 2.40x (goal >= 2.5x); ratio of medians 2.40x, best runs 2.40x',
    'FAIL  speed vs same recipe, multithreaded lz4 1.10: 1.20x (goal >= 1.3x); ratio of medians 1.20x, best runs 1.20x',
    'FAIL  compressed size vs lz4 -9: +1.20% (goal <= +1%)',
  ]);
});

test('paired ratios: each run against the baseline run of its own round, median over rounds', () => {
  // the machine slows down in round 1 and speeds up in round 2; the candidate is 2.5x every round
  const base = [sample('upstream', 30, 1, 0), sample('upstream', 45, 1, 1), sample('upstream', 27, 1, 2)];
  const runs = [sample('export', 18, 1, 1), sample('export', 12, 1, 0), sample('export', 10.8, 1, 2)];
  assert.is(pairedRatio(base, runs).toFixed(6), '2.500000');
  // a drift that moves every candidate alike leaves the ratio of medians right too (30 / 12)
  assert.is((median(base.map((x) => x.seconds)) / median(runs.map((x) => x.seconds))).toFixed(6), '2.500000');
  const drift = [sample('export', 12, 1, 0), sample('export', 13.5, 1, 1), sample('export', 18, 1, 2)];
  assert.is(pairedRatio(base, drift).toFixed(6), '2.500000', 'a slow candidate run (18 s in round 2) against a fast baseline run counts once, as one round');
  assert.is((30 / 13.5).toFixed(2), '2.22', 'while the ratio of medians would say 2.22x');
  // rounds without a baseline run are left out; none at all is an error
  assert.is(pairedRatio(base, [sample('export', 15, 1, 0), sample('export', 1, 1, 7)]), 2);
  assert.throws(() => pairedRatio(base, [sample('export', 1, 1, 7)]), /no round/);
});

test('round-robin order rotates; the bench tag names the image', () => {
  assert.equal([0, 1, 2, 3].map((r) => roundOrder(['a', 'b', 'c'], r).join('')), ['abc', 'bca', 'cab', 'abc']);
  assert.is(benchTag({ os: 'debian', version: '12' }), 'metal-images/bench:debian-12');
  assert.is(benchTag({ os: 'firewall', version: '3.0-ubuntu' }), 'metal-images/bench:firewall-3.0-ubuntu');
});

test.run();
