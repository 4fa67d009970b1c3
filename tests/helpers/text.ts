// Text as a person reads it in a terminal, for assertions on output.

/** Pure: `t` without its terminal colours (SGR escape sequences). */
export function plain(t: string): string {
  // eslint-disable-next-line no-control-regex
  return t.replace(/\x1b\[[0-9;]*m/g, '');
}
