//go:build !unix

package packetcodec

import (
	"io"
	"syscall"
)

// rawConnOf returns nil: off Unix every stream is read with its own Read.
func rawConnOf(io.Reader) syscall.RawConn { return nil }

// fillRaw is never called off Unix (rawConnOf returns nil).
func (s *source) fillRaw() { s.fillStream() }
