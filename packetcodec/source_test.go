package packetcodec

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Over a real socket (read inside RawConn.Read) frames arrive intact
// whatever the segmentation, with pauses in the middle of packets, and the
// end of the stream is io.EOF between packets.
func TestReaderOverTCP(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, n := range []int{0, 10, 3000, 5000, 16372, 16373, 16374, 70000, 1, 200000, 64, 0} {
		p := publishPacket(n, uint16(i+1))
		want = append(want, p)
		stream = append(stream, p...)
	}
	client, server := tcpPair(t)
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(6000))
			if _, err := client.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
			if rng.IntN(4) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		client.Close()
	}()
	_ = server.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := NewReader(server, 1<<20)
	for i, w := range want {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Raw, w) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(f.Raw), len(w))
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

// A read deadline and a close reach a Reader waiting on a socket as they
// reach net.Conn.Read: the proxy's keep-alive timeout and shutdown rely on it.
func TestReaderOverTCPDeadlineAndClose(t *testing.T) {
	_, server := tcpPair(t)
	_ = server.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	r := NewReader(server, 0)
	if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past the deadline: got %v, want os.ErrDeadlineExceeded", err)
	}

	_, server = tcpPair(t)
	_ = server.SetReadDeadline(time.Time{})
	r = NewReader(server, 0)
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadFrame()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	server.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrame still blocked after Close")
	}
}

// Readers waiting on idle sockets hold no read buffer (issue 5: memory per
// idle connection): the heap grows by far less than one buffer per reader.
func TestReaderIdleSocketHoldsNoBuffer(t *testing.T) {
	const n = 300
	type pair struct{ client, server net.Conn }
	pairs := make([]pair, n)
	for i := range pairs {
		pairs[i].client, pairs[i].server = tcpPair(t)
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // empties sync.Pool's victim cache too
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	errs := make(chan error, n)
	readers := make([]*Reader, n)
	for i, p := range pairs {
		readers[i] = NewReader(p.server, 0)
		if _, err := p.client.Write(publishPacket(100, 1)); err != nil {
			t.Fatal(err)
		}
		go func(r *Reader) {
			if _, err := r.ReadFrame(); err != nil {
				errs <- err
				return
			}
			_, err := r.ReadFrame() // waits: nothing more is sent
			errs <- err
		}(readers[i])
	}
	time.Sleep(200 * time.Millisecond) // every reader is past its first frame and waiting
	perReader := float64(heap()-before) / n
	for _, p := range pairs {
		p.client.Close()
	}
	for range n {
		if err := <-errs; err != io.EOF {
			t.Fatalf("reader ended with %v, want io.EOF", err)
		}
	}
	if perReader > 2048 {
		t.Errorf("heap per idle reader: %.0f bytes, want under 2 KiB (the read buffer is %d bytes)", perReader, readBufferSize)
	}
	t.Logf("heap per idle reader: %.0f bytes", perReader)
}

// countingConn wraps a TCP connection and changes nothing but counting the
// Reads, as a PROXY-protocol or byte-counting wrapper would.
type countingConn struct {
	*net.TCPConn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.TCPConn.Read(p)
}

// A type that embeds a socket but has its own Read is read through that
// Read, never around it.
func TestReaderUsesWrappersRead(t *testing.T) {
	client, server := tcpPair(t)
	wrapped := &countingConn{TCPConn: server.(*net.TCPConn)}
	p := publishPacket(100, 1)
	if _, err := client.Write(p); err != nil {
		t.Fatal(err)
	}
	f, err := NewReader(wrapped, 0).ReadFrame()
	if err != nil || !bytes.Equal(f.Raw, p) {
		t.Fatalf("frame: %v, intact %v", err, bytes.Equal(f.Raw, p))
	}
	if wrapped.reads == 0 {
		t.Fatal("the wrapper's Read was bypassed")
	}
}

// A Reader closed after its last frame gives its buffer back, so a stream of
// short-lived connections (CONNECT, CONNACK, DISCONNECT) does not allocate
// a fresh read buffer each (issue 5: CONNECT rate).
func TestReaderCloseReturnsItsBuffer(t *testing.T) {
	client, server := tcpPair(t)
	pingreq := []byte{0xc0, 0x00}
	readOne := func() *Reader {
		r := NewReader(server, 0)
		if _, err := client.Write(pingreq); err != nil {
			t.Fatal(err)
		}
		if f, err := r.ReadFrame(); err != nil || !bytes.Equal(f.Raw, pingreq) {
			t.Fatalf("ReadFrame = % x, %v", f.Raw, err)
		}
		return r
	}
	r := readOne()
	r.Close()
	if _, err := r.ReadFrame(); !errors.Is(err, ErrReaderClosed) {
		t.Fatalf("ReadFrame after Close: %v, want ErrReaderClosed", err)
	}

	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		readOne().Close()
	}
	runtime.ReadMemStats(&after)
	// Half a buffer: the race detector's sync.Pool drops a quarter of what
	// is put back, so about 4 KiB per reader is expected under -race.
	if perReader := (after.TotalAlloc - before.TotalAlloc) / n; perReader > readBufferSize/2 {
		t.Errorf("allocated %d bytes per short-lived reader, want far less than its %d-byte buffer", perReader, readBufferSize)
	}
}

// SetOnWait: on a socket the hook runs only when the Reader is about to
// wait, not while bytes are ready; on other streams before every read. Its
// error ends the read.
func TestReaderOnWait(t *testing.T) {
	errStop := errors.New("flush failed")
	for _, tc := range []struct {
		name       string
		wrap       func(net.Conn) io.Reader
		readyWaits int // hook calls while both packets were ready
	}{
		{"socket", func(c net.Conn) io.Reader { return c }, 0},
		{"other stream", func(c net.Conn) io.Reader { return &countingConn{TCPConn: c.(*net.TCPConn)} }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := tcpPair(t)
			r := NewReader(tc.wrap(server), 0)
			waits, fail := 0, false
			r.SetOnWait(func() error {
				waits++
				if fail {
					return errStop
				}
				return nil
			})
			if _, err := client.Write([]byte{0xc0, 0x00, 0xc0, 0x00}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // both packets are in the socket
			for i := range 2 {
				if _, err := r.ReadFrame(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			if waits != tc.readyWaits {
				t.Errorf("hook ran %d times while packets were ready, want %d", waits, tc.readyWaits)
			}
			fail = true
			if _, err := r.ReadFrame(); !errors.Is(err, errStop) {
				t.Fatalf("ReadFrame with a failing hook: %v, want the hook's error", err)
			}
			if waits != tc.readyWaits+1 {
				t.Errorf("hook ran %d times in all, want %d", waits, tc.readyWaits+1)
			}
		})
	}
}
