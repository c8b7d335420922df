// The netlink wire format both sockets share: datagrams built and read back, error replies.
import test from 'ava';
import { batchDatagram, BATCH_MAX_MESSAGES, decodeError, nextChunk, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_REQUEST, NLMSG_ERROR, parseMessages, type BatchRequest } from '../../netlink/wire.js';

const request = (bytes: number, type = 20): BatchRequest => ({ type, payload: [new Uint8Array(bytes).fill(7)], flags: 0x400 });

test('a batch datagram holds each message 4-byte aligned; only the last asks for an ack; it reads back', (t) => {
  const requests = [request(5), request(8), request(3)];
  const { end, bytes } = nextChunk(requests, 0);
  t.deepEqual({ end, bytes }, { end: 3, bytes: 24 + 24 + 20 });
  let seq = 40;
  const { datagram, firstSeq, lastSeq } = batchDatagram(requests, 0, end, bytes, () => ++seq);
  t.deepEqual([firstSeq, lastSeq], [41, 43]);
  const messages = parseMessages(datagram, datagram.length);
  t.deepEqual(
    messages.map((m) => [m.type, m.flags, m.seq, m.data.length]),
    [
      [20, 0x400 | NLM_F_REQUEST, 41, 5],
      [20, 0x400 | NLM_F_REQUEST, 42, 8],
      [20, 0x400 | NLM_F_REQUEST | NLM_F_ACK, 43, 3],
    ],
  );
  // the padding after the 5- and 3-byte payloads is zero
  t.deepEqual([...datagram.subarray(21, 24)], [0, 0, 0]);
});

test('a datagram ends at the message limit or before the byte limit', (t) => {
  const many = Array.from({ length: BATCH_MAX_MESSAGES + 10 }, () => request(4));
  t.is(nextChunk(many, 0).end, BATCH_MAX_MESSAGES);
  t.is(nextChunk(many, BATCH_MAX_MESSAGES).end, many.length);
  const large = Array.from({ length: 5 }, () => request(30_000));
  t.deepEqual(nextChunk(large, 0), { end: 2, bytes: 2 * 30_016 });
  // one message larger than the limit still goes, alone
  t.deepEqual(nextChunk([request(70_000), request(4)], 0), { end: 1, bytes: 70_016 });
});

test('parseMessages leaves out a truncated tail and a message shorter than its header', (t) => {
  const { datagram } = batchDatagram([request(4), request(4)], 0, 2, 40, () => 1);
  t.is(parseMessages(datagram, 30).length, 1);
  const bogus = Buffer.from(datagram);
  bogus.writeUInt32LE(8, 0); // nlmsg_len below the header's 16 bytes
  t.deepEqual(parseMessages(bogus, bogus.length), []);
});

test('an error reply: the errno name, the extended-ack text, and a malformed attribute costs only the text', (t) => {
  const text = Buffer.from('Invalid prefix for given prefix length\0');
  const attribute = Buffer.alloc(4 + text.length + ((4 - (text.length % 4)) % 4));
  attribute.writeUInt16LE(4 + text.length, 0);
  attribute.writeUInt16LE(1, 2); // NLMSGERR_ATTR_MSG
  text.copy(attribute, 4);
  const errno = Buffer.alloc(4);
  errno.writeInt32LE(-22); // EINVAL
  const echoedHeader = Buffer.alloc(16);
  const reply = { type: NLMSG_ERROR, flags: NLM_F_ACK_TLVS | NLM_F_CAPPED, seq: 1, port: 0, data: Buffer.concat([errno, echoedHeader, attribute]) };
  t.deepEqual(decodeError(reply), { errno: 22, code: 'EINVAL', kernelMessage: 'Invalid prefix for given prefix length' });

  const broken = Buffer.from(reply.data);
  broken.writeUInt16LE(200, 20); // the attribute claims more bytes than there are
  t.deepEqual(decodeError({ ...reply, data: broken }), { errno: 22, code: 'EINVAL', kernelMessage: undefined });
  const ack = Buffer.alloc(20);
  t.deepEqual(decodeError({ ...reply, flags: 0, data: ack }), { errno: 0, code: 'OK' });
});
