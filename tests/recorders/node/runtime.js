'use strict';
// A Lambda-like Node.js runtime client: the same loop and console patch the
// AWS Node.js runtime uses, talking to the Runtime API emulator of
// tests/harness/lambda_sim.py.
//
// - GET /2018-06-01/runtime/invocation/next, call the handler, POST the
//   response; the emulator freezes this process (SIGSTOP) between invocations.
// - console.* lines get the runtime's prefix:
//     text: `<ISO ts>\t<requestId>\t<LEVEL>\t<message>` ('\n' -> '\r', one line per call)
//     JSON (AWS_LAMBDA_LOG_FORMAT=JSON): {"timestamp","level","requestId","message"}
// - The request ID on a line: Node <= 22 runtimes stamp the ID of the invocation
//   current when the line is printed (a process global); Node 24 keeps it per
//   async context (AsyncLocalStorage), so a timer armed during invocation A and
//   fired later prints A's ID, or '-' when armed outside any invocation.
//   THAWTRACE_REQUEST_ID_MODE=global|async selects which (real AsyncLocalStorage,
//   not a simulation of it).
// - Multi-concurrency (Lambda Managed Instances: AWS_LAMBDA_MAX_CONCURRENCY
//   set), as aws-lambda-ric 4.x does it (Runtime.processMultiConcurrent,
//   InvokeStoreMulti, formatJsonMessage): one loop takes each invocation from
//   /next and dispatches it with setImmediate inside its own AsyncLocalStorage
//   context, without waiting for it to finish, so invocations overlap; the
//   next /next goes out at once. Lines are always JSON,
//   {"timestamp","level","requestId","message"} in that key order, requestId
//   from the line's async context or "-" when it has none. The RIC also
//   spreads invocations over AWS_LAMBDA_NODEJS_WORKER_COUNT worker threads
//   (8 per CPU); this lookalike is one worker (a count of 1), so one module
//   instance and one gRPC client per process.

const http = require('node:http');
const util = require('node:util');
const { AsyncLocalStorage } = require('node:async_hooks');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const jsonFormat = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
const multi = process.env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined;
const asyncIds = multi || process.env.THAWTRACE_REQUEST_ID_MODE === 'async';
const als = new AsyncLocalStorage();
let currentRequestId = undefined;

function requestIdNow() {
  if (asyncIds) {
    const store = als.getStore();
    return store ? store.requestId : undefined;
  }
  return currentRequestId;
}

// aws-lambda-ric 4.x formatJsonMessage: timestamp, level, requestId (and
// tenantId when set), then message; a lone argument is kept as it is (an
// object stays an object), several are util.format-ed, and the first Error
// among them adds errorType, errorMessage and stackTrace.
function formatJsonMessage(timestamp, requestId, level, message, ...params) {
  const result = { timestamp, level, requestId };
  if (params.length === 0) {
    result.message = message;
    try {
      return JSON.stringify(result);
    } catch {
      result.message = util.format(result.message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(message, ...params);
  for (const param of params) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

function patchConsoleMulti() {
  const levels = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', fatal: 'FATAL' };
  for (const [method, level] of Object.entries(levels)) {
    console[method] = (message, ...params) => {
      const store = als.getStore();
      const rid = store ? store.requestId : '-';
      const line = formatJsonMessage(new Date().toISOString(), rid, level, message, ...params).replace(/\n/g, '\r');
      process.stdout.write(line + '\n');
    };
  }
  console.log = console.info;
}

function patchConsole() {
  if (multi) return patchConsoleMulti();
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE' };
  for (const [method, level] of Object.entries(levels)) {
    console[method] = (...args) => {
      const message = util.format(...args);
      const rid = requestIdNow();
      let line;
      if (jsonFormat) {
        const rec = { timestamp: new Date().toISOString(), level, message };
        if (rid !== undefined) rec.requestId = rid;
        line = JSON.stringify(rec);
      } else {
        line = `${new Date().toISOString()}\t${rid === undefined ? (asyncIds ? '-' : 'undefined') : rid}\t${level}\t${message.replace(/\n/g, '\r')}`;
      }
      process.stdout.write(line + '\n');
    };
  }
}

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const [host, port] = api.split(':');
    const req = http.request({ host, port, method, path, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function processInvoke(handler, requestId, event, deadline) {
  let result;
  let failed = false;
  try {
    result = await handler(event, { awsRequestId: requestId, getRemainingTimeInMillis: () => deadline - Date.now() });
  } catch (err) {
    failed = true;
    result = { errorType: err.name, errorMessage: String(err.message) };
    console.error('Invoke Error', err);
  }
  const path = `/2018-06-01/runtime/invocation/${requestId}/${failed ? 'error' : 'response'}`;
  await request('POST', path, JSON.stringify(result === undefined ? null : result));
}

async function mainMulti(handler) {
  for (;;) {
    const next = await request('GET', '/2018-06-01/runtime/invocation/next');
    const requestId = next.headers['lambda-runtime-aws-request-id'];
    if (!requestId) break; // the emulator is shutting down
    const event = JSON.parse(next.body || '{}');
    const deadline = Number(next.headers['lambda-runtime-deadline-ms'] || 0);
    setImmediate(() => {
      als.run({ requestId }, () => processInvoke(handler, requestId, event, deadline)).catch((err) => {
        process.stdout.write(`runtime failed: ${err && err.stack}\n`);
      });
    });
  }
  process.exit(0);
}

async function main() {
  patchConsole();
  const handler = require(process.env.THAWTRACE_HANDLER || './function.js').handler;
  if (multi) return mainMulti(handler);
  for (;;) {
    const next = await request('GET', '/2018-06-01/runtime/invocation/next');
    const requestId = next.headers['lambda-runtime-aws-request-id'];
    if (!requestId) break; // the emulator is shutting down
    currentRequestId = requestId;
    const event = JSON.parse(next.body || '{}');
    let result;
    let failed = false;
    try {
      result = await als.run({ requestId }, () => handler(event, { awsRequestId: requestId }));
    } catch (err) {
      failed = true;
      result = { errorType: err.name, errorMessage: String(err.message) };
      console.error(`Invoke Error \t${JSON.stringify(result)}`);
    }
    const path = `/2018-06-01/runtime/invocation/${requestId}/${failed ? 'error' : 'response'}`;
    await request('POST', path, JSON.stringify(result === undefined ? null : result));
  }
  process.exit(0);
}

main().catch((err) => {
  process.stdout.write(`runtime failed: ${err && err.stack}\n`);
  process.exit(1);
});
