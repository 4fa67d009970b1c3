// Pure: ssh command lines for the test VM. Only ever 127.0.0.1 (QEMU's forwarded port), only with
// the run's ephemeral key, and never with the user's ssh config, agent or known_hosts.

export interface SshTarget {
  /** Private key file (the ephemeral key of this run). */
  key: string;
  port: number;
  user?: string;
}

/** POSIX shell quoting of one word (the remote side runs the command through a shell). */
export function shellQuote(word: string): string {
  if (word !== '' && /^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The remote command as one string: every argument quoted, so argv in means argv out. */
export function remoteCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

export function sshArgv(t: SshTarget, remote: readonly string[], connectTimeoutSec = 5): string[] {
  return [
    'ssh',
    '-F', '/dev/null',
    '-i', t.key,
    '-p', String(t.port),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', `ConnectTimeout=${connectTimeoutSec}`,
    '-o', 'ServerAliveInterval=10',
    '-o', 'ServerAliveCountMax=6',
    `${t.user ?? 'root'}@127.0.0.1`,
    '--',
    remoteCommand(remote),
  ];
}

/** Remote argv that writes stdin to `path` with `mode` (directories created): the copy-in without scp/sftp. */
export function writeFileRemote(path: string, mode: string): string[] {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  return ['sh', '-c', 'mkdir -p "$1" && cat > "$2.part" && chmod "$3" "$2.part" && mv -f "$2.part" "$2"', 'copy-in', dir, path, mode];
}
