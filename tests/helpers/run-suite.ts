// Runs one uvu suite (a folder of *.test.ts) and, when a test failed, repeats every failure's
// block at the very end of the output. uvu prints a failure right after its file's dots; a CI log
// that keeps only the tail (the summary) would then say "Passed: 109 of 110" and not which one.
//
//   node --import tsx tests/helpers/run-suite.ts tests/integration
//
// The suite runs as uvu's own CLI in a child process with the same arguments uvu takes; its
// output passes through as it comes. Ctrl-C reaches the child from the terminal (same process
// group); this process waits for it and ends the way it ended.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { failureBlocks } from './failures.ts';

async function main(argv: string[]): Promise<number> {
  const dir = argv[0];
  if (!dir) {
    process.stderr.write('usage: node --import tsx tests/helpers/run-suite.ts <tests dir> [uvu args]\n');
    return 2;
  }
  const uvu = fileURLToPath(new URL('../../node_modules/uvu/bin.js', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, uvu, dir, '\\.test\\.ts$', ...argv.slice(1)], { stdio: ['inherit', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk);
    out += chunk.toString('utf8');
  });
  // the terminal's Ctrl-C goes to the child too: wait for it rather than dying before it cleaned up
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  const blocks = failureBlocks(out);
  if (blocks.length) {
    process.stdout.write(`\n${blocks.length} failed in ${dir} (repeated from above):\n\n${blocks.join('\n\n')}\n\n`);
  }
  if (signal) {
    process.removeAllListeners('SIGINT');
    process.kill(process.pid, signal);
  }
  return code ?? 1;
}

main(process.argv.slice(2)).then((c) => {
  process.exitCode = c;
});
