'use strict';
// The recorded Node.js function: a gRPC client (@grpc/grpc-js) with HTTP/2
// keepalive, created once per execution environment as real functions do,
// calling the echo server through the delaying proxy.
//
// Event: { calls: N, hold: "none" | "release" }
//   hold "release": after its calls, wait until the recorder releases the
//   invocation (GET /thawtrace/hold/<id>): the recorder does so right after a
//   keepalive ping was sent, so the freeze catches the ping in flight, or after
//   it paused the server long enough for a genuine timeout.

const http = require('node:http');
const grpc = require(process.env.THAWTRACE_GRPC_JS || '@grpc/grpc-js');

const keepalive = process.env.THAWTRACE_KEEPALIVE !== '0';
const options = keepalive
  ? {
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 1000,
      'grpc.keepalive_permit_without_calls': 1,
    }
  : {};
const target = process.env.THAWTRACE_TARGET;
const client = new grpc.Client(target, grpc.credentials.createInsecure(), options);
const identity = (b) => b;

function echo(i) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + 8000);
    client.makeUnaryRequest('/thawtrace.Echo/Echo', identity, identity, Buffer.from(`call ${i}`), { deadline }, (err) => {
      if (err) console.error(`echo call ${i} failed: ${err.code} ${err.message}`);
      else console.log(`echo call ${i} ok`);
      resolve();
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
  console.log(`handling order batch ${JSON.stringify(event)}`);
  for (let i = 0; i < (event.calls || 0); i++) await echo(i);
  if (event.hold === 'release') await hold(context.awsRequestId);
  return { ok: true };
};
