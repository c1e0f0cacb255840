package packetcodec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestZZTimeCorpus(t *testing.T) {
	dir := os.Getenv("CORPUS")
	if dir == "" {
		t.Skip()
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		lines := strings.Split(string(data), "\n")
		s := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
		b, err := strconv.Unquote(s)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		t.Run(e.Name(), func(t *testing.T) {
			r := NewReader(strings.NewReader(b), 1<<16)
			for {
				fr, err := r.ReadFrame()
				if err != nil {
					break
				}
				checkFrame(t, fr)
			}
		})
		if d := time.Since(start); d > 5*time.Millisecond {
			t.Logf("%s: %d bytes, %v", e.Name(), len(b), d)
		}
	}
}
