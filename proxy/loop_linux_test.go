package proxy

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"golang.org/x/sys/unix"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// These tests drive the event loop over socket pairs: one end is the
// client or the broker, the other the proxy's, already past the handshake.
// They come from a review that found each bug; each fails without its fix.

func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// relayingConn starts the relay of a conn of srv whose client and broker
// are the returned sockets, and waits until it is on the loop.
func relayingConn(t *testing.T, srv *Server) (c *conn, client, broker *net.UnixConn) {
	t.Helper()
	client, cs := socketPair(t)
	broker, bs := socketPair(t)
	c = newConn(srv, cs)
	c.up, c.ur, c.uw = bs, packetcodec.NewReader(bs, 0), packetcodec.NewWriter(bs)
	c.sess.Store(c.newSession(&authz.Identity{AuthenticationName: "a"}))
	c.method = "OAUTH2-JWT"
	c.state.Store(stateRelay)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.relay(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		lc := c.loop
		c.mu.Unlock()
		if lc != nil {
			return c, client, broker
		}
		if time.Now().After(deadline) {
			t.Fatal("the connection did not reach the loop")
		}
	}
}

func publishOf(topic string, size int) []byte {
	b, err := packetcodec.AppendPacket(nil, &packets.Publish{Topic: topic, Payload: make([]byte, size), Properties: &packets.Properties{}})
	if err != nil {
		panic(err)
	}
	return b
}

// fill writes pkt to w until a write does not complete within 200 ms: the
// proxy has stopped taking bytes. It returns how many went through.
func fill(w *net.UnixConn, pkt []byte) int {
	n := 0
	for {
		_ = w.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := w.Write(pkt); err != nil {
			_ = w.SetWriteDeadline(time.Time{})
			return n
		}
		n++
	}
}

// readAll counts the bytes r delivers until it is quiet for quiet.
func readAll(r *net.UnixConn, quiet time.Duration) int {
	got, buf := 0, make([]byte, 64<<10)
	for {
		_ = r.SetReadDeadline(time.Now().Add(quiet))
		n, err := r.Read(buf)
		got += n
		if err != nil {
			return got
		}
	}
}

// A client that does not read still has its own packets forwarded: the
// loop stops reading the broker for it, not the client.
func TestLoopSlowReaderStillSends(t *testing.T) {
	srv, err := New(DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, client, broker := relayingConn(t, srv)
	var fromClient atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := broker.Read(buf)
			fromClient.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	fill(broker, publishOf("down", 4<<10)) // the proxy→client direction is full
	before := fromClient.Load()
	pub := publishOf("up", 4<<10)
	const count = 128 // 512 KiB: more than the socket buffers hold
	_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	for i := range count { // the client writes and never reads
		if _, err := client.Write(pub); err != nil {
			t.Fatalf("client publish %d: %v: the proxy stopped reading a client that does not read", i, err)
		}
	}
	want := int64(count * len(pub))
	for deadline := time.Now().Add(5 * time.Second); fromClient.Load()-before < want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the broker got %d of %d bytes from a client that does not read", fromClient.Load()-before, want)
		}
	}
}

// A background writer (the re-authentication reply) that empties a blocked
// client Writer must not take away the EPOLLOUT event the loop needs to
// resume reading the broker.
func TestLoopResumesAfterBackgroundFlush(t *testing.T) {
	srv, err := New(DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cx, clientX, brokerX := relayingConn(t, srv)
	cy, clientY, _ := relayingConn(t, srv)
	pkt := publishOf("down", 4<<10)
	sent := fill(brokerX, pkt)
	time.Sleep(100 * time.Millisecond)
	if blocked, _ := cx.cw.Backlog(); !blocked {
		t.Fatal("setup: the client Writer is not blocked")
	}
	// Keep the loop busy on Y while X's client reads (the kernel queues
	// EPOLLOUT for X) and the AUTH reply empties X's Writer.
	cy.loop.mu.Lock()
	if _, err := clientY.Write([]byte{0xc0, 0x00}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	got := readAll(clientX, 100*time.Millisecond)
	if err := cx.cw.WritePacket(&packets.Auth{ReasonCode: packets.AuthSuccess, Properties: &packets.Properties{AuthMethod: "OAUTH2-JWT"}}); err == nil {
		_ = cx.cw.Flush()
	}
	cy.loop.mu.Unlock()
	got += readAll(clientX, 2*time.Second)
	if want := sent * len(pkt); got < want {
		t.Fatalf("client got %d of %d bytes: the loop was not woken to read the broker again", got, want)
	}
}

// A write after the connection left the loop waits at most
// finalWriteTimeout, and Shutdown's forced close does not hang behind it.
func TestLoopWriteAfterDetachHasDeadline(t *testing.T) {
	srv, err := New(DefaultConfig(), Options{ShutdownGrace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, _, broker := relayingConn(t, srv)
	srv.mu.Lock()
	srv.conns[c] = struct{}{}
	srv.wg.Add(1)
	srv.mu.Unlock()
	fill(broker, publishOf("down", 4<<10)) // the client never reads
	lc := c.loop
	go func() { <-lc.ended; srv.wg.Done() }()
	c.mu.Lock() // hold finish between the loop's detach and its deadlines
	go func() {
		lc.mu.Lock()
		defer lc.mu.Unlock()
		lc.end(ending{cause: "keep_alive_timeout", clientCode: packets.DisconnectKeepAliveTimeout})
	}()
	time.Sleep(50 * time.Millisecond)
	wrote := make(chan struct{})
	go func() { // the re-authentication reply lands in that window
		defer close(wrote)
		if err := c.cw.WritePacket(&packets.Auth{ReasonCode: packets.AuthSuccess, Properties: &packets.Properties{AuthMethod: "OAUTH2-JWT"}}); err == nil {
			_ = c.cw.Flush()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still blocked after 5 s")
	}
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the write after detach still waits after 5 s")
	}
	select {
	case <-lc.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("finish never completed")
	}
}

// A client whose bytes the loop held back while the broker was not reading
// is read again once the broker catches up, though no new edge comes from
// the client: the flush that empties the broker's Writer reopens its gate.
func TestLoopResumesReaderWhenForwardDrains(t *testing.T) {
	srv, err := New(DefaultConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, client, broker := relayingConn(t, srv)
	pub := publishOf("up", 4<<10)
	sent := fill(client, pub) // the broker reads nothing: both sockets fill up
	got := readAll(broker, 2*time.Second)
	if want := sent * len(pub); got < want {
		t.Fatalf("broker got %d of %d bytes: the client's held-back bytes were never read", got, want)
	}
}

// A duplicate that could not be handed to the loop is closed without
// shutting the shared socket down: the connection goes on with the pumps.
func TestDiscardLeavesTheSocketUsable(t *testing.T) {
	a, b := socketPair(t)
	dup, err := dupRawSock(a)
	if err != nil {
		t.Fatal(err)
	}
	dup.discard()
	if _, err := a.Write([]byte{0xc0, 0x00}); err != nil {
		t.Fatalf("write on the original after discard: %v", err)
	}
	buf := make([]byte, 2)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(buf); err != nil {
		t.Fatalf("read at the peer: %v", err)
	}
}
