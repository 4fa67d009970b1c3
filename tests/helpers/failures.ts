// uvu's failure blocks, found in its output (tests/helpers/run-suite.ts repeats them at the end).
import { plain } from './text.ts';

/** uvu's header of a failure: `   FAIL  "<test name>"` (its suite's name may stand before the quote). */
const HEADER = /^ {3}FAIL {2}.*"$/;

/** Pure: the failure blocks of a uvu run's output (ANSI colours removed), in order. */
export function failureBlocks(output: string): string[] {
  const lines = plain(output).split('\n');
  const blocks: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!HEADER.test(lines[i]!)) continue;
    // a block is its header and the indented (or empty) lines below it, up to the next header or
    // the next unindented line (the next file's name, the summary); at most 60 lines
    const block: string[] = [lines[i]!];
    for (let j = i + 1; j < lines.length && block.length < 60 && /^(\s|$)/.test(lines[j]!) && !HEADER.test(lines[j]!); j++) block.push(lines[j]!);
    while (block.at(-1)!.trim() === '') block.pop();
    blocks.push(block.join('\n'));
  }
  return blocks;
}
