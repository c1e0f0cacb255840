package policy

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

const storePolicy = `topicSpaces:
  - name: t
    topicTemplates: ["t/#"]
roleAssignments:
  - principalId: p
    roleDefinitionName: EventGrid TopicSpaces Publisher
    scope: ` + ns1 + `
`

// fixedClock is the time of the metrics golden file.
func fixedClock() time.Time { return time.Unix(1700000000, 500000000) }

// newTestStore writes content to a policy file in a temporary directory and
// opens a Store on it with a pedantic registry.
func newTestStore(t *testing.T, content string) (*Store, string, *prometheus.Registry, *bytes.Buffer) {
	t.Helper()
	path := writeFile(t, t.TempDir(), "policy.yaml", content)
	reg := prometheus.NewPedanticRegistry()
	var logs bytes.Buffer
	s, err := newStore(testConfig(path), slog.New(slog.NewTextHandler(&logs, nil)), reg, fixedClock)
	if err != nil {
		t.Fatalf("newStore: %v", err)
	}
	return s, path, reg, &logs
}

func publishAllowed(s *Store, topic string) bool {
	return s.Current().Grants(&authz.Identity{AuthenticationName: "p"}, "c").Publish(topic).Allowed
}

// STYLE 35: an invalid policy refuses to start.
func TestNewStoreFailsClosed(t *testing.T) {
	path := writeFile(t, t.TempDir(), "policy.yaml", "topicSpaces: [{name: x}]\n")
	reg := prometheus.NewPedanticRegistry()
	if s, err := NewStore(testConfig(path), nil, reg); err == nil || s != nil {
		t.Fatalf("got %v, %v; want no store and an error", s, err)
	}
	if _, err := NewStore(testConfig(filepath.Join(t.TempDir(), "missing.yaml")), nil, nil); err == nil {
		t.Fatal("missing file: got no error")
	}
	// Nothing was registered, so a later attempt can register.
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Errorf("registered %d metric families (%v), want 0", len(mfs), err)
	}
}

// SPEC 3.6: a reload is validated first; an invalid policy is rejected, the
// old one kept, and the failure logged and counted. Metrics are checked
// against golden exposition text (STYLE 39).
func TestReload(t *testing.T) {
	s, path, reg, logs := newTestStore(t, storePolicy)
	var seen []*Snapshot
	s.OnReload(func(snap *Snapshot) { seen = append(seen, snap) })
	first := s.Current()
	if !publishAllowed(s, "t/x") {
		t.Fatal("initial policy does not allow t/x")
	}

	writeFile(t, filepath.Dir(path), "policy.yaml", "topicSpaces: [{name: x, topicTemplates: [\"$bad\"]}]\n")
	err := s.Reload()
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("bad reload: got %v, want an error", err)
	}
	if s.Current() != first || len(seen) != 0 {
		t.Fatalf("bad reload replaced the snapshot or ran callbacks")
	}
	if !strings.Contains(logs.String(), "policy reload failed") {
		t.Errorf("failure not logged: %s", logs)
	}
	if got := value(s.metrics.reloadFailure); got != 1 {
		t.Errorf("failures: got %v, want 1", got)
	}
	golden(t, "metrics-after-failure.prom", gatherText(t, reg))

	writeFile(t, filepath.Dir(path), "policy.yaml", strings.Replace(storePolicy, "t/#", "u/#", 1)+
		"denyAssignments:\n  - principalId: q\n    roleDefinitionName: EventGrid TopicSpaces Subscriber\n    scope: "+ns1+"\n")
	if err := s.Reload(); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	if len(seen) != 1 || seen[0] != s.Current() || s.Current() == first {
		t.Fatalf("callback got %v, want the new snapshot", seen)
	}
	if publishAllowed(s, "t/x") || !publishAllowed(s, "u/x") {
		t.Error("reloaded policy not in effect")
	}
	golden(t, "metrics-after-success.prom", gatherText(t, reg))
	// STYLE 37: names pass promlint (what testutil.GatherAndLint runs).
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// gatherText renders the registry in the text exposition format, with HELP
// and TYPE lines. testutil.GatherAndCompare would do the comparison, but
// package testutil needs github.com/kylelemons/godebug, which is not in
// go.sum; the golden text is compared instead (as authz/token does).
func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if err := writeMetricFamily(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// waitFor polls cond until it holds or the deadline passes (no fixed
// sleeps, STYLE 26).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startWatch runs s.Watch until the test ends and waits until it watches.
func startWatch(t *testing.T, s *Store) {
	t.Helper()
	ready := make(chan struct{})
	s.watching = func() { close(ready) }
	s.debounce = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Watch returned early: %v", err)
	}
}

// SPEC 3.6: file changes are picked up: in-place writes, editors that
// rename a new file over the old one, and Kubernetes ConfigMap symlink
// swaps; a bad file keeps the old policy and is counted once.
func TestWatch(t *testing.T) {
	t.Run("rewrite in place", func(t *testing.T) {
		s, path, _, _ := newTestStore(t, storePolicy)
		startWatch(t, s)
		writeFile(t, filepath.Dir(path), "policy.yaml", strings.Replace(storePolicy, "t/#", "u/#", 1))
		waitFor(t, "the rewritten policy", func() bool { return publishAllowed(s, "u/x") })
	})
	t.Run("rename over", func(t *testing.T) {
		s, path, _, _ := newTestStore(t, storePolicy)
		startWatch(t, s)
		tmp := writeFile(t, filepath.Dir(path), ".policy.yaml.swp", strings.Replace(storePolicy, "t/#", "v/#", 1))
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the renamed policy", func() bool { return publishAllowed(s, "v/x") })
	})
	t.Run("bad file then fixed", func(t *testing.T) {
		s, path, _, _ := newTestStore(t, storePolicy)
		var reloads atomic.Int32
		s.OnReload(func(*Snapshot) { reloads.Add(1) })
		startWatch(t, s)
		writeFile(t, filepath.Dir(path), "policy.yaml", "topicSpaces: [{name: x}]\n")
		waitFor(t, "a failed reload", func() bool { return value(s.metrics.reloadFailure) == 1 })
		if !publishAllowed(s, "t/x") {
			t.Fatal("bad file replaced the policy")
		}
		// Unrelated files in the directory do not retry the bad one.
		writeFile(t, filepath.Dir(path), "unrelated.txt", "x")
		writeFile(t, filepath.Dir(path), "policy.yaml", strings.Replace(storePolicy, "t/#", "w/#", 1))
		waitFor(t, "the fixed policy", func() bool { return publishAllowed(s, "w/x") })
		// The callbacks run just after the new snapshot is in place.
		waitFor(t, "the reload callback", func() bool { return reloads.Load() > 0 })
		if got := value(s.metrics.reloadFailure); got != 1 {
			t.Errorf("failures: got %v, want 1", got)
		}
		if got := reloads.Load(); got != 1 {
			t.Errorf("reloads: got %d, want 1", got)
		}
	})
	t.Run("configmap symlink swap", func(t *testing.T) {
		// The kubelet layout: policy.yaml -> ..data/policy.yaml,
		// ..data -> ..2024_01_01_v1; an update writes ..2024_01_01_v2,
		// points ..data_tmp at it and renames ..data_tmp over ..data.
		dir := t.TempDir()
		v1 := filepath.Join(dir, "..2024_01_01_v1")
		if err := os.Mkdir(v1, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, v1, "policy.yaml", storePolicy)
		mustSymlink(t, "..2024_01_01_v1", filepath.Join(dir, "..data"))
		path := filepath.Join(dir, "policy.yaml")
		mustSymlink(t, filepath.Join("..data", "policy.yaml"), path)
		s, err := newStore(testConfig(path), nil, nil, fixedClock)
		if err != nil {
			t.Fatal(err)
		}
		startWatch(t, s)
		v2 := filepath.Join(dir, "..2024_01_01_v2")
		if err := os.Mkdir(v2, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, v2, "policy.yaml", strings.Replace(storePolicy, "t/#", "k8s/#", 1))
		mustSymlink(t, "..2024_01_01_v2", filepath.Join(dir, "..data_tmp"))
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(v1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the swapped ConfigMap", func() bool { return publishAllowed(s, "k8s/x") })
	})
	t.Run("symlink to a file elsewhere", func(t *testing.T) {
		// The target's directory is watched too.
		target := writeFile(t, t.TempDir(), "real.yaml", storePolicy)
		path := filepath.Join(t.TempDir(), "policy.yaml")
		mustSymlink(t, target, path)
		s, err := newStore(testConfig(path), nil, nil, fixedClock)
		if err != nil {
			t.Fatal(err)
		}
		startWatch(t, s)
		writeFile(t, filepath.Dir(target), "real.yaml", strings.Replace(storePolicy, "t/#", "x/#", 1))
		waitFor(t, "the edited target", func() bool { return publishAllowed(s, "x/x") })
	})
}

func mustSymlink(t *testing.T, oldname, newname string) {
	t.Helper()
	if err := os.Symlink(oldname, newname); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
}
