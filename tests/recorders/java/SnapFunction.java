// The recorded Java function of the execution-mode recordings
// (tests/recorders/record_modes.py): the grpc-java (Netty) client of
// Function.java (the same channel, keepalive and logging), made the way a
// SnapStart function makes it, in the handler class's static init, and
// restored from a snapshot. Its main is the runtime client: it runs the
// init, and when AWS_LAMBDA_INITIALIZATION_TYPE is snap-start, as the Lambda
// Java runtime does, the CRaC hooks around the snapshot
// (Core.getGlobalContext().beforeCheckpoint, GET /runtime/restore/next,
// afterRestore), then the invocations. org.crac here is a lookalike of the
// CRaC API's shape (only Debian's packages are reachable; see
// tests/recorders/MODES.md).
//
// Environment:
//   THAWTRACE_KEEPALIVE=0           no keepalive (Function.channel)
//   GRPC_CONNECT_AT_INIT=1          one call in the init, so a connection
//                                   exists before the snapshot; otherwise the
//                                   channel connects on the first
//                                   invocation's call
//   THAWTRACE_RECREATE_ON_RESTORE=1 a CRaC Resource whose afterRestore
//                                   re-creates the channel (a new
//                                   ManagedChannel: connections of its own)
//                                   and shuts the old one down
//
// Event: {order, calls: N, deadline_ms?}; the response lists each call's
// outcome (gRPC status code and description) with its wall-clock start and
// end, the process id and the messages the handler logged, as
// modes_function.py's does.

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.crac.Context;
import org.crac.Core;
import org.crac.Resource;

public final class SnapFunction {
    static volatile ManagedChannel channel;
    static String initCall = "null";

    /** Re-creates the channel after a restore: the fix thawtrace advises. */
    static final Resource RECREATE = new Resource() {
        @Override
        public void beforeCheckpoint(Context<? extends Resource> context) {}

        @Override
        public void afterRestore(Context<? extends Resource> context) throws Exception {
            ManagedChannel old = channel;
            channel = Function.channel();
            old.shutdownNow();
            Function.log("INFO", "after restore: gRPC channel re-created");
        }
    };

    /** The handler class's static init. */
    static void init() throws Exception {
        channel = Function.channel();
        if ("1".equals(System.getenv("GRPC_CONNECT_AT_INIT"))) {
            initCall = call(0, 5000, null, "init");
        }
        if ("1".equals(System.getenv("THAWTRACE_RECREATE_ON_RESTORE"))) {
            Core.getGlobalContext().register(RECREATE);
        }
    }

    static String call(int i, int deadlineMs, List<String> logged, String order) {
        long start = System.currentTimeMillis();
        boolean ok = true;
        String code = "OK", details = "";
        try {
            ClientCalls.blockingUnaryCall(channel, Function.ECHO,
                    CallOptions.DEFAULT.withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS),
                    "echo".getBytes(StandardCharsets.UTF_8));
        } catch (StatusRuntimeException e) {
            ok = false;
            code = e.getStatus().getCode().name();
            details = e.getStatus().getDescription() == null ? "" : e.getStatus().getDescription();
            say(logged, "ERROR", "echo call " + i + " failed: " + e.getMessage() + " (order " + order + ")");
        }
        long end = System.currentTimeMillis();
        if (ok) {
            say(logged, "INFO", "echo call " + i + " ok (order " + order + ")");
        }
        return "{\"i\":" + i + ",\"ok\":" + ok + ",\"code\":\"" + code + "\",\"details\":\"" + Function.escape(details)
                + "\",\"start_ms\":" + start + ",\"end_ms\":" + end + "}";
    }

    static void say(List<String> logged, String level, String message) {
        if (logged != null) {
            logged.add(message);
        }
        Function.log(level, message);
    }

    static String field(String json, String key, String otherwise) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        return m.find() ? m.group(1) : otherwise;
    }

    static String handle(String event) {
        String order = field(event, "order", "?");
        int calls = Function.intField(event, "calls", 0);
        int deadlineMs = Function.intField(event, "deadline_ms", 8000);
        List<String> logged = new ArrayList<>();
        say(logged, "INFO", "handling order batch of " + calls + " calls (order " + order + ")");
        List<String> results = new ArrayList<>();
        for (int i = 0; i < calls; i++) {
            results.add(call(i, deadlineMs, logged, order));
        }
        StringBuilder b = new StringBuilder("{\"ok\":true,\"pid\":").append(ProcessHandle.current().pid())
                .append(",\"calls\":[").append(String.join(",", results)).append("],\"logged\":[");
        for (int i = 0; i < logged.size(); i++) {
            b.append(i == 0 ? "" : ",").append('"').append(Function.escape(logged.get(i))).append('"');
        }
        return b.append("],\"init_call\":").append(initCall).append('}').toString();
    }

    public static void main(String[] args) throws Exception {
        init();
        String base = "/2018-06-01/runtime/";
        if ("snap-start".equals(System.getenv("AWS_LAMBDA_INITIALIZATION_TYPE"))) {
            Core.getGlobalContext().beforeCheckpoint(null);
            Function.http("GET", base + "restore/next", null, null);
            Core.getGlobalContext().afterRestore(null);
        }
        while (true) {
            String[] rid = new String[1];
            String event = Function.http("GET", base + "invocation/next", null, rid);
            if (rid[0] == null) {
                break;
            }
            Function.requestId = rid[0];
            String result = handle(event);
            Function.http("POST", base + "invocation/" + rid[0] + "/response", result.getBytes(StandardCharsets.UTF_8), null);
        }
        channel.shutdownNow();
    }
}
