package listener

import (
	"context"
	"crypto/tls"

	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// WebSocket is a net.Listener whose connections are MQTT over WebSocket
// [MQTT-6.0.0-1]: binary messages, subprotocol "mqtt", on one HTTP path.
type WebSocket struct {
	ln    net.Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// ListenWebSocket serves MQTT over WebSocket on addr at path; with tlsCfg
// it serves wss.
func ListenWebSocket(addr, path string, tlsCfg *tls.Config) (*WebSocket, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	w := &WebSocket{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(path, w.upgrade)
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

func (w *WebSocket) upgrade(rw http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		Subprotocols: []string{"mqtt"},
		// MQTT clients are not browsers bound by same-origin; the token,
		// not the Origin header, authenticates them.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return
	}
	if c.Subprotocol() != "mqtt" {
		c.Close(websocket.StatusPolicyViolation, "subprotocol mqtt required")
		return
	}
	c.SetReadLimit(-1) // the proxy's packet size limit applies instead
	// Not tied to the listener: closing it must leave accepted
	// connections to the proxy, which tells each client why it goes
	// (DISCONNECT 0x8B on shutdown) before closing it.
	nc := websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	select {
	case w.conns <- &wsConn{Conn: nc, remote: remoteAddr(r)}:
	case <-w.done:
		nc.Close()
	}
}

// Accept implements net.Listener.
func (w *WebSocket) Accept() (net.Conn, error) {
	select {
	case c := <-w.conns:
		return c, nil
	case <-w.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener: it stops accepting; connections already
// accepted stay open until closed themselves.
func (w *WebSocket) Close() error {
	var err error
	w.once.Do(func() {
		close(w.done)
		err = w.srv.Close()
	})
	return err
}

// Addr implements net.Listener.
func (w *WebSocket) Addr() net.Addr { return w.ln.Addr() }

// wsConn reports the HTTP peer as the remote address.
type wsConn struct {
	net.Conn
	remote net.Addr
}

func (c *wsConn) RemoteAddr() net.Addr { return c.remote }

// ReadDeadlineCloses reports that a read deadline expiring during a read
// closes the connection (coder/websocket's NetConn does), so nothing can
// be written after it: the proxy times the keep-alive itself.
func (c *wsConn) ReadDeadlineCloses() bool { return true }

func remoteAddr(r *http.Request) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return a
}

var _ net.Listener = (*WebSocket)(nil)
