// Subscription fan-out load on `lighthouse serve` (bench/serve_load.sh):
// SUBSCRIBERS WebSocket clients follow the end of the store while this
// process appends RATE events/s over HTTP (batches every 10 ms) for SECONDS;
// each client measures the delivery latency of every event (receive time
// minus the event's timestamp_ns, one clock: loopback). Optionally one more
// client subscribes and then stops reading (a stalled subscriber).
// Usage: node fanout.mjs HOST:PORT SUBSCRIBERS RATE SECONDS [--stalled]
// Prints one JSON line: {subscribers, rate, sent, delivered, lost, p50_ms, p99_ms, max_ms}.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

const [address, subscribersArg, rateArg, secondsArg, ...flags] = process.argv.slice(2);
const subscribers = Number(subscribersArg), rate = Number(rateArg), seconds = Number(secondsArg);
const stalled = flags.includes('--stalled');
const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3)) * 1000n;
const latencies = [];
let delivered = 0;
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const watchdog = setTimeout(() => { console.error('timed out'); process.exit(2); }, (seconds + 60) * 1000);

function subscribe(stall) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${address}/subscribe`, { perMessageDeflate: false });
    // Only the appended type: the store's own `$health` events aside.
    ws.on('open', () => ws.send(JSON.stringify({ start: 'end', filter: { types: ['Tick'] } })));
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString('utf8');
      if (text.startsWith('{"kind":"caught_up"')) {
        if (stall) ws._socket.pause();  // reads nothing more: the server's queue for it must stay bounded
        resolve(ws);
        return;
      }
      if (!text.startsWith('{"kind":"event"')) return;
      const at = nowNs();
      const i = text.indexOf('"timestamp_ns":');
      const ts = BigInt(text.slice(i + 15, text.indexOf(',', i)));
      latencies.push(Number(at - ts) / 1e6);
      ++delivered;
    });
  });
}

function post(body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method: 'POST', path: '/events', agent,
                               headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const clients = [];
for (let i = 0; i < subscribers; ++i) clients.push(await subscribe(false));
if (stalled) clients.push(await subscribe(true));
const event = JSON.stringify({ type: 'Tick', aggregate: 'fanout', data: { payload: 'x'.repeat(100) } });
const perTick = Math.max(1, Math.round(rate / 100));
const body = `[${Array(perTick).fill(event).join(',')}]`;
let sent = 0;
const start = performance.now();
const pending = [];
for (let tick = 0; performance.now() - start < seconds * 1000; ++tick) {
  pending.push(post(body).then(() => { sent += perTick; }));
  const next = start + (tick + 1) * 10;
  await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
}
await Promise.all(pending);
// Let the last events arrive.
const expected = () => sent * subscribers;
const drainUntil = performance.now() + 10000;
while (delivered < expected() && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
latencies.sort((a, b) => a - b);
const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : null);
console.log(JSON.stringify({ subscribers, rate, sent, delivered, lost: expected() - delivered,
                             p50_ms: q(0.5), p99_ms: q(0.99), max_ms: q(1) }));
clearTimeout(watchdog);
for (const ws of clients) ws.terminate();
agent.destroy();
