#!/usr/bin/env node
// Event Hubs emulator for tests: an AMQP 1.0 endpoint on loopback that speaks
// just enough of the Event Hubs protocol for the azeventhubs/v2 Go SDK
// (consumer, producer and processor), plus an HTTP control port that tests use
// to publish events, read partition stats and inject faults.
//
// Usage:
//   node emulator.js [--host 127.0.0.1] [--port 0] [--control-port 0]
//                    [--hub NAME] [--partitions N] [--consumer-groups A,B]
//                    [--sas-key KEY]
//
// The hub has the consumer group $Default and those of --consumer-groups,
// matched without regard to case as in Event Hubs; a receiver on any other
// group is refused with amqp:not-found, as Event Hubs refuses it.
//
// With --sas-key, a put-token whose SAS signature was not made with KEY (any
// key name) is answered with status 401, as Event Hubs answers a wrong key;
// without it every token is accepted.
//
// Once both ports listen it prints one JSON line on stdout:
//   {"ready":true,"amqp_port":P,"control_port":C,"hub":"...","partitions":N}
//
// Control API (JSON):
//   POST /publish?partition=ID            body = one event body (raw bytes)
//   POST /publish-batch?partition=ID      body = {"bodies":["<base64>", ...]}
//   GET  /partitions                      per-partition stats
//   POST /fault/drop-connections          close every AMQP connection now
//   POST /fault/refuse?seconds=N          stop listening for N seconds
//   GET  /healthz
'use strict';

const crypto = require('crypto');
const http = require('http');
const rhea = require('rhea');

const types = rhea.types;
const amqpMessage = rhea.message;

const BATCH_FORMAT = 0x80013700;
const OFFSET_FACTOR = 1000; // offset = sequence × 1000, so tests catch any mix-up
const MAX_MESSAGE_SIZE = 1024 * 1024;

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 0, controlPort: 0, hub: 'hub', partitions: 4, consumerGroups: ['$Default'] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--host': opts.host = next(); break;
      case '--port': opts.port = Number(next()); break;
      case '--control-port': opts.controlPort = Number(next()); break;
      case '--hub': opts.hub = next(); break;
      case '--partitions': opts.partitions = Number(next()); break;
      case '--sas-key': opts.sasKey = next(); break;
      case '--consumer-groups': opts.consumerGroups.push(...next().split(',').map((g) => g.trim()).filter((g) => g !== '')); break;
      default: throw new Error(`unknown flag ${a}`);
    }
  }
  if (!Number.isInteger(opts.partitions) || opts.partitions < 1) throw new Error('--partitions must be a positive integer');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const createdAt = new Date();

// partitions[i] = { id, events: [{seq, offset, enqueued, body, partitionKey, properties, applicationProperties}], consumers: Set<consumer> }
const partitions = [];
for (let i = 0; i < opts.partitions; i++) {
  partitions.push({ id: String(i), events: [], consumers: new Set() });
}
let roundRobin = 0;

function partitionById(id) {
  if (!/^\d+$/.test(String(id))) return undefined;
  return partitions[Number(id)];
}

function appendEvent(p, body, extra) {
  const seq = p.events.length;
  const ev = {
    seq,
    offset: String(seq * OFFSET_FACTOR),
    enqueued: Date.now(),
    body,
    partitionKey: extra && extra.partitionKey,
    properties: extra && extra.properties,
    applicationProperties: extra && extra.applicationProperties,
  };
  p.events.push(ev);
  return ev;
}

function log(...args) {
  if (process.env.EVENTHUBS_EMULATOR_DEBUG) console.error('[emulator]', ...args);
}

// ---------- consumers (client receivers) ----------

// consumer = { link, partition, group, epoch (number|undefined), next (index), closed }
function pump(consumer) {
  const p = consumer.partition;
  while (!consumer.closed && consumer.next < p.events.length && consumer.link.sendable()) {
    const ev = p.events[consumer.next++];
    const annotations = {
      'x-opt-sequence-number': types.wrap_long(ev.seq),
      'x-opt-offset': ev.offset,
      'x-opt-enqueued-time': types.wrap_timestamp(ev.enqueued),
    };
    if (ev.partitionKey !== undefined && ev.partitionKey !== null) annotations['x-opt-partition-key'] = String(ev.partitionKey);
    const msg = { message_annotations: annotations, body: amqpMessage.data_section(ev.body) };
    if (ev.properties) {
      for (const k of ['message_id', 'content_type', 'correlation_id', 'subject']) {
        if (ev.properties[k] !== undefined) msg[k] = ev.properties[k];
      }
    }
    if (ev.applicationProperties) msg.application_properties = ev.applicationProperties;
    consumer.link.send(msg);
  }
}

function pumpPartition(p) {
  for (const c of p.consumers) pump(c);
}

function dropConsumer(consumer) {
  consumer.closed = true;
  consumer.partition.consumers.delete(consumer);
}

const selectorRe = /amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'/;

function filterValue(source) {
  const filter = source && source.filter;
  if (!filter) return undefined;
  for (const k of Object.keys(filter)) {
    let v = filter[k];
    if (v && typeof v === 'object' && v.value !== undefined) v = v.value;
    if (typeof v === 'string') return v;
  }
  return undefined;
}

// startIndex returns the index of the first event a link with this selector receives.
function startIndex(p, selector) {
  if (!selector) return p.events.length; // Event Hubs' default is the end of the stream
  const m = selectorRe.exec(selector);
  if (!m) throw new Error(`unsupported selector ${selector}`);
  const [, field, op, raw] = m;
  const inclusive = op === '>=';
  if (field === 'offset') {
    if (raw === '@latest') return p.events.length;
    if (raw === '-1') return 0;
    const o = Number(raw);
    const i = p.events.findIndex((e) => (inclusive ? Number(e.offset) >= o : Number(e.offset) > o));
    return i < 0 ? p.events.length : i;
  }
  const n = Number(raw);
  const key = field === 'sequence-number' ? 'seq' : 'enqueued';
  const i = p.events.findIndex((e) => (inclusive ? e[key] >= n : e[key] > n));
  return i < 0 ? p.events.length : i;
}

function refuseLink(link, condition, description) {
  // A reply attach with neither source nor target tells the client it was refused.
  link.local.attach.source = null;
  link.local.attach.target = null;
  link.close({ condition, description });
}

function mirrorTermini(link) {
  const remote = link.remote.attach;
  if (remote.source) {
    const src = { address: remote.source.address };
    if (remote.source.filter) src.filter = remote.source.filter;
    link.set_source(src);
  }
  if (remote.target) link.set_target({ address: remote.target.address });
  // Answer with the settlement modes the client asked for; go-amqp refuses others.
  if (remote.snd_settle_mode !== undefined) link.local.attach.snd_settle_mode = remote.snd_settle_mode;
  if (remote.rcv_settle_mode !== undefined) link.local.attach.rcv_settle_mode = remote.rcv_settle_mode;
}

function toNumber(v) {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v)) return Number(v.readBigInt64BE(0));
  if (typeof v === 'object' && v.value !== undefined) return toNumber(v.value);
  return Number(v);
}

function knownConsumerGroup(name) {
  const lower = name.toLowerCase();
  return opts.consumerGroups.some((g) => g.toLowerCase() === lower);
}

// entityURI names an entity the way Event Hubs' not-found errors do.
function entityURI(connection, path) {
  const open = connection && connection.remote && connection.remote.open;
  const host = (open && open.hostname) || `${opts.host}:${amqpServer.address().port}`;
  return `sb://${host}/${path}`;
}

function openConsumer(link) {
  const remote = link.remote.attach;
  const address = (remote.source && remote.source.address) || '';
  const m = /^([^/]+)\/ConsumerGroups\/([^/]+)\/Partitions\/([^/]+)$/i.exec(address);
  if (!m || m[1] !== opts.hub || !partitionById(m[3])) {
    refuseLink(link, 'amqp:not-found', `The messaging entity '${entityURI(link.connection, address)}' could not be found.`);
    return;
  }
  if (!knownConsumerGroup(m[2])) {
    const group = `${m[1]}/consumergroups/${m[2].toLowerCase()}`;
    refuseLink(link, 'amqp:not-found', `The messaging entity '${entityURI(link.connection, group)}' could not be found.`);
    return;
  }
  const p = partitionById(m[3]);
  const group = m[2];
  const props = remote.properties || {};
  const epoch = toNumber(props['com.microsoft:epoch']);
  let selector;
  let start;
  try {
    selector = filterValue(remote.source);
    start = startIndex(p, selector);
  } catch (err) {
    refuseLink(link, 'amqp:invalid-field', err.message);
    return;
  }
  // Epoch (owner level) rules: a newer owner with an equal or higher epoch
  // takes the partition from older ones; a lower or missing epoch is refused
  // while an epoch owner holds it.
  for (const c of [...p.consumers]) {
    if (c.group.toLowerCase() !== group.toLowerCase()) continue;
    if (c.epoch === undefined && epoch === undefined) continue;
    if (epoch !== undefined && (c.epoch === undefined || epoch >= c.epoch)) {
      dropConsumer(c);
      c.link.close({
        condition: 'amqp:link:stolen',
        description: `New receiver with higher or equal epoch of '${epoch}' is created hence current receiver with epoch '${c.epoch}' is getting disconnected.`,
      });
    } else {
      refuseLink(link, 'amqp:link:stolen', `Receiver with epoch '${c.epoch}' already exists on this partition.`);
      return;
    }
  }
  mirrorTermini(link);
  link.local.attach.snd_settle_mode = 1; // events go out pre-settled
  link.local.attach.properties = remote.properties;
  const consumer = { link, partition: p, group, epoch, next: start, closed: false };
  link.consumer = consumer;
  p.consumers.add(consumer);
  log('consumer open', address, 'selector', selector, 'start', start, 'epoch', epoch);
}

// ---------- request/response ($cbs, $management) ----------

function replyLinks(connection) {
  if (!connection.replyLinks) connection.replyLinks = new Map();
  return connection.replyLinks;
}

function queueReply(connection, replyTo, msg) {
  const entry = replyLinks(connection).get(replyTo);
  if (!entry) {
    // The reply link may not be attached yet: keep the reply until it is.
    if (!connection.pendingReplies) connection.pendingReplies = new Map();
    const list = connection.pendingReplies.get(replyTo) || [];
    list.push(msg);
    connection.pendingReplies.set(replyTo, list);
    return;
  }
  entry.queue.push(msg);
  flushReplies(entry);
}

function flushReplies(entry) {
  while (entry.queue.length && entry.link.sendable()) entry.link.send(entry.queue.shift());
}

function reply(status, description, body, request) {
  const msg = {
    correlation_id: request.message_id,
    application_properties: {
      'status-code': types.wrap_int(status),
      'status-description': description,
    },
  };
  if (body !== undefined) msg.body = body;
  return msg;
}

// validSignature checks a token "SharedAccessSignature sr=..&sig=..&se=..&skn=..":
// sig is the base64 HMAC-SHA256, keyed with the key's text, of sr + "\n" + se.
function validSignature(token, key) {
  if (typeof token !== 'string' || !token.startsWith('SharedAccessSignature ')) return false;
  const fields = {};
  for (const kv of token.slice('SharedAccessSignature '.length).split('&')) {
    const i = kv.indexOf('=');
    if (i > 0) fields[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (!fields.sr || !fields.sig || !fields.se) return false;
  const want = crypto.createHmac('sha256', key).update(`${fields.sr}\n${fields.se}`).digest();
  const got = Buffer.from(decodeURIComponent(fields.sig), 'base64');
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

function handleCbs(request) {
  const ap = request.application_properties || {};
  if (ap.operation !== 'put-token') return reply(400, `unsupported operation ${ap.operation}`, undefined, request);
  if (opts.sasKey !== undefined && !validSignature(request.body, opts.sasKey)) {
    return reply(401, 'InvalidSignature: The token has an invalid signature.', undefined, request);
  }
  return reply(202, 'Accepted', undefined, request);
}

function handleManagement(request) {
  const ap = request.application_properties || {};
  if (ap.operation !== 'READ') return reply(400, `unsupported operation ${ap.operation}`, undefined, request);
  if (ap.name !== opts.hub) return reply(404, `The messaging entity '${ap.name}' could not be found.`, undefined, request);
  if (ap.type === 'com.microsoft:eventhub') {
    return reply(200, 'OK', {
      name: opts.hub,
      created_at: types.wrap_timestamp(createdAt.getTime()),
      partition_ids: types.wrap_array(partitions.map((p) => p.id), 0xa1),
      georeplication_factor: types.wrap_int(0),
    }, request);
  }
  if (ap.type === 'com.microsoft:partition') {
    const p = partitionById(ap.partition);
    if (!p) return reply(404, `partition '${ap.partition}' not found`, undefined, request);
    const last = p.events[p.events.length - 1];
    return reply(200, 'OK', {
      name: opts.hub,
      partition: p.id,
      begin_sequence_number: types.wrap_long(0),
      last_enqueued_sequence_number: types.wrap_long(last ? last.seq : -1),
      last_enqueued_offset: last ? last.offset : '-1',
      last_enqueued_time_utc: types.wrap_timestamp(last ? last.enqueued : createdAt.getTime()),
      is_partition_empty: p.events.length === 0,
    }, request);
  }
  return reply(400, `unsupported type ${ap.type}`, undefined, request);
}

// ---------- producers (client senders) ----------

function decodeBatch(raw) {
  const envelope = amqpMessage.decode(raw);
  const body = envelope.body;
  let parts = [];
  if (body && body.content !== undefined) parts = body.multiple ? body.content : [body.content];
  const key = envelope.message_annotations && envelope.message_annotations['x-opt-partition-key'];
  return parts.map((buf) => ({ msg: amqpMessage.decode(buf), key }));
}

function bodyBytes(msg) {
  const b = msg.body;
  if (b === undefined || b === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(b)) return b;
  if (b.content !== undefined) {
    const parts = b.multiple ? b.content : [b.content];
    return Buffer.concat(parts.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(String(x)))));
  }
  return Buffer.from(typeof b === 'string' ? b : JSON.stringify(b));
}

function handlePublish(link, context) {
  const target = (link.remote.attach.target && link.remote.attach.target.address) || '';
  let p;
  const m = /^([^/]+)\/Partitions\/([^/]+)$/i.exec(target);
  let items;
  if (context.format === BATCH_FORMAT) {
    items = decodeBatch(context.message);
  } else if (context.format === undefined || context.format === 0) {
    const msg = context.message;
    items = [{ msg, key: msg.message_annotations && msg.message_annotations['x-opt-partition-key'] }];
  } else {
    context.delivery.reject({ condition: 'amqp:not-implemented', description: `message format ${context.format}` });
    return;
  }
  if (m) {
    p = partitionById(m[2]);
  } else {
    // A whole batch goes into one partition, as Event Hubs does.
    p = partitions[roundRobin++ % partitions.length];
  }
  for (const { msg, key } of items) {
    appendEvent(p, bodyBytes(msg), {
      partitionKey: key,
      properties: { message_id: msg.message_id, content_type: msg.content_type, correlation_id: msg.correlation_id, subject: msg.subject },
      applicationProperties: msg.application_properties,
    });
  }
  pumpPartition(p);
}

// ---------- AMQP wiring ----------

const container = rhea.create_container({ id: 'eventhubs-emulator' });
const sockets = new Set();
let amqpServer;

container.on('sender_open', (context) => {
  // The client attached a receiver: we send on this link.
  const link = context.sender;
  const remote = link.remote.attach;
  const sourceAddr = remote.source && remote.source.address;
  if (sourceAddr === '$cbs' || sourceAddr === '$management') {
    mirrorTermini(link);
    const replyTo = remote.target && remote.target.address;
    const entry = { link, queue: [] };
    link.replyEntry = entry;
    const conn = context.connection;
    replyLinks(conn).set(replyTo, entry);
    const pending = conn.pendingReplies && conn.pendingReplies.get(replyTo);
    if (pending) {
      entry.queue.push(...pending);
      conn.pendingReplies.delete(replyTo);
    }
    return;
  }
  openConsumer(link);
});

container.on('sendable', (context) => {
  const link = context.sender;
  if (link.consumer) pump(link.consumer);
  else if (link.replyEntry) flushReplies(link.replyEntry);
});

container.on('receiver_open', (context) => {
  // The client attached a sender: $cbs/$management requests or events.
  const link = context.receiver;
  const remote = link.remote.attach;
  const target = (remote.target && remote.target.address) || '';
  if (target === '$cbs' || target === '$management') {
    mirrorTermini(link);
    link.kind = target;
    return;
  }
  const m = /^([^/]+)(\/Partitions\/([^/]+))?$/i.exec(target);
  if (!m || m[1] !== opts.hub || (m[3] !== undefined && !partitionById(m[3]))) {
    refuseLink(link, 'amqp:not-found', `The messaging entity '${target}' could not be found.`);
    return;
  }
  mirrorTermini(link);
  link.local.attach.max_message_size = MAX_MESSAGE_SIZE;
  link.kind = 'publish';
});

container.on('message', (context) => {
  const link = context.receiver;
  if (link.kind === '$cbs' || link.kind === '$management') {
    const request = context.message;
    const response = link.kind === '$cbs' ? handleCbs(request) : handleManagement(request);
    queueReply(context.connection, request.reply_to, response);
    return;
  }
  if (link.kind === 'publish') {
    handlePublish(link, context);
  }
});

function forgetLink(link) {
  if (!link) return;
  if (link.consumer) dropConsumer(link.consumer);
  if (link.replyEntry) {
    const map = link.connection && link.connection.replyLinks;
    if (map) {
      for (const [k, v] of map) if (v === link.replyEntry) map.delete(k);
    }
  }
}

container.on('sender_close', (context) => forgetLink(context.sender));
container.on('sender_error', (context) => forgetLink(context.sender));

function forgetConnection(connection) {
  for (const p of partitions) {
    for (const c of [...p.consumers]) {
      if (c.link.connection === connection) dropConsumer(c);
    }
  }
}

container.on('disconnected', (context) => forgetConnection(context.connection));
container.on('connection_close', (context) => forgetConnection(context.connection));
// Link and connection errors are the client's business; keep serving.
container.on('error', (err) => log('error', err && err.message));
container.on('connection_error', () => {});
container.on('session_error', () => {});
container.on('receiver_error', () => {});

function listenAmqp(port) {
  return new Promise((resolve, reject) => {
    const server = container.listen({ host: opts.host, port });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  });
}

function dropConnections() {
  const n = sockets.size;
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const p of partitions) p.consumers.clear();
  return n;
}

let refusing = null;

async function refuseFor(seconds) {
  const port = amqpServer.address().port;
  let dropped;
  if (refusing) {
    clearTimeout(refusing.timer);
    dropped = dropConnections();
  } else {
    // close() waits for open connections, so drop them after asking.
    const closed = new Promise((resolve) => amqpServer.close(() => resolve()));
    dropped = dropConnections();
    await closed;
  }
  await new Promise((resolve) => {
    refusing = {
      timer: setTimeout(async () => {
        for (let attempt = 0; ; attempt++) {
          try {
            amqpServer = await listenAmqp(port);
            break;
          } catch (err) {
            if (attempt > 50) throw err;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        refusing = null;
        log('listening again on', port);
      }, seconds * 1000),
    };
    resolve();
  });
  return dropped;
}

// ---------- control HTTP ----------

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJSON(res, status, obj) {
  const data = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length });
  res.end(data);
}

function partitionStats(p) {
  const last = p.events[p.events.length - 1];
  return {
    id: p.id,
    count: p.events.length,
    last_sequence_number: last ? last.seq : -1,
    last_offset: last ? last.offset : '-1',
    consumers: [...p.consumers].map((c) => ({ group: c.group, epoch: c.epoch === undefined ? null : c.epoch, next_sequence_number: c.next })),
  };
}

async function handleControl(req, res) {
  const url = new URL(req.url, 'http://control');
  try {
    if (req.method === 'GET' && url.pathname === '/healthz') return sendJSON(res, 200, { ok: true });
    if (req.method === 'GET' && url.pathname === '/partitions') return sendJSON(res, 200, { hub: opts.hub, partitions: partitions.map(partitionStats) });
    if (req.method === 'POST' && (url.pathname === '/publish' || url.pathname === '/publish-batch')) {
      const p = partitionById(url.searchParams.get('partition'));
      if (!p) return sendJSON(res, 404, { error: `unknown partition ${url.searchParams.get('partition')}` });
      const raw = await readBody(req);
      const bodies = url.pathname === '/publish' ? [raw] : JSON.parse(raw.toString('utf8')).bodies.map((b) => Buffer.from(b, 'base64'));
      const out = bodies.map((b) => {
        const ev = appendEvent(p, b);
        return { sequence_number: ev.seq, offset: ev.offset };
      });
      pumpPartition(p);
      return sendJSON(res, 200, { partition: p.id, events: out });
    }
    if (req.method === 'POST' && url.pathname === '/fault/drop-connections') {
      return sendJSON(res, 200, { dropped: dropConnections() });
    }
    if (req.method === 'POST' && url.pathname === '/fault/refuse') {
      const seconds = Number(url.searchParams.get('seconds'));
      if (!(seconds > 0)) return sendJSON(res, 400, { error: 'seconds must be positive' });
      return sendJSON(res, 200, { dropped: await refuseFor(seconds), seconds });
    }
    return sendJSON(res, 404, { error: 'not found' });
  } catch (err) {
    return sendJSON(res, 500, { error: String(err && err.message) });
  }
}

async function main() {
  amqpServer = await listenAmqp(opts.port);
  const control = http.createServer((req, res) => { handleControl(req, res); });
  await new Promise((resolve, reject) => {
    control.once('error', reject);
    control.listen(opts.controlPort, opts.host, resolve);
  });
  process.stdout.write(JSON.stringify({
    ready: true,
    amqp_port: amqpServer.address().port,
    control_port: control.address().port,
    hub: opts.hub,
    partitions: partitions.length,
    consumer_groups: opts.consumerGroups,
  }) + '\n');
}

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
