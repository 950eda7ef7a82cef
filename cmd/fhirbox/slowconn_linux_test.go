package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// nofileEnv sets the file-descriptor limit of a server process started by a test, so that
// a test can show what happens when connections would exhaust it.
const nofileEnv = "FHIRBOX_TEST_NOFILE"

func init() {
	if v := os.Getenv(nofileEnv); v != "" && os.Getenv(asServerEnv) == "1" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
		}
		if err != nil {
			panic(fmt.Sprintf("%s=%s: %v", nofileEnv, v, err))
		}
	}
}

// dialFrom opens a TCP connection to addr from the loopback address src (Linux routes
// all of 127/8 to lo), so one test can play several peers.
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// procStat returns the open file descriptors and resident memory (kB) of process pid.
func procStat(pid int) (fds int, rssKB int) {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKB, _ = strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	return len(ents), rssKB
}

// Issue 12 item 6: slow anonymous uploads must not hold the server's connections. A
// server whose file limit is lower than the number of slow connections (as 20,000 were
// against a default limit) still serves a normal request, because it accepts at most
// FHIRBOX_MAX_CONNS connections, at most FHIRBOX_MAX_CONNS_PER_ADDR from one peer, and
// cuts a body that arrives slower than FHIRBOX_TRANSFER_MIN_RATE; a large body at an
// ordinary rate still goes through.
func TestSlowConnections(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) { testSlowConnections(t, b) })
	}
}

func testSlowConnections(t *testing.T, backend testdb.Backend) {
	const (
		secret = "slow-admin-secret"
		peers  = 8 // attacking addresses 127.0.0.2 …
	)
	slow := 400 // connections in all; FHIRBOX_TEST_SLOW_CONNS raises it for measurements
	if v, err := strconv.Atoi(os.Getenv("FHIRBOX_TEST_SLOW_CONNS")); err == nil && v > 0 {
		slow = v
	}
	t.Setenv(nofileEnv, "256")
	t.Setenv("FHIRBOX_MAX_CONNS", "64")
	t.Setenv("FHIRBOX_MAX_CONNS_PER_ADDR", "16")
	t.Setenv("FHIRBOX_TRANSFER_TIMEOUT", "1s")
	t.Setenv("FHIRBOX_TRANSFER_MIN_RATE", "1024")
	p := startProcess(t, backend.DatabaseURL(t), secret)
	addr := strings.TrimPrefix(p.base, "http://")
	fds0, rss0 := procStat(p.cmd.Process.Pid)

	// Slow anonymous uploads: headers at once, then one byte of a 100 kB body, and nothing.
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	for i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 2+i%peers), addr)
			if err != nil {
				return // the kernel's backlog is full: that too is the cap at work
			}
			fmt.Fprintf(c, "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let the server accept what it will
	fds1, rss1 := procStat(p.cmd.Process.Pid)

	// A normal request from another address is served while the slow ones are open.
	start := time.Now()
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	r, err := c.Get(p.base + "/health")
	if err != nil {
		t.Fatalf("GET /health with %d slow connections open: %v (server fds %d)", slow, err, fds1)
	}
	r.Body.Close()
	served := time.Since(start)
	if r.StatusCode != 200 {
		t.Fatalf("GET /health: %d", r.StatusCode)
	}
	fds2, rss2 := procStat(p.cmd.Process.Pid)
	t.Logf("%d slow connections from %d addresses: server fds %d before, %d with them open, %d after the normal request; RSS %d kB, %d kB, %d kB; /health served in %v",
		len(conns), peers, fds0, fds1, fds2, rss0, rss1, rss2, served.Round(time.Millisecond))
	if fds1 > 64+fds0+8 {
		t.Errorf("the server holds %d descriptors with slow connections open, %d before: the cap of 64 does not hold", fds1, fds0)
	}

	// The slow connections were refused (503), or cut off once their body stalled: none
	// is still held by the server after a few seconds.
	deadline := time.Now().Add(20 * time.Second)
	held := 0
	for _, sc := range conns {
		_ = sc.SetReadDeadline(deadline)
		resp, err := http.ReadResponse(bufio.NewReader(sc), nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				held++
			}
			continue // closed without an answer: after a stalled body, that is fine
		}
		resp.Body.Close()
		if resp.StatusCode != 503 && resp.StatusCode != 401 && resp.StatusCode != 400 {
			t.Errorf("a slow upload got %d", resp.StatusCode)
		}
	}
	if held > 0 {
		t.Errorf("%d slow connections still held after 20s", held)
	}

	// A body trickled slower than the minimum rate is cut off with a 400 …
	tc, err := dialFrom("127.0.0.1", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+secret))
	fmt.Fprintf(tc, "PUT /Patient/slow HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", auth)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range 1000 {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := tc.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	start = time.Now()
	_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("a body trickled at 10 bytes/s was not cut off: %v after %v", err, time.Since(start))
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(msg), "did not arrive in time") {
		t.Errorf("trickled body: %d %s", resp.StatusCode, msg)
	}
	t.Logf("a body trickled at 10 bytes/s was cut off after %v", time.Since(start).Round(time.Millisecond))

	// … while a 150 kB body sent at about 30 kB/s, five times the fixed allowance of 1s,
	// is read whole.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"resourceType":"Patient","id":"big","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">`))
		chunk := []byte(strings.Repeat("x", 5000))
		for range 30 {
			time.Sleep(160 * time.Millisecond)
			pw.Write(chunk)
		}
		pw.Write([]byte(`</div>"}}`))
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPut, p.base+"/Patient/big", pr)
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", secret)
	start = time.Now()
	r, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 201 {
		t.Fatalf("a 150 kB body at an ordinary rate: %d %s", r.StatusCode, msg)
	}
	t.Logf("a 150 kB body sent over %v was stored", time.Since(start).Round(time.Millisecond))
}
