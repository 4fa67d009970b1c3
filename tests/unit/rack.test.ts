// Pure parts of the rack test (scripts/rack/): cpio, ldd, module order, QEMU argv, layout, names,
// the leaves' configurations and the parsers of what FRR, lldpcli and ping print, the resolver's
// messages, the verdict with its known defects, and the installed-machine vars.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answer, parseQuery } from '../../scripts/rack/dns.ts';
import { cpioNewc, moduleLoadOrder, parseLdd } from '../../scripts/rack/initramfs.ts';
import { bgpdConf, parseBgpSummary, parseLldpNeighbors, parseNeighborRoutes, parsePing, zebraConf } from '../../scripts/rack/leaf.ts';
import { defaultLayout, LEAVES, machinePlan, ownerOf, rackAdditions, runNames } from '../../scripts/rack/plan.ts';
import { hammerCmdline, rackQemuArgv } from '../../scripts/rack/qemu.ts';
import { KNOWN_DEFECTS, baseId, duplicateParams, grubKernelLine, parseBootInfo, verdict } from '../../scripts/rack/report.ts';
import { installVars, reEscape } from '../../scripts/vm/install-vars.ts';
import { asRoot } from '../../scripts/vm/vm.ts';

test('cpio: newc headers, names NUL-terminated and padded to 4, data padded, trailer', () => {
  const b = cpioNewc([{ path: 'init', kind: 'file', mode: 0o755, data: Buffer.from('hi') }, { path: 'lib', kind: 'symlink', mode: 0o777, target: 'usr/lib' }]);
  const s = b.toString('latin1');
  assert.is(s.slice(0, 110), '070701' + '00000001' + '000081ed' + '00000000'.repeat(2) + '00000001' + '00000000' + '00000002' + '00000000'.repeat(4) + '00000005' + '00000000');
  assert.is(s.slice(110, 116), 'init\0\0'); // 110 + 5 = 115, padded to 116
  assert.is(s.slice(116, 120), 'hi\0\0');
  assert.is(s.slice(120 + 14, 120 + 22), '0000a1ff'); // symlink mode
  assert.ok(s.includes('TRAILER!!!\0'));
  assert.is(b.length % 4, 0);
});

test('ldd: absolute library paths and the loader, no vdso', () => {
  const out = '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibuuid.so.1 => /lib/x86_64-linux-gnu/libuuid.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n';
  assert.equal(parseLdd(out), ['/lib/x86_64-linux-gnu/libuuid.so.1', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
});

test('modules: dependencies first, each once; a missing module is named', () => {
  const dep = [
    'kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko',
    'kernel/fs/jbd2/jbd2.ko:',
    'kernel/fs/mbcache.ko:',
    'kernel/lib/crc16.ko:',
    'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko',
    'kernel/drivers/virtio/virtio_ring.ko:',
    'kernel/drivers/virtio/virtio.ko:',
  ].join('\n');
  assert.equal(moduleLoadOrder(dep, ['virtio_blk', 'ext4']), [
    'kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/virtio/virtio.ko', 'kernel/drivers/block/virtio_blk.ko',
    'kernel/fs/jbd2/jbd2.ko', 'kernel/fs/mbcache.ko', 'kernel/lib/crc16.ko', 'kernel/fs/ext4/ext4.ko',
  ]);
  assert.throws(() => moduleLoadOrder(dep, ['vfat']), /has no module vfat \(neither in modules\.dep nor in modules\.builtin\)/);
  // Debian 13's kernel builds virtio_pci in: nothing to load for it, the rest as before
  assert.equal(moduleLoadOrder(dep, ['virtio_pci', 'virtio_blk'], 'kernel/drivers/virtio/virtio_pci.ko\nkernel/fs/vfat/vfat.ko\n'), [
    'kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/virtio/virtio.ko', 'kernel/drivers/block/virtio_blk.ko',
  ]);
});

test('qemu: OVMF code read-only and a vars copy, restricted user net with ssh and the server only, lan NICs on taps, both serial ports', () => {
  const argv = rackQemuArgv({
    accel: 'tcg', ovmfCode: '/fw/CODE.fd', ovmfVars: '/run/VARS.fd', disk: '/run/disk.img', mgmtMac: '52:54:00:6d:67:6d', sshPort: 2222, serverPort: 8080,
    lan: [{ mac: '00:03:00:11:11:01', tap: 'mrk1l1' }, { mac: '00:03:00:11:12:01', tap: 'mrk1l2' }], serial: ['/l/s0', '/l/s1'], pidFile: '/run/q.pid',
  });
  const s = argv.join(' ');
  assert.match(s, / -drive if=pflash,format=raw,unit=0,readonly=on,file=\/fw\/CODE\.fd -drive if=pflash,format=raw,unit=1,file=\/run\/VARS\.fd /);
  assert.not.match(s, /-kernel/);
  assert.ok(argv.includes('user,id=mgmt,restrict=on,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:2222-:22,guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:127.0.0.1:8080'));
  assert.match(s, /-netdev tap,id=lan0,ifname=mrk1l1,script=no,downscript=no -device virtio-net-pci,netdev=lan0,mac=00:03:00:11:11:01/);
  assert.match(s, /-serial file:\/l\/s0 -serial file:\/l\/s1 /);
  const withKernel = rackQemuArgv({ accel: 'tcg', ovmfCode: 'c', ovmfVars: 'v', disk: 'd', mgmtMac: 'm', sshPort: 1, serverPort: 2, lan: [], serial: ['a', 'b'], pidFile: 'p', kernel: { kernel: 'k', initrd: 'i', append: 'x y' } });
  assert.match(withKernel.join(' '), / -kernel k -initrd i -append x y /);
  assert.is(hammerCmdline('52:54:00:6d:67:6d'), 'console=ttyS1,115200n8 rack.job=http://10.0.2.100:80/job.json rack.mac=52:54:00:6d:67:6d rack.ip=10.0.2.15/24 panic=-1');
});

test('plan: the default layout, the allocation, the names of a run', () => {
  const l = defaultLayout('/dev/vda');
  assert.equal(l.disks[0]!.partitions.map((p) => [p.number, p.label, p.size, p.gpttype]), [[1, 'efi', 500, 'ef00'], [2, 'root', 5000, '8300'], [3, 'varlib', 0, '8300']]);
  assert.equal(l.filesystems.map((f) => [f.path, f.device, f.format]), [['/boot/efi', '/dev/vda1', 'vfat'], ['/', '/dev/vda2', 'ext4'], ['/var/lib', '/dev/vda3', 'ext4'], ['/tmp', 'tmpfs', 'tmpfs']]);
  assert.is(defaultLayout('/dev/nvme0n1').filesystems[0]!.device, '/dev/nvme0n1p1');
  const m = machinePlan({ sshPublicKey: 'ssh-ed25519 AAA k\n', password: 'pw', userdata: '#cloud-config\n' });
  assert.equal(m.sshpubkeys, ['ssh-ed25519 AAA k']);
  assert.equal(m.nics.map((n) => [n.name, n.mac, n.neighbors[0]!.mac]), [['lan0', '00:03:00:11:11:01', '44:38:39:00:00:1a'], ['lan1', '00:03:00:11:12:01', '44:38:39:00:00:04']]);
  assert.is(Buffer.from(m.userdata, 'base64').toString(), '#cloud-config\n');
  assert.match(rackAdditions()[0]!.content, /^MACAddress=52:54:00:6d:67:6d$/m);
  const n = runNames(4242);
  assert.equal(n, { tag: 'mrk4242', netns: { leaf1: 'mrk4242-leaf1', leaf2: 'mrk4242-leaf2' }, tap: { leaf1: 'mrk4242l1', leaf2: 'mrk4242l2' }, hosts: { tenant: 'mrk4242-tenant', internet: 'mrk4242-internet' } });
  assert.ok(n.tap.leaf1.length <= 15);
  assert.is(ownerOf('mrk4242-leaf2'), 4242);
  assert.is(ownerOf('mrk4242l1'), 4242);
  assert.is(ownerOf('mrk4242-internet'), 4242);
  assert.is(ownerOf('mrk4242-probe'), null);
  assert.is(ownerOf('eth0'), null);
});

test('leaf configs: RAs on the port; one unnumbered external peer; loopback and anycast announced', () => {
  const leaf = LEAVES[0]!;
  assert.is(zebraConf(leaf, 'tapA'), 'hostname leaf1\nlog stdout informational\n!\ninterface tapA\n ipv6 nd ra-interval 6\n no ipv6 nd suppress-ra\n!\n');
  const b = bgpdConf(leaf, 'tapA');
  assert.match(b, /^router bgp 4200000001\n bgp router-id 192\.0\.2\.1\n/m);
  assert.match(b, /^ neighbor tapA interface remote-as external$/m);
  assert.match(b, /^  network 192\.0\.2\.1\/32\n  network 192\.0\.2\.53\/32$/m);
  assert.match(b, /^ address-family ipv6 unicast\n  neighbor tapA activate$/m);
});

test('parsers: FRR summary and neighbour routes, lldpcli (object or array), ping', () => {
  const summary = JSON.stringify({ ipv4Unicast: { routerId: '192.0.2.1', peers: { mrk1l1: { remoteAs: 4200003073, state: 'Established', pfxRcd: 3, peerUptime: '00:00:41' } } } });
  assert.equal(parseBgpSummary(summary), [{ peer: 'mrk1l1', state: 'Established', remoteAs: 4200003073, pfxRcd: 3, uptime: '00:00:41' }]);
  assert.equal(parseBgpSummary('{}'), []);
  const routes = JSON.stringify({ routes: { '10.0.17.2/32': [{ valid: true, path: '4200003073', nexthops: [{ ip: 'fe80::1', interface: 'mrk1l1' }] }] } });
  assert.equal(parseNeighborRoutes(routes), [{ prefix: '10.0.17.2/32', path: '4200003073', via: ['mrk1l1'] }]);
  const one = JSON.stringify({ lldp: { interface: { mrk1l1: { chassis: { machine: { id: { type: 'mac', value: '00:03:00:11:11:01' }, descr: 'Debian GNU/Linux 12 Linux 6.1.0' } }, port: { id: { type: 'mac', value: '00:03:00:11:11:01' }, descr: 'lan0' } } } } });
  assert.equal(parseLldpNeighbors(one), [{ port: 'mrk1l1', systemName: 'machine', systemDescription: 'Debian GNU/Linux 12 Linux 6.1.0', chassisId: '00:03:00:11:11:01', portId: '00:03:00:11:11:01', portDescription: 'lan0' }]);
  const two = JSON.stringify({ lldp: { interface: [{ a: { chassis: { x: { descr: 'd1' } } } }, { b: { chassis: { y: { descr: 'd2' } } } }] } });
  assert.equal(parseLldpNeighbors(two).map((n) => [n.port, n.systemName]), [['a', 'x'], ['b', 'y']]);
  assert.equal(parseLldpNeighbors(JSON.stringify({ lldp: {} })), []);
  assert.equal(parsePing('3 packets transmitted, 2 received, 33% packet loss, time 2003ms'), { sent: 3, received: 2 });
});

test('dns: answers the one name with an A record, NXDOMAIN otherwise, ignores responses', () => {
  // query for images.rack.metal.test A IN, id 0x1234, RD
  const qname = Buffer.concat(['images', 'rack', 'metal', 'test'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])).concat([Buffer.from([0])]));
  const query = Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), qname, Buffer.from([0, 1, 0, 1])]);
  const q = parseQuery(query)!;
  assert.equal([q.id, q.name, q.type, q.cls], [0x1234, 'images.rack.metal.test', 1, 1]);
  const a = answer(q, 'images.rack.metal.test', '192.0.2.80');
  assert.equal([...a.subarray(0, 12)], [0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
  assert.equal([...a.subarray(a.length - 16)], [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 80]);
  const nx = answer({ ...q, name: 'other.test' }, 'images.rack.metal.test', '192.0.2.80');
  assert.is(nx.readUInt16BE(2) & 0xf, 3);
  assert.is(nx.readUInt16BE(6), 0);
  assert.is(parseQuery(a), null);
  assert.is(parseQuery(Buffer.alloc(5)), null);
});

test('report: GRUB line without BOOT_IMAGE, duplicate parameters, boot-info, known defects and stale ones', () => {
  assert.equal(KNOWN_DEFECTS, {}, 'the image has no known defect left: the rack asserts everything');
  const proc = 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-57-amd64 root=/dev/vda2 ro console=ttyS1,115200n8 root=UUID=abc init=/sbin/init';
  assert.is(grubKernelLine(proc), 'root=/dev/vda2 ro console=ttyS1,115200n8 root=UUID=abc init=/sbin/init');
  assert.equal(duplicateParams(grubKernelLine(proc)), ['root']);
  assert.equal(duplicateParams('console=ttyS1 root=UUID=abc'), []);
  assert.equal(parseBootInfo('cmdline: console=ttyS1,115200n8 root=UUID=abc init=/sbin/init\ninitrd: /boot/initrd.img-6\nkernel: /boot/vmlinuz-6\nbootloader_id: metal-debian\n'), {
    kernel: '/boot/vmlinuz-6', initrd: '/boot/initrd.img-6', cmdline: 'console=ttyS1,115200n8 root=UUID=abc init=/sbin/init', bootloader_id: 'metal-debian',
  });
  assert.is(baseId('boot2.grub-cmdline'), 'grub-cmdline');
  const v = verdict([
    { id: 'boot1.kexec-cmdline', ok: true, detail: '' },
    { id: 'boot2.grub-cmdline', ok: false, detail: 'twice: root' },
    { id: 'boot1.userdata-applied', ok: true, detail: 'applied' },
    { id: 'boot1.leaf1.ping', ok: false, detail: '0/3' },
  ], { 'grub-cmdline': 'a defect another change fixes', 'userdata-applied': 'another' });
  assert.equal(v.failed.map((c) => c.id), ['boot1.leaf1.ping']);
  assert.equal(v.knownDefects.map((c) => c.id), ['boot2.grub-cmdline']);
  assert.equal(v.stale.map((c) => c.id), ['boot1.userdata-applied']);
});

test('installed-machine vars: from an install.yaml as the hammer writes it, escaped for regexps', () => {
  const y = [
    'hostname: machine', 'networks:', '    - asn: 4200003073', '      ips:', '        - 10.0.17.2', '      networktype: privateprimaryunshared', '      private: true',
    '    - asn: 4200003073', '      ips:', '        - 185.1.2.3', '      networktype: external', '      private: false',
    'sshpublickey: |-', '    ssh-ed25519 AAA a', '    ssh-ed25519 BBB b', 'password: pw', 'console: ttyS1,115200n8',
    'nics:', '    - mac: "00:03:00:11:11:01"', '    - mac: 44:38:39:00:00:04', 'root_uuid: 543e-b7f8', 'dns_servers:', '    - ip: 192.0.2.53', 'ntp_servers:', '    - address: time.cloudflare.com', '    - address: 192.0.2.123', '',
  ].join('\n');
  const v = installVars(y);
  assert.equal(v, {
    hostname_re: 'machine', primary_ip: '10.0.17.2', primary_ip_re: '10\\.0\\.17\\.2', asn: 4200003073, ips_re: ['10\\.0\\.17\\.2', '185\\.1\\.2\\.3'],
    dns_re: ['192\\.0\\.2\\.53'], ntp_re: 'time\\.cloudflare\\.com 192\\.0\\.2\\.123', nics: [{ index: 0, mac: '00:03:00:11:11:01' }, { index: 1, mac: '44:38:39:00:00:04' }],
    ssh_keys: ['ssh-ed25519 AAA a', 'ssh-ed25519 BBB b'], password: 'pw', root_uuid_re: '543e-b7f8', console_re: 'ttyS1,115200n8', console_tty: 'ttyS1', machineuuid: '', timestamp: '', serial_unit: '1', serial_speed: '115200',
  });
  assert.is(reEscape('a.b/c(d)'), 'a\\.b\\/c\\(d\\)');
});

test('sudo: root runs as is; another user through sudo, with the password line first when sudo needs one', () => {
  assert.equal(asRoot('root', 'password', ['id']), { argv: ['id'], input: undefined });
  assert.equal(asRoot('metal', 'nopasswd', ['id'], 'pw', 'x'), { argv: ['sudo', '-n', '--', 'id'], input: 'x' });
  const p = asRoot('metal', 'password', ['sh', '-c', 'cat > f'], 'pw', 'body');
  assert.equal(p.argv, ['sudo', '-k', '-S', '-p', '', '--', 'sh', '-c', 'cat > f']);
  assert.is(p.input!.toString(), 'pw\nbody');
});

test.run();
