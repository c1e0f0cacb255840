// Package audit writes the proxy's audit log (SPEC 6): one JSON object per
// line, with a fixed schema, for every authentication result, denial and
// disconnect. The schema is fixed, so the lines are encoded directly rather
// than through log/slog: every connection writes at least two of them, on
// the event loop's thread, and slog's JSON handler spent about 2.7 µs on
// each (8 % of the proxy's CPU per CONNECT in the bench's connect cell).
// The lines keep slog's shape (time, level, msg), so readers of the process
// log's JSON read them alike.
package audit

import (
	"io"
	"sync"
	"time"
	"unicode/utf8"
)

// Event is one audit line's content. Empty fields are written empty: the
// schema is the same on every line.
type Event struct {
	Event     string // authentication, denial or disconnect
	Principal string // the authentication name; empty before authentication
	ClientID  string
	Operation string // connect, reauthenticate, publish, subscribe, receive, will, or an end's cause
	Topic     string // topic or filter, for denials
	Decision  string // allow or deny; empty for disconnects
	Reason    string
	Rule      string // the topic space that decided, or the authentication method
}

// Logger writes Events to a writer, one Write per line (as a
// logsink.Writer expects). A nil *Logger writes nothing. Safe for
// concurrent use if its writer is.
type Logger struct {
	w   io.Writer
	now func() time.Time
}

// New returns a Logger writing to w, or nil (writing nothing) if w is nil.
func New(w io.Writer) *Logger {
	if w == nil {
		return nil
	}
	return &Logger{w: w, now: time.Now}
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Log writes e as one line. Write errors are dropped: the writer (a
// logsink.Writer) counts what it could not write.
func (l *Logger) Log(e Event) {
	if l == nil {
		return
	}
	bp := buffers.Get().(*[]byte)
	b := Append((*bp)[:0], l.now(), e)
	_, _ = l.w.Write(b)
	if cap(b) <= 64<<10 { // a huge topic's buffer is not kept
		*bp = b
		buffers.Put(bp)
	}
}

// Append appends e, logged at t, as one JSON line to b.
func Append(b []byte, t time.Time, e Event) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"audit","log":"audit","event":`...)
	b = appendString(b, e.Event)
	b = append(b, `,"principal":`...)
	b = appendString(b, e.Principal)
	b = append(b, `,"client_id":`...)
	b = appendString(b, e.ClientID)
	b = append(b, `,"operation":`...)
	b = appendString(b, e.Operation)
	b = append(b, `,"topic":`...)
	b = appendString(b, e.Topic)
	b = append(b, `,"decision":`...)
	b = appendString(b, e.Decision)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	b = append(b, `,"rule":`...)
	b = appendString(b, e.Rule)
	return append(b, "}\n"...)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json writes it
// without HTML escaping: control characters escaped, invalid UTF-8 as
// U+FFFD, and U+2028/U+2029 escaped (JavaScript line terminators).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
