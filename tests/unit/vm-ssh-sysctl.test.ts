// ssh command lines for the test VM, and the image's effective sysctl settings.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { remoteCommand, shellQuote, sshArgv, writeFileRemote } from '../../scripts/vm/ssh.ts';
import { effectiveSysctl, parseSysctl, readSysctlFiles, valuePattern } from '../../scripts/vm/sysctl.ts';

const ssh = suite('ssh');

ssh('argv: the ephemeral key, 127.0.0.1 only, no user config, agent or known_hosts', () => {
  assert.equal(sshArgv({ key: '/s/id_ed25519', port: 40123 }, ['systemctl', 'is-system-running', '--wait']), [
    'ssh', '-F', '/dev/null', '-i', '/s/id_ed25519', '-p', '40123',
    '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5',
    '-o', 'ServerAliveInterval=10', '-o', 'ServerAliveCountMax=6',
    'root@127.0.0.1', '--', 'systemctl is-system-running --wait',
  ]);
  const other = sshArgv({ key: 'k', port: 1, user: 'metal' }, ['true'], 10);
  assert.ok(other.includes('ConnectTimeout=10'));
  assert.equal(other.slice(-3), ['metal@127.0.0.1', '--', 'true']);
});

ssh('remote commands are quoted word by word', () => {
  assert.is(shellQuote('plain-word_1.2/x:y=z'), 'plain-word_1.2/x:y=z');
  assert.is(shellQuote(''), "''");
  assert.is(shellQuote('two words'), "'two words'");
  assert.is(shellQuote("it's"), "'it'\\''s'");
  assert.is(shellQuote('$(reboot)'), "'$(reboot)'");
  assert.is(remoteCommand(['vtysh', '-c', 'show version']), "vtysh -c 'show version'");
  assert.is(remoteCommand(['sh', '-c', 'echo "$1"', 'sh', 'a;b']), `sh -c 'echo "$1"' sh 'a;b'`);
});

ssh('copy-in writes through a temporary name and sets the mode', () => {
  assert.equal(writeFileRemote('/var/tmp/metal-vmtest/goss', '0755'), [
    'sh', '-c', 'mkdir -p "$1" && cat > "$2.part" && chmod "$3" "$2.part" && mv -f "$2.part" "$2"', 'copy-in', '/var/tmp/metal-vmtest', '/var/tmp/metal-vmtest/goss', '0755',
  ]);
  assert.equal(writeFileRemote('/x', '0644').slice(3), ['copy-in', '/', '/x', '0644']);
});
ssh.run();

const sysctl = suite('sysctl');

sysctl('parse: comments, blanks, optional keys, slash notation', () => {
  assert.equal(
    parseSysctl('# c\n; c\n\nkernel.printk = 2 4 1 7\n-net.ipv4.conf.all.rp_filter=0\nnet/ipv4/conf/eth0.100/rp_filter = 1\nnot an assignment\n'),
    [
      { key: 'kernel.printk', value: '2 4 1 7', optional: false },
      { key: 'net.ipv4.conf.all.rp_filter', value: '0', optional: true },
      { key: 'net.ipv4.conf.eth0/100.rp_filter', value: '1', optional: false },
    ],
  );
});

sysctl('systemd-sysctl order: by file name across dirs, /etc masks the same name, later wins', () => {
  const eff = effectiveSysctl([
    { dir: '/usr/lib/sysctl.d', name: '50-default.conf', text: 'net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\nkernel.sysrq = 16\n' },
    { dir: '/etc/sysctl.d', name: '20-metal-network.conf', text: 'net.ipv4.conf.default.rp_filter = 0\nnet.ipv4.conf.all.rp_filter = 0\n' },
    { dir: '/usr/lib/sysctl.d', name: '50-pid-max.conf', text: 'kernel.pid_max = 4194304\n' },
    { dir: '/lib/sysctl.d', name: '50-pid-max.conf', text: 'kernel.pid_max = 1\n' },
    { dir: '/etc/sysctl.d', name: '99-sysctl.conf', text: 'kernel.sysrq = 0\n' },
    { dir: '/etc/sysctl.d', name: '60-optional.conf', text: '-kernel.pid_max = 99\n' },
  ]);
  assert.equal([...eff], [
    // 50-default.conf sorts after 20-metal-network.conf, so its rp_filter=2 wins: exactly what the
    // VM test must be able to catch
    ['kernel.sysrq', '0'],
    ['net.ipv4.conf.all.rp_filter', '0'],
    ['net.ipv4.conf.default.rp_filter', '2'],
  ]);
});

sysctl('value patterns match what /proc/sys prints (tabs between vector elements)', () => {
  assert.is(valuePattern('2 4 1 7'), '^2\\s+4\\s+1\\s+7$');
  assert.ok(new RegExp(valuePattern('2 4 1 7')).test('2\t4\t1\t7'));
  assert.not.ok(new RegExp(valuePattern('2 4 1 7')).test('2\t4\t1\t71'));
  assert.is(valuePattern('|/usr/lib/systemd/systemd-coredump %P'), '^\\|/usr/lib/systemd/systemd-coredump\\s+%P$');
  assert.is(valuePattern(' 1 '), '^1$');
});

sysctl('files are read from an unpacked tree; symlinks resolve inside it, not on the host', () => {
  const root = mkdtempSync(join(tmpdir(), 'sysctl-'));
  try {
    mkdirSync(join(root, 'etc/sysctl.d'), { recursive: true });
    mkdirSync(join(root, 'usr/lib/sysctl.d'), { recursive: true });
    writeFileSync(join(root, 'etc/sysctl.conf'), 'kernel.sysrq = 0\n');
    symlinkSync('../sysctl.conf', join(root, 'etc/sysctl.d/99-sysctl.conf'));
    symlinkSync('/etc/sysctl.conf', join(root, 'etc/sysctl.d/98-abs.conf'));
    symlinkSync('/nonexistent/file.conf', join(root, 'etc/sysctl.d/97-dangling.conf'));
    writeFileSync(join(root, 'etc/sysctl.d/README.sysctl'), 'kernel.x = 1\n');
    writeFileSync(join(root, 'usr/lib/sysctl.d/50-pid-max.conf'), 'kernel.pid_max = 4194304\n');
    const files = readSysctlFiles(root).sort((a, b) => (a.name < b.name ? -1 : 1));
    assert.equal(files, [
      { dir: '/usr/lib/sysctl.d', name: '50-pid-max.conf', text: 'kernel.pid_max = 4194304\n' },
      { dir: '/etc/sysctl.d', name: '98-abs.conf', text: 'kernel.sysrq = 0\n' },
      { dir: '/etc/sysctl.d', name: '99-sysctl.conf', text: 'kernel.sysrq = 0\n' },
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
sysctl.run();
