package testsvc

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// SOCKS5 is a small SOCKS5 proxy (RFC 1928, CONNECT only, with RFC 1929 username/password) standing in for the
// far end of Grafana's secure SOCKS proxy (Private Data source Connect) in tests. It resolves names from Hosts
// only, as a proxy in a private network resolves names the client cannot: a client that dials or resolves
// a private name itself fails, one that goes through the proxy reaches it.
type SOCKS5 struct {
	Addr     string
	User     string
	Password string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	hosts   map[string]string // private name → reachable address
	targets []string          // every CONNECT target, in order
	refused int               // handshakes refused (bad credentials, unknown host)
}

// NewSOCKS5 starts a proxy on loopback that requires user and password and maps private host names (host:port)
// to real addresses. It stops with the test.
func NewSOCKS5(t testing.TB, user, password string, hosts map[string]string) *SOCKS5 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &SOCKS5{Addr: l.Addr().String(), User: user, Password: password, hosts: hosts, conns: map[net.Conn]struct{}{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close() // clients' idle keep-alive connections would hold the test for their timeout
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.serve(c)
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
			}()
		}
	}()
	return p
}

// Targets returns the CONNECT targets the proxy was asked for.
func (p *SOCKS5) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// Refused returns how many handshakes the proxy refused.
func (p *SOCKS5) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *SOCKS5) serve(c net.Conn) {
	defer c.Close()
	target, err := p.handshake(c)
	if err != nil {
		p.mu.Lock()
		p.refused++
		p.mu.Unlock()
		return
	}
	defer target.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(target, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, target); done <- struct{}{} }()
	<-done
}

func (p *SOCKS5) handshake(c net.Conn) (net.Conn, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return nil, errors.New("not SOCKS5")
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return nil, err
	}
	hasUserPass := false
	for _, m := range methods {
		hasUserPass = hasUserPass || m == 2
	}
	if !hasUserPass {
		_, _ = c.Write([]byte{5, 0xff})
		return nil, errors.New("no username/password method offered")
	}
	_, _ = c.Write([]byte{5, 2})
	// RFC 1929: ver, ulen, user, plen, password
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 1 {
		return nil, errors.New("bad auth version")
	}
	user, err := readShort(c)
	if err != nil {
		return nil, err
	}
	pass, err := readShort(c)
	if err != nil {
		return nil, err
	}
	if user != p.User || pass != p.Password {
		_, _ = c.Write([]byte{1, 1})
		return nil, errors.New("bad credentials")
	}
	_, _ = c.Write([]byte{1, 0})
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != 5 || req[1] != 1 {
		return nil, errors.New("only CONNECT")
	}
	var host string
	switch req[3] {
	case 1:
		var ip [4]byte
		if _, err := io.ReadFull(c, ip[:]); err != nil {
			return nil, err
		}
		host = net.IP(ip[:]).String()
	case 3:
		if host, err = readShort(c); err != nil {
			return nil, err
		}
	case 4:
		var ip [16]byte
		if _, err := io.ReadFull(c, ip[:]); err != nil {
			return nil, err
		}
		host = net.IP(ip[:]).String()
	default:
		return nil, errors.New("bad address type")
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return nil, err
	}
	name := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	p.mu.Lock()
	p.targets = append(p.targets, name)
	addr, ok := p.hosts[name]
	p.mu.Unlock()
	if !ok {
		_, _ = c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
		return nil, errors.New("unknown host " + name)
	}
	t, err := net.Dial("tcp", addr)
	if err != nil {
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return nil, err
	}
	_, _ = c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	return t, nil
}

func readShort(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, n[0])
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
