// The leaves' resolver: answers A queries for one name with one address, NXDOMAIN for other
// names, on UDP port 53 of the anycast address. The rack runs it inside each leaf namespace
//   node --import tsx scripts/rack/dns.ts <bind-address> <name> <answer>
// so that the machine's installed resolv.conf (install.yaml's dns_servers) is exercised over the
// BGP routes. The message handling is pure (unit-tested); the socket part is the tail of this file.
import { createSocket } from 'node:dgram';

export interface Question {
  id: number;
  name: string;
  type: number;
  cls: number;
  /** The question section as received (echoed in the answer). */
  raw: Buffer;
  flags: number;
}

/** Pure: the first question of a DNS query, or null for anything that is not one. */
export function parseQuery(msg: Buffer): Question | null {
  if (msg.length < 12) return null;
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return null; // a response
  if (msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let i = 12;
  for (;;) {
    if (i >= msg.length) return null;
    const len = msg[i]!;
    if (len === 0) break;
    if (len & 0xc0) return null; // no compression in questions
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += 1 + len;
  }
  if (i + 5 > msg.length) return null;
  const type = msg.readUInt16BE(i + 1);
  const cls = msg.readUInt16BE(i + 3);
  return { id: msg.readUInt16BE(0), name: labels.join('.').toLowerCase(), type, cls, raw: msg.subarray(12, i + 5), flags };
}

/** Pure: the response to `q`: one A record (TTL 60) for `name`, NOERROR without answers for its other types, NXDOMAIN otherwise. */
export function answer(q: Question, name: string, address: string): Buffer {
  const known = q.name === name.toLowerCase();
  const withA = known && q.type === 1 && q.cls === 1;
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, opcode 0, AA, RD copied, RA; rcode 3 (NXDOMAIN) for unknown names
  header.writeUInt16BE(0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | (known ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(withA ? 1 : 0, 6);
  if (!withA) return Buffer.concat([header, q.raw]);
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
  rr.writeUInt16BE(1, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(60, 6);
  rr.writeUInt16BE(4, 10);
  address.split('.').forEach((o, k) => rr.writeUInt8(Number(o), 12 + k));
  return Buffer.concat([header, q.raw, rr]);
}

if (process.argv[1] && import.meta.url === new URL(process.argv[1], 'file://').href) {
  const [bind, name, address] = process.argv.slice(2);
  if (!bind || !name || !address) {
    console.error('usage: dns.ts <bind-address> <name> <answer>');
    process.exit(2);
  }
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    const q = parseQuery(msg);
    if (!q) return;
    console.log(`query ${q.name} type ${q.type} from ${rinfo.address}`);
    sock.send(answer(q, name, address), rinfo.port, rinfo.address);
  });
  sock.bind(53, bind, () => console.log(`answering ${name} with ${address} on ${bind}:53`));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => sock.close(() => process.exit(0)));
}
