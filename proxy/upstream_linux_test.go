package proxy

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listenUnixBacklog0 listens on a Unix socket at path whose accept queue
// holds one connection (backlog 0), so the second pending connect fails
// with EAGAIN, as a broker's full queue does under a burst of CONNECTs.
func listenUnixBacklog0(t *testing.T, path string) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	return fd
}

// fullUnixQueue listens at a new Unix socket path whose accept queue one
// queued connection fills; it returns the listening descriptor and path.
func fullUnixQueue(t *testing.T) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "broker.sock")
	fd := listenUnixBacklog0(t, path)
	queued, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { queued.Close() })
	return fd, path
}

func TestDialUpstreamWaitsWhileTheUnixAcceptQueueIsFull(t *testing.T) {
	fd, path := fullUnixQueue(t)
	if c, err := net.Dial("unix", path); !errors.Is(err, syscall.EAGAIN) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("precondition: a dial to the full queue gave %v, want EAGAIN", err)
	}
	cfg := UpstreamConfig{Address: "unix:" + path}

	t.Run("gives up with the dial timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		c, err := DialUpstream(ctx, &net.Dialer{}, cfg)
		if err == nil {
			c.Close()
			t.Fatal("dial to a queue that never drains succeeded")
		}
		// The deadline ends either a pause (EAGAIN) or a dial (timeout);
		// both must say why.
		if !strings.Contains(err.Error(), "accept queue stayed full") {
			t.Fatalf("err = %v, want it to name the full accept queue", err)
		}
	})

	t.Run("connects once the broker accepts", func(t *testing.T) {
		accepted := make(chan error, 1)
		go func() {
			time.Sleep(20 * time.Millisecond)
			nfd, _, err := syscall.Accept(fd)
			if err == nil {
				syscall.Close(nfd)
			}
			accepted <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := DialUpstream(ctx, &net.Dialer{}, cfg)
		if err != nil {
			t.Fatalf("dial after the queue drained: %v", err)
		}
		c.Close()
		if err := <-accepted; err != nil {
			t.Fatalf("accept: %v", err)
		}
	})
}
