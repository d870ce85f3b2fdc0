'use strict';
// The recorded Node.js function of the execution-mode recordings
// (tests/recorders/record_modes.py): a real @grpc/grpc-js client with HTTP/2
// keepalive 5000/1000 ms, created once per process at module load (outside
// any invocation), calling the echo server through the recorder's proxy.
//
// Event: {order, calls: N, slow_ms?, deadline_ms?, hold?: "release", spin_ms?: M}
//   calls      N unary calls, one after the other (slow_ms: the server
//              answers each that late)
//   hold       after its calls, wait until the recorder releases the
//              invocation (GET /thawtrace/hold/<id>)
//   spin_ms    an event-loop stall: wait until the recorder releases the
//              invocation (it does so right after the proxy saw a client
//              PING), start one call, then spin the CPU synchronously for M
//              ms, then wait for that call
//
// The response reports what the harness needs for its ground truth and
// nothing the log lines are read for: each call's outcome and wall-clock
// start and end, the stall's start and end, the process id, and the exact
// messages the handler logged (each names the event's `order`, so the
// recorder can tell which invocation wrote a line without trusting the
// line's requestId).

const http = require('node:http');
const grpc = require('@grpc/grpc-js');

const options = {
  'grpc.keepalive_time_ms': 5000,
  'grpc.keepalive_timeout_ms': 1000,
  'grpc.keepalive_permit_without_calls': 1,
};
const client = new grpc.Client(process.env.THAWTRACE_TARGET, grpc.credentials.createInsecure(), options);
const identity = (b) => b;

function echo(i, payload, deadlineMs, log) {
  return new Promise((resolve) => {
    const start = Date.now();
    const deadline = new Date(start + deadlineMs);
    client.makeUnaryRequest('/thawtrace.Echo/Echo', identity, identity, Buffer.from(payload), { deadline }, (err) => {
      const end = Date.now();
      if (err) log('error', `echo call ${i} failed: ${err.code} ${err.message}`);
      else log('info', `echo call ${i} ok`);
      resolve({ i, ok: !err, code: err ? err.code : 0, details: err ? err.details : '', start_ms: start, end_ms: end });
    });
  });
}

function hold(requestId) {
  return new Promise((resolve) => {
    const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
    http.get({ host, port, path: `/thawtrace/hold/${requestId}`, agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', resolve);
  });
}

exports.handler = async (event, context) => {
  const order = event.order || '?';
  const logged = [];
  const log = (level, text) => {
    const message = `${text} (order ${order})`;
    logged.push(message);
    if (level === 'error') console.error(message);
    else console.log(message);
  };
  log('info', `handling order batch of ${event.calls || 0} calls`);
  const payload = event.slow_ms ? `sleep:${event.slow_ms}` : 'echo';
  const deadlineMs = event.deadline_ms || 8000;
  const calls = [];
  let spin = null;
  if (event.spin_ms) {
    await hold(context.awsRequestId);
    const inFlight = echo(0, payload, deadlineMs, log);
    const t0 = Date.now();
    while (Date.now() - t0 < event.spin_ms) {
      // a synchronous stall: no timer, no socket read runs meanwhile
    }
    spin = [t0, Date.now()];
    log('info', `crunched numbers for ${spin[1] - spin[0]} ms`);
    calls.push(await inFlight);
  } else {
    for (let i = 0; i < (event.calls || 0); i++) calls.push(await echo(i, payload, deadlineMs, log));
    if (event.hold === 'release') await hold(context.awsRequestId);
  }
  return { ok: true, pid: process.pid, calls, spin, logged };
};
