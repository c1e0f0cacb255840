//go:build !linux

package proxy

import (
	"context"
	"net"
)

// Off Linux there is no event loop: every connection relays with the two
// pumps (loop_linux.go explains the loop).

type eventLoop struct{}

type loopConn struct{ ended chan struct{} }

func newLoops() []*eventLoop { return nil }

func (c *conn) attachToLoop() *loopConn { return nil }

func (lc *loopConn) detach() {}

// Off Linux connections are accepted and handshaken by goroutines.

type nativeTarget struct{}

func newNativeTarget(Config, Options) nativeTarget { return nativeTarget{} }

func (s *Server) serveOnLoops(context.Context, net.Listener) (bool, error) { return false, nil }

func (lc *loopConn) abortHandshake() {}

func releaseForFinalWrite(net.Conn) {}
