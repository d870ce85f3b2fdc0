// The recorded Java function: a grpc-java (Netty) client with HTTP/2
// keepalive, created once per execution environment, calling the echo server
// (/thawtrace.Echo/Echo, raw bytes: no protoc) through the delaying proxy,
// under a small Runtime API client that behaves as the Lambda Java managed
// runtime does with its output (see README, "Log formats read"):
//
// - text format: every line written to stdout or stderr is a log event of
//   its own, as written (java.util.logging's ConsoleHandler writes each
//   record as two lines: a header, then `LEVEL: message`);
// - JSON format (AWS_LAMBDA_LOG_FORMAT=JSON): the function's own lines, which
//   it logs through the runtime's logger (LambdaLogger), become
//   {"timestamp","message","level","AWSRequestId"} records (the runtime's
//   JsonLogFormatter; AWSRequestId only on the invocation's own thread);
//   what other code writes to stderr (java.util.logging) stays as written;
// - Log4j 2 (the recorder's `log4j2` setting: log4j2.configurationFile set,
//   java.util.logging routed to Log4j by log4j-jul): the function logs its
//   own lines as a Java function using Log4j 2 does, through its logging
//   framework (here java.util.logging's API, SEVERE being ERROR), and the
//   runtime puts the invocation's request ID in Log4j's ThreadContext as
//   `AWSRequestId` before the handler runs (the runtime interface client's
//   EventHandlerLoader does it by reflection when Log4j is on the class
//   path; so does this one), which the layout prints. With
//   THAWTRACE_LOG_EXCEPTION=1 it logs a failed call with its exception
//   (the status then only in the exception's message).
//
// Event: {"calls": N, "hold": "none" | "release"} (the Node.js twin,
// function.js, says what "release" does).
//
// THAWTRACE_KEEPALIVE=0 builds the channel without keepalive. grpc-java
// raises a keepAliveTime below 10 s to 10 s (KeepAliveManager's minimum);
// the recorder shortens it to the 5 s of the other recorded functions by
// setting the builder's field after that clamp, so the scenarios keep their
// timing: the library's keepalive code runs unchanged.

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class Function {
    static final String API = System.getenv("AWS_LAMBDA_RUNTIME_API");
    static final boolean JSON = "JSON".equalsIgnoreCase(System.getenv("AWS_LAMBDA_LOG_FORMAT"));
    static final PrintStream OUT = System.out;
    static final DateTimeFormatter TS =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    static String requestId;
    static final boolean LOG4J2 = System.getProperty("log4j2.configurationFile") != null;
    /** THAWTRACE_LOG_EXCEPTION=1: a failed call logged as
     *  logger.error("echo call 0 failed", e), the status in the exception. */
    static final boolean LOG_EXCEPTION = "1".equals(System.getenv("THAWTRACE_LOG_EXCEPTION"));
    static final java.util.logging.Logger LOGGER = java.util.logging.Logger.getLogger("Function");

    /** What the runtime does for Log4j 2: the request ID in ThreadContext. */
    static void log4jRequestId(String rid) {
        try {
            Class.forName("org.apache.logging.log4j.ThreadContext")
                    .getMethod("put", String.class, String.class)
                    .invoke(null, "AWSRequestId", rid);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("the log4j2 setting without Log4j's API", e);
        }
    }

    /** The runtime's LambdaLogger: the message as is (text) or its JSON record. */
    static synchronized void log(String level, String message) {
        if (LOG4J2) {
            LOGGER.log("ERROR".equals(level) ? java.util.logging.Level.SEVERE : java.util.logging.Level.INFO, message);
            return;
        }
        if (!JSON) {
            OUT.println(message);
        } else {
            StringBuilder b = new StringBuilder("{\"timestamp\":\"").append(TS.format(Instant.now()))
                    .append("\",\"message\":\"").append(escape(message)).append("\",\"level\":\"").append(level).append('"');
            if (requestId != null) {
                b.append(",\"AWSRequestId\":\"").append(requestId).append('"');
            }
            OUT.println(b.append('}'));
        }
        OUT.flush();
    }

    static String escape(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c)); else b.append(c);
            }
        }
        return b.toString();
    }

    static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<byte[]>() {
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        public byte[] parse(InputStream stream) {
            try {
                return stream.readAllBytes();
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }
    };
    static final MethodDescriptor<byte[], byte[]> ECHO = MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName("thawtrace.Echo/Echo")
            .setRequestMarshaller(BYTES)
            .setResponseMarshaller(BYTES)
            .build();

    static ManagedChannel channel() throws Exception {
        NettyChannelBuilder b = NettyChannelBuilder.forTarget(System.getenv("THAWTRACE_TARGET")).usePlaintext();
        if (!"0".equals(System.getenv("THAWTRACE_KEEPALIVE"))) {
            b.keepAliveTime(5, TimeUnit.SECONDS).keepAliveTimeout(1, TimeUnit.SECONDS).keepAliveWithoutCalls(true);
            java.lang.reflect.Field f = NettyChannelBuilder.class.getDeclaredField("keepAliveTimeNanos");
            f.setAccessible(true);
            f.setLong(b, TimeUnit.SECONDS.toNanos(5));
        }
        return b.build();
    }

    static String http(String method, String path, byte[] body, String[] requestIdOut) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL("http://" + API + path).openConnection();
        c.setRequestMethod(method);
        c.setReadTimeout(3_600_000);
        if (body != null) {
            c.setDoOutput(true);
            c.getOutputStream().write(body);
        }
        byte[] got = c.getInputStream().readAllBytes();
        if (requestIdOut != null) {
            requestIdOut[0] = c.getHeaderField("Lambda-Runtime-Aws-Request-Id");
        }
        c.disconnect();
        return new String(got, StandardCharsets.UTF_8);
    }

    static int intField(String json, String key, int otherwise) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*(\\d+)").matcher(json);
        return m.find() ? Integer.parseInt(m.group(1)) : otherwise;
    }

    static String handle(ManagedChannel channel, String event, String rid) throws IOException {
        log("INFO", "handling order batch " + event);
        int calls = intField(event, "calls", 0);
        for (int i = 0; i < calls; i++) {
            try {
                ClientCalls.blockingUnaryCall(channel, ECHO, CallOptions.DEFAULT.withDeadlineAfter(8, TimeUnit.SECONDS),
                        ("call " + i).getBytes(StandardCharsets.UTF_8));
                log("INFO", "echo call " + i + " ok");
            } catch (StatusRuntimeException e) {
                if (LOG4J2 && LOG_EXCEPTION) {
                    LOGGER.log(java.util.logging.Level.SEVERE, "echo call " + i + " failed", e);
                } else {
                    log("ERROR", "echo call " + i + " failed: " + e.getMessage());
                }
            }
        }
        if (event.matches("(?s).*\"hold\"\\s*:\\s*\"release\".*")) {
            // grpc-java pings with each response it reads (BDP: flow-control
            // window tuning, payload 1234, no ack timeout); let that ack come
            // first, so the ping the recorder catches in flight is a
            // keepalive one (payload 1111).
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            http("GET", "/thawtrace/hold/" + rid, null, null);
        }
        return "{\"ok\": true}";
    }

    public static void main(String[] args) throws Exception {
        ManagedChannel channel = channel();
        String base = "/2018-06-01/runtime/invocation/";
        while (true) {
            String[] rid = new String[1];
            String event = http("GET", base + "next", null, rid);
            if (rid[0] == null) {
                break;
            }
            requestId = rid[0];
            if (LOG4J2) {
                log4jRequestId(rid[0]);
            }
            String result = handle(channel, event, rid[0]);
            http("POST", base + rid[0] + "/response", result.getBytes(StandardCharsets.UTF_8), null);
        }
        channel.shutdownNow();
    }
}
