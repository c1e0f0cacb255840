package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var at = time.Date(2026, 11, 29, 18, 34, 7, 378843534, time.UTC)

func TestAppendIsOneJSONLineWithTheSchema(t *testing.T) {
	tests := []struct {
		name string
		e    Event
	}{
		{"connect", Event{Event: "authentication", Principal: "6f1d0000-0000-0000-0000-000000000001", ClientID: "dev1", Operation: "connect", Decision: "allow", Rule: "OAUTH2-JWT"}},
		{"all empty", Event{}},
		{"quotes, backslashes, controls", Event{Topic: "a\"b\\c\n\r\t\x00\x1f\x7f", ClientID: "id\b\f"}},
		{"non-ASCII and line separators", Event{Topic: "ä/東京/😀/\u2028/\u2029", Principal: "repo:org/repo:ref:refs/heads/main"}},
		{"HTML characters stay", Event{Reason: "<a & b>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := Append(nil, at, tt.e)
			if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
				t.Fatalf("not one line: %q", line)
			}
			var got map[string]string
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("not JSON: %v: %q", err, line)
			}
			want := map[string]string{
				"time": "2026-11-29T18:34:07.378843534Z", "level": "INFO", "msg": "audit", "log": "audit",
				"event": tt.e.Event, "principal": tt.e.Principal, "client_id": tt.e.ClientID, "operation": tt.e.Operation,
				"topic": tt.e.Topic, "decision": tt.e.Decision, "reason": tt.e.Reason, "rule": tt.e.Rule,
			}
			if len(got) != len(want) {
				t.Errorf("got %d fields, want %d: %q", len(got), len(want), line)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
			if strings.ContainsRune(string(line[:len(line)-1]), '\u2028') || strings.ContainsRune(string(line), '\u2029') {
				t.Errorf("a line separator is not escaped: %q", line)
			}
		})
	}
}

// The lines read like slog's JSON lines: same keys, same order, same time
// format; a reader of the process log's JSON reads both alike.
func TestAppendMatchesSlogJSON(t *testing.T) {
	e := Event{Event: "denial", Principal: "p", ClientID: "c", Operation: "publish", Topic: "t/1", Decision: "deny", Reason: "no_grant", Rule: "ts"}
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, nil)
	r := slog.NewRecord(at, slog.LevelInfo, "audit", 0)
	r.AddAttrs(slog.String("log", "audit"), slog.String("event", e.Event), slog.String("principal", e.Principal),
		slog.String("client_id", e.ClientID), slog.String("operation", e.Operation), slog.String("topic", e.Topic),
		slog.String("decision", e.Decision), slog.String("reason", e.Reason), slog.String("rule", e.Rule))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got := string(Append(nil, at, e)); got != buf.String() {
		t.Errorf("got  %s\nwant %s", got, buf.String())
	}
}

// decodedAs is what a JSON decoder reads back for s: each byte of invalid
// UTF-8 becomes U+FFFD.
func decodedAs(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\n", "\xff\xfe", "ä\u2028😀", "\xed\xa0\x80", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("not valid JSON for %q: %q", s, b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		if want := decodedAs(s); got != want {
			t.Fatalf("%q decodes to %q, want %q", s, got, want)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("raw line break in %q", b)
		}
	})
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestLogWritesOneLinePerWrite(t *testing.T) {
	var w countingWriter
	l := New(&w)
	l.now = func() time.Time { return at }
	l.Log(Event{Event: "authentication"})
	l.Log(Event{Event: "disconnect", Topic: strings.Repeat("t", 100_000)}) // a buffer too big to keep
	l.Log(Event{Event: "denial"})
	if w.writes != 3 || strings.Count(w.String(), "\n") != 3 {
		t.Fatalf("%d writes, %d lines; want 3 each", w.writes, strings.Count(w.String(), "\n"))
	}
	lines := strings.Split(strings.TrimSpace(w.String()), "\n")
	for i, want := range []string{"authentication", "disconnect", "denial"} {
		if !strings.Contains(lines[i], `"event":"`+want+`"`) {
			t.Errorf("line %d: %.80s, want event %s", i, lines[i], want)
		}
	}
	var off *Logger = New(nil)
	off.Log(Event{Event: "nothing"}) // a nil Logger writes nothing, and does not panic
}

// The encoder against slog's JSON handler, for the same line.
func BenchmarkLog(b *testing.B) {
	e := Event{Event: "authentication", Principal: "6f1d0000-0000-0000-0000-000000000001", ClientID: "bench-client-17",
		Operation: "connect", Decision: "allow", Rule: "OAUTH2-JWT"}
	b.Run("audit", func(b *testing.B) {
		l := New(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			l.Log(e)
		}
	})
	b.Run("slog-json", func(b *testing.B) {
		l := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("log", "audit")
		b.ReportAllocs()
		for b.Loop() {
			l.LogAttrs(context.Background(), slog.LevelInfo, "audit", slog.String("event", e.Event), slog.String("principal", e.Principal),
				slog.String("client_id", e.ClientID), slog.String("operation", e.Operation), slog.String("topic", e.Topic),
				slog.String("decision", e.Decision), slog.String("reason", e.Reason), slog.String("rule", e.Rule))
		}
	})
}
