'use strict';
// The recorded Node.js function for the neighbouring failures (NAT idle
// resets, connect stalls, duplicate deliveries): a @grpc/grpc-js client made
// once per execution environment, without HTTP/2 keepalive (the default), so
// only the network in between decides whether an idle connection survives.
//
// Event: { calls: N, deadline_ms?: ms, no_deadline?: true, pause_ms?: ms,
//          fail?: "message", ...anything }
//   The event is logged first, as functions that log their input do. Each
//   call has a deadline (`deadline_ms`, 8 s by default) unless `no_deadline`:
//   then it waits as long as the call takes (for a dead connection: until
//   Lambda's timeout). `pause_ms` waits between calls inside the
//   invocation, on the same connection. `fail` makes the invocation throw
//   after its calls (an async invocation that the platform retries).

const grpc = require('@grpc/grpc-js');

const client = new grpc.Client(process.env.THAWTRACE_TARGET, grpc.credentials.createInsecure(), {});
const identity = (b) => b;

function echo(i, deadlineMs) {
  return new Promise((resolve) => {
    const options = deadlineMs ? { deadline: new Date(Date.now() + deadlineMs) } : {};
    client.makeUnaryRequest('/thawtrace.Echo/Echo', identity, identity, Buffer.from(`call ${i}`), options, (err) => {
      if (err) console.error(`echo call ${i} failed: ${err.code} ${err.message}`);
      else console.log(`echo call ${i} ok`);
      resolve();
    });
  });
}

exports.handler = async (event) => {
  console.log(`event ${JSON.stringify(event)}`);
  const deadlineMs = event.no_deadline ? 0 : event.deadline_ms || 8000;
  for (let i = 0; i < (event.calls || 0); i++) {
    if (i > 0 && event.pause_ms) await new Promise((resolve) => setTimeout(resolve, event.pause_ms));
    await echo(i, deadlineMs);
  }
  if (event.fail) throw new Error(event.fail);
  return { ok: true };
};
