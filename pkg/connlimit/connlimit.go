// Package connlimit caps the connections one peer may hold open on a listener, so that
// a peer with many slow or idle connections cannot take every slot of the server's
// total cap (golang.org/x/net/netutil.LimitListener) from the others.
package connlimit

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// refusal is written to a connection over its peer's cap before it is closed, so that an
// HTTP client sees why instead of a bare reset.
var refusal = func() []byte {
	const body = "too many connections from this address\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// PerAddr returns a listener that accepts at most max open connections per peer address
// (IPv6 peers by their /64, which one host usually holds whole); a connection over the
// cap is answered 503 and closed at once, so it holds no slot. max <= 0: no cap.
func PerAddr(l net.Listener, max int) *Listener {
	return &Listener{Listener: l, max: max, open: map[netip.Addr]int{}}
}

// Listener is a net.Listener with a per-address cap; see PerAddr.
type Listener struct {
	net.Listener
	max     int
	mu      sync.Mutex
	open    map[netip.Addr]int
	refused atomic.Uint64
}

// Accept returns the next connection whose peer is under the cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.max <= 0 {
			return c, err
		}
		key, ok := peer(c.RemoteAddr())
		if !ok {
			return c, nil
		}
		l.mu.Lock()
		full := l.open[key] >= l.max
		if !full {
			l.open[key]++
		}
		l.mu.Unlock()
		if full {
			l.refused.Add(1)
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(refusal)
			_ = c.Close()
			continue
		}
		return &conn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *Listener) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// Refused is the number of connections refused so far for being over their peer's cap.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open is the number of connections from addr's peer (as PerAddr groups them) open now.
func (l *Listener) Open(addr netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[group(addr)]
}

// peer is the key a connection counts under.
func peer(a net.Addr) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return group(ap.Addr()), true
}

func group(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// conn gives its slot back once, on the first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
