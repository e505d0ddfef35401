#!/usr/bin/env node
// A Kafka client from another ecosystem (kafkajs, protobufjs) on Millom's
// MNO-facing topics, as an operator's or analyst's program would use them:
// protobuf payloads encoded from schemas/millom/v1 (loaded at run time),
// keys mapped to partitions by kafkajs's Java-compatible partitioner
// (murmur2, as the Java client and Millom's own producers do).
//
//   node tools/kafkajs/interop.js produce-subscriber-events --brokers B
//       stdin: one JSON object a line, {"msisdn", "type", "transactionId",
//       "operator" (default tp), "override", "planId", "language"}; each is
//       sent to millom.subscriber.events keyed by the MSISDN. stdout: one
//       JSON line a message, {"key", "partition", "offset"}.
//   node tools/kafkajs/interop.js consume --brokers B --topic T --type M
//       [--group G] [--max N] [--idle-ms MS] [--key K]
//       reads T from the group's committed offsets (the beginning for a new
//       group) with a kafkajs consumer group, decodes each value as the
//       message type M (e.g. millom.v1.SettlementRecord) and prints one JSON
//       line a message, {"partition", "offset", "key", "value"} (64-bit
//       integers as strings, enums by name); stops after N messages (those
//       with key K only, when given) or MS without a new one after joining
//       the group (default 10000). A value that does not decode prints {"error"} instead of
//       "value". Exit 0, or 1 with the error on stderr.
//
// Used by tests/integration/test_kafkajs_interop.c; the README's MNO and
// analyst sections show the same calls. Packages: tools/kafkajs/package.json
// (npm ci --prefix tools/kafkajs, done by scripts/deps.sh).
'use strict';

const path = require('path');
const readline = require('readline');
const { Kafka, Partitioners, logLevel } = require('kafkajs');
const protobuf = require('protobufjs');

const SCHEMAS = path.resolve(__dirname, '..', '..', 'schemas');
const SUBSCRIBER_EVENTS = 'millom.subscriber.events';

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${a}`);
    opts[a.slice(2)] = argv[++i];
  }
  if (!opts.brokers) throw new Error('--brokers host:port[,host:port] is required');
  return opts;
}

// The .proto files as they are in the repository; imports
// ("millom/v1/common.proto") resolve against schemas/.
async function loadSchemas() {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => (path.isAbsolute(target) ? target : path.join(SCHEMAS, target));
  await root.load(['millom/v1/subscriber.proto', 'millom/v1/settlement.proto'], { keepCase: false });
  return root;
}

function client(opts) {
  return new Kafka({
    clientId: 'millom-kafkajs-interop',
    brokers: opts.brokers.split(','),
    logLevel: logLevel.WARN,
    retry: { retries: 8 },
  });
}

async function readJsonLines() {
  const lines = [];
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line.trim()) lines.push(JSON.parse(line));
  }
  return lines;
}

async function produceSubscriberEvents(opts) {
  const root = await loadSchemas();
  const SubscriberEvent = root.lookupType('millom.v1.SubscriberEvent');
  const messages = (await readJsonLines()).map((e) => {
    const operator = e.operator || 'tp';
    const fields = {
      operator,
      subscriber: { operator, keyType: 'KEY_TYPE_MSISDN', subscriberId: e.msisdn },
      type: e.type,
      transactionId: e.transactionId,
      override: !!e.override,
      planId: e.planId || '',
      language: e.language || '',
      occurredAtMs: Date.now(),
    };
    const event = SubscriberEvent.fromObject(fields);
    const problem = SubscriberEvent.verify(event);
    if (problem) throw new Error(`SubscriberEvent: ${problem}`);
    return { key: e.msisdn, value: Buffer.from(SubscriberEvent.encode(event).finish()) };
  });
  const producer = client(opts).producer({ createPartitioner: Partitioners.JavaCompatiblePartitioner });
  await producer.connect();
  try {
    // One send a message: its result names the partition and offset.
    for (const m of messages) {
      const [r] = await producer.send({ topic: SUBSCRIBER_EVENTS, acks: -1, messages: [m] });
      console.log(JSON.stringify({ key: m.key, partition: r.partition, offset: r.baseOffset }));
    }
  } finally {
    await producer.disconnect();
  }
}

async function consume(opts) {
  if (!opts.topic || !opts.type) throw new Error('consume needs --topic and --type');
  const root = await loadSchemas();
  const Type = root.lookupType(opts.type);
  const max = opts.max ? Number(opts.max) : 0;
  const idleMs = opts['idle-ms'] ? Number(opts['idle-ms']) : 10000;
  const group = opts.group || `millom-kafkajs-${process.pid}`;
  const consumer = client(opts).consumer({ groupId: group });
  await consumer.connect();
  let printed = 0;
  let lastAt = Date.now();
  let joined = false;
  let finish;
  const done = new Promise((resolve) => (finish = resolve));
  // Idle time counts from joining the group on: a join takes seconds.
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined = true;
    lastAt = Date.now();
  });
  const startedAt = Date.now();
  try {
    await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        lastAt = Date.now();
        const key = message.key ? message.key.toString() : null;
        if (max && printed >= max) return;
        if (opts.key && key !== opts.key) return;
        const line = { partition, offset: message.offset, key };
        try {
          line.value = Type.toObject(Type.decode(message.value), { longs: String, enums: String, defaults: true });
        } catch (e) {
          line.error = `not a ${opts.type}: ${e.message}`; // printed, never skipped
        }
        console.log(JSON.stringify(line));
        if (max && ++printed >= max) finish();
      },
    });
    const idle = setInterval(() => {
      if (joined ? Date.now() - lastAt >= idleMs : Date.now() - startedAt >= 60000) finish();
    }, 100);
    await done;
    clearInterval(idle);
  } finally {
    await consumer.disconnect();
  }
  if (!joined) throw new Error(`did not join group ${group} within 60 s`);
  if (max && printed < max) throw new Error(`only ${printed} of ${max} messages within ${idleMs} ms`);
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const opts = parseArgs(rest);
  if (command === 'produce-subscriber-events') return produceSubscriberEvents(opts);
  if (command === 'consume') return consume(opts);
  throw new Error(`unknown command ${command} (produce-subscriber-events, consume)`);
}

main().catch((e) => {
  console.error(`interop.js: ${e.message}`);
  process.exit(1);
});
