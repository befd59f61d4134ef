// A subscriber on `lighthouse serve` written against Node's `ws` package:
// the second, independent WebSocket client of tests/tool/test_subscribe.py
// (bench/serve_load.sh drives the server with fanout.mjs, beside it).
// Usage: node subscriber.mjs URL FIRST_MESSAGE_JSON
// Reads until `caught_up`, acknowledges the last event (when the first
// message names a consumer, waits for its `checkpoint`),
// and prints {"events": [...ids], "caught_up": pos, "checkpoint": pos}.
import WebSocket from 'ws';

const [url, first] = process.argv.slice(2);
const request = JSON.parse(first);
const result = { events: [], caught_up: null, checkpoint: null };
const ws = new WebSocket(url);
const timer = setTimeout(() => { console.error('timed out'); process.exit(2); }, 20000);

function done() {
  clearTimeout(timer);
  ws.close(1000);
  console.log(JSON.stringify(result));
}

ws.on('open', () => ws.send(JSON.stringify(request)));
ws.on('message', (data, isBinary) => {
  if (isBinary) { console.error('a binary frame'); process.exit(3); }
  const m = JSON.parse(data.toString('utf8'));
  if (m.kind === 'event') {
    result.events.push(m.event.id);
  } else if (m.kind === 'caught_up') {
    result.caught_up = m.position;
    if (request.consumer && result.events.length > 0) {
      ws.send(JSON.stringify({ ack: result.events[result.events.length - 1] }));
    } else {
      done();
    }
  } else if (m.kind === 'checkpoint') {
    result.checkpoint = m.position;
    done();
  } else {
    console.error('unexpected message', JSON.stringify(m));
    process.exit(4);
  }
});
ws.on('error', (e) => { console.error(String(e)); process.exit(5); });
