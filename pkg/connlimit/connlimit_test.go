package connlimit

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// dialFrom connects to ln from the loopback address src (Linux routes all of 127/8).
func dialFrom(t *testing.T, ln net.Listener, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// One address gets max connections; the next is answered 503 and closed, while another
// address is still served; closing one frees its slot.
func TestPerAddr(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := PerAddr(inner, 3)
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	next := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	var held []net.Conn
	for range 3 {
		dialFrom(t, l, "127.0.0.2")
		held = append(held, next())
	}
	if n := l.Open(netip.MustParseAddr("127.0.0.2")); n != 3 {
		t.Errorf("open from 127.0.0.2: %d, want 3", n)
	}
	over := dialFrom(t, l, "127.0.0.2")
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("connection over the cap: %v, want a 503", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the cap: %d %v", resp.StatusCode, resp.Header)
	}
	if l.Refused() != 1 {
		t.Errorf("refused %d, want 1", l.Refused())
	}
	// Another address is not affected.
	dialFrom(t, l, "127.0.0.3")
	other := next()
	if other.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.3" {
		t.Errorf("accepted %v, want the connection from 127.0.0.3", other.RemoteAddr())
	}
	// Closing twice gives the slot back once.
	held[0].Close()
	held[0].Close()
	if n := l.Open(netip.MustParseAddr("127.0.0.2")); n != 2 {
		t.Errorf("open after a close: %d, want 2", n)
	}
	dialFrom(t, l, "127.0.0.2")
	next()
}

// IPv6 peers count by their /64; IPv4-mapped ones as IPv4.
func TestGroup(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"10.0.0.1", "10.0.0.1"},
	} {
		if got := group(netip.MustParseAddr(tt.a)); got != netip.MustParseAddr(tt.b) {
			t.Errorf("group(%s) = %s, want %s", tt.a, got, tt.b)
		}
	}
}
