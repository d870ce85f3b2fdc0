// The recorded Go function: a provided.al2023-style custom runtime (the
// Runtime API loop in main, as aws-lambda-go's lambda.Start runs it) with a
// grpc-go client with HTTP/2 keepalive, created once per execution
// environment as real functions do, calling the recorders' echo server
// (tests/harness/echo_server.py, `/thawtrace.Echo/Echo`, raw bytes) through
// the delaying proxy.
//
// - GET /2018-06-01/runtime/invocation/next, run the handler, POST
//   /response; the emulator freezes this process (SIGSTOP) between
//   invocations.
// - Lines are plain stdout/stderr as a Go function prints them on
//   provided.al2023: the standard `log` package (`2026/12/06 14:40:00
//   echo call 0 ok`), no request ID; grpc-go's own logger writes to stderr
//   under GRPC_GO_LOG_SEVERITY_LEVEL / GRPC_GO_LOG_VERBOSITY_LEVEL.
// - Event: {"calls": N, "hold": "release"}: N echo calls (8 s deadline
//   each), then, with hold, wait on the emulator's /thawtrace/hold/<id>
//   before answering, so the recorder can end the invocation right after a
//   keepalive ping went out.
// - THAWTRACE_KEEPALIVE=0: no keepalive parameters (grpc-go's default,
//   no pings).
//
// keepalive.ClientParameters{Time: 5s, Timeout: 1s, PermitWithoutStream:
// true}, as the Node.js and Python functions run. grpc-go raises a Time
// under 10 s to 10 s (internal.KeepaliveMinPingTime, with the warning
// "Adjusting keepalive ping interval to minimum period of 10s"); the
// recording lowers that floor to 1 s, as grpc-go's own tests do, so its
// scenarios run at the pace of the other libraries' recordings. Nothing
// else in grpc-go changes: every line is its own.
//
// Build (Debian's golang-go and golang-google-grpc-dev, offline):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o function .
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"log"
	"net/http"
	"os"
	"time"
	_ "unsafe" // go:linkname, for grpc-go's keepalive floor

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

//go:linkname keepaliveMinPingTime google.golang.org/grpc/internal.KeepaliveMinPingTime
var keepaliveMinPingTime time.Duration

// rawCodec sends and receives the bytes as they are, as the echo server
// expects (no protoc needed).
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type event struct {
	Calls int    `json:"calls"`
	Hold  string `json:"hold"`
}

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	opts := []grpc.DialOption{grpc.WithInsecure()}
	if os.Getenv("THAWTRACE_KEEPALIVE") != "0" {
		keepaliveMinPingTime = time.Second
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                5 * time.Second,
			Timeout:             1 * time.Second,
			PermitWithoutStream: true,
		}))
	}
	conn, err := grpc.Dial(os.Getenv("THAWTRACE_TARGET"), opts...)
	if err != nil {
		log.Fatalf("dial: %v", err)
	}
	client := &http.Client{}
	for {
		resp, err := client.Get(api + "next")
		if err != nil {
			log.Fatalf("runtime API: %v", err)
		}
		body, _ := ioutil.ReadAll(resp.Body)
		resp.Body.Close()
		rid := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		if rid == "" {
			// The emulator is shutting down.
			return
		}
		var ev event
		if err := json.Unmarshal(body, &ev); err != nil {
			log.Printf("bad event: %v", err)
		}
		log.Printf("handling order batch %s", body)
		for i := 0; i < ev.Calls; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			in, out := []byte(fmt.Sprintf("call %d", i)), []byte(nil)
			err := conn.Invoke(ctx, "/thawtrace.Echo/Echo", &in, &out, grpc.ForceCodec(rawCodec{}))
			cancel()
			if err != nil {
				log.Printf("echo call %d failed: %v", i, err)
			} else {
				log.Printf("echo call %d ok", i)
			}
		}
		if ev.Hold == "release" {
			if r, err := client.Get("http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/thawtrace/hold/" + rid); err == nil {
				ioutil.ReadAll(r.Body)
				r.Body.Close()
			}
		}
		r, err := client.Post(api+rid+"/response", "application/json", bytes.NewReader([]byte(`{"ok":true}`)))
		if err != nil {
			log.Fatalf("runtime API: %v", err)
		}
		ioutil.ReadAll(r.Body)
		r.Body.Close()
	}
}
